"""authsync for Python: analytics events synced in batches to an ingestion server,
identified users' data authenticated by a JWT your backend signs.

The classes come from ``authsync.py``, which UniFFI generates from the Rust library
``libauthsync_ffi`` (copied next to it by ``bindings/python/build``)::

    import authsync

    client = authsync.AuthsyncClient(
        authsync.ClientConfig(app_id="app-1", endpoint="https://ingest.example.com",
                              environment=authsync.Environment.LIVE, jwt_enabled=True,
                              state_dir="/var/lib/myapp/authsync"),
        listener=MyListener(),            # an authsync.AuthenticationListener subclass
        token_provider=MyProvider(),      # an authsync.TokenProvider subclass
    )
    client.identify("user-42")
    client.pass_authentication_details(token_from_your_backend, "user-42")
    client.track("purchase", '{"sku": "A1"}')
    client.shutdown(5000)

What this file adds to the generated module, and why:

* an ``atexit`` hook that closes every live client, then stops authsync's threads
  from calling into Python (``stop_foreign_calls``): a Rust thread that calls a
  listener, provider or transport while the interpreter finalizes aborts the process;
* ``str()`` of ``AuthsyncError`` and ``TransportError`` is the whole message;
* ``str()``/``repr()`` of an ``HttpRequest`` shows only a prefix of the
  ``authorization`` header, never the whole token.
"""

import atexit as _atexit
import threading as _threading
import time as _time
import weakref as _weakref

from .authsync import *  # noqa: F401,F403  (the generated module defines __all__)
from . import authsync as _generated

# How long the exit hook may take in all: closing the clients (each waits for a
# request in flight), then waiting for calls into Python still running.
EXIT_TIMEOUT_MS = 10_000

_live_clients = _weakref.WeakSet()
_live_lock = _threading.Lock()
_generated_init = _generated.AuthsyncClient.__init__


def _tracked_init(self, *args, **kwargs):
    _generated_init(self, *args, **kwargs)
    with _live_lock:
        _live_clients.add(self)


_tracked_init.__doc__ = _generated_init.__doc__
_generated.AuthsyncClient.__init__ = _tracked_init


def _tracked_handle(method):
    # Handles of other workspaces are clients too: the exit hook closes them.
    def tracked(self, *args, **kwargs):
        handle = method(self, *args, **kwargs)
        with _live_lock:
            _live_clients.add(handle)
        return handle

    tracked.__doc__ = method.__doc__
    return tracked


for _name in ("add_workspace", "workspace"):
    setattr(_generated.AuthsyncClient, _name, _tracked_handle(getattr(_generated.AuthsyncClient, _name)))


def live_clients():
    """The clients not yet garbage-collected (closed or not)."""
    with _live_lock:
        return list(_live_clients)


def _close_at_exit():
    deadline = _time.monotonic() + EXIT_TIMEOUT_MS / 1000
    for client in live_clients():
        left_ms = max(0, int((deadline - _time.monotonic()) * 1000))
        try:
            client.close(left_ms)
        except Exception:  # noqa: BLE001  (exit must go on)
            pass
    left_ms = max(0, int((deadline - _time.monotonic()) * 1000))
    _generated.stop_foreign_calls(left_ms)


_atexit.register(_close_at_exit)


def _error_str(self):
    try:
        return self.message()
    except Exception:  # noqa: BLE001
        return Exception.__str__(self)


_generated.AuthsyncError.__str__ = _error_str
_generated.TransportError.__str__ = _error_str


def _request_str(self):
    headers = {
        name: (value[:15] + "…" if name.lower() == "authorization" else value)
        for name, value in self.headers.items()
    }
    return "HttpRequest(method={!r}, url={!r}, headers={!r}, body=<{} bytes>)".format(
        self.method, self.url, headers, len(self.body)
    )


_generated.HttpRequest.__str__ = _request_str
_generated.HttpRequest.__repr__ = _request_str
