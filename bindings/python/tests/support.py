"""Shared pieces of the Python tests: the reference server's admin API, recording
listeners and providers, a urllib transport, and a TestCase that ends its clients.

The server is the one `bindings/python/test` starts (`authsync serve --test-keys`);
its URL comes in AUTHSYNC_TEST_SERVER. Every test uses app ids of its own, so tests
only see their own events; faults are a queue shared by every request, so each test
ends its clients and clears the faults it left.
"""

import http.client
import json
import os
import socket
import threading
import time
import unittest
import urllib.error
import urllib.request
import uuid

import authsync

SERVER = os.environ.get("AUTHSYNC_TEST_SERVER", "")

# No proxy from the environment: the server is on loopback.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _admin(method, route, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"{SERVER}/admin/{route}",
        data=data,
        method=method,
        headers={"Content-Type": "application/json"},
    )
    with _opener.open(request, timeout=10) as response:
        return json.loads(response.read() or b"null")


def mint(sub, **fields):
    """A token for `sub`, signed by a TEST key the server trusts (POST /admin/mint)."""
    return _admin("POST", "mint", {"sub": sub, **fields})["token"]


def push_faults(*faults):
    """Queues faults (see refserver/README.md): the next requests get them, in order."""
    return _admin("POST", "faults", list(faults))


def clear_faults():
    _admin("DELETE", "faults")


def pending_faults():
    return _admin("GET", "faults")["pending"]


def accepted(app_id):
    """Events the server accepted for this app id."""
    return _admin("GET", "stats")["accepted_by_app"].get(app_id, 0)


def events(app_id):
    return [e for e in _admin("GET", "events") if e["app_id"] == app_id]


def batches(app_id):
    return [b for b in _admin("GET", "batches") if b["app_id"] == app_id]


def requests(app_id):
    """The request log of this app id: (status, headers dict) per request."""
    seen = []
    for entry in _admin("GET", "requests"):
        headers = {name.lower(): value for name, value in entry["headers"]}
        if headers.get("x-app-id") == app_id:
            seen.append((entry["response"]["status"], headers))
    return seen


def wait_until(predicate, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


class Listener(authsync.AuthenticationListener):
    """Records notices; thread-safe."""

    def __init__(self):
        self.notices = []
        self.threads = set()
        self._lock = threading.Lock()

    def on_authentication_error(self, notice):
        with self._lock:
            self.notices.append(notice)
            self.threads.add(threading.get_ident())

    def codes(self):
        with self._lock:
            return [n.code for n in self.notices]


class RaisingListener(authsync.AuthenticationListener):
    """Raises on every notice, after counting it."""

    def __init__(self, exception=RuntimeError("a buggy listener")):
        self.calls = 0
        self.exception = exception

    def on_authentication_error(self, notice):
        self.calls += 1
        raise self.exception


class MintingProvider(authsync.TokenProvider):
    """Fetches a token for the identifier from the server's admin mint route, as an
    app's provider would from its backend."""

    def __init__(self):
        self.requests = []
        self.tokens = []
        self._lock = threading.Lock()

    def fetch_token(self, request):
        token = mint(request.identifier)
        with self._lock:
            self.requests.append(request)
            self.tokens.append(token)
        return token


class UrllibTransport(authsync.Transport):
    """The app-supplied transport of the tests: the standard library's urllib."""

    def __init__(self, failures=()):
        # Exceptions to raise, one per request, before sending for real.
        self.failures = list(failures)
        self.requests = []
        self.statuses = []
        self._lock = threading.Lock()

    def send(self, request):
        with self._lock:
            self.requests.append(request)
            failure = self.failures.pop(0) if self.failures else None
        if failure is not None:
            raise failure
        outgoing = urllib.request.Request(
            request.url, data=request.body, method=request.method, headers=request.headers
        )
        try:
            with _opener.open(outgoing, timeout=10) as response:
                answer = authsync.HttpResponse(
                    status=response.status, headers=dict(response.headers.items()), body=response.read()
                )
        except urllib.error.HTTPError as error:  # 4xx/5xx are answers, not failures
            answer = authsync.HttpResponse(
                status=error.code, headers=dict(error.headers.items()), body=error.read()
            )
        except urllib.error.URLError as error:
            if isinstance(error.reason, (socket.timeout, TimeoutError)):
                raise authsync.TransportError.Timeout(reason=str(error.reason))
            raise authsync.TransportError.Connect(reason=str(error.reason))
        except (ConnectionError, http.client.HTTPException) as error:
            raise authsync.TransportError.Reset(reason=repr(error))
        with self._lock:
            self.statuses.append(answer.status)
        return answer


class ClientTest(unittest.TestCase):
    """Makes clients with app ids of their own, and ends them after the test."""

    def setUp(self):
        if not SERVER:
            self.skipTest("AUTHSYNC_TEST_SERVER is not set (run bindings/python/test)")
        self._clients = []
        clear_faults()

    def tearDown(self):
        for client in self._clients:
            client.close(2000)
        left = pending_faults()
        clear_faults()
        # A fault queued but never hit means the test raced its own client.
        self.assertEqual(left, [], "faults the test queued were never hit")

    def app_id(self, suffix=""):
        return f"py-{self._testMethodName[5:25]}{suffix}-{uuid.uuid4().hex[:8]}"

    def config(self, app_id=None, **fields):
        fields.setdefault("environment", authsync.Environment.TEST)
        if app_id is None:
            app_id = self.app_id()
        return authsync.ClientConfig(app_id=app_id, endpoint=SERVER, **fields)

    def client(self, config=None, **kwargs):
        client = authsync.AuthsyncClient(config or self.config(), **kwargs)
        self._clients.append(client)
        return client
