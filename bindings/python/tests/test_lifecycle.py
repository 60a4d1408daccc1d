"""Restarts on a state directory, garbage collection and shutdown with work pending,
and interpreter exit with live clients."""

import gc
import os
import subprocess
import sys
import tempfile
import textwrap
import time
import weakref

import authsync

from .support import SERVER, ClientTest, Listener, accepted, clear_faults, mint, push_faults, wait_until


def start_when_free(config, **kwargs):
    """Starts a client on a state directory whose previous client is still letting
    it go (a collected client closes on its own threads, without waiting)."""
    deadline = time.monotonic() + 10
    while True:
        try:
            return authsync.AuthsyncClient(config, **kwargs)
        except authsync.AuthsyncError.StateDirectory:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


class RestartTest(ClientTest):
    def setUp(self):
        super().setUp()
        self.dir = tempfile.TemporaryDirectory(prefix="authsync-py-")
        self.addCleanup(self.dir.cleanup)
        self.state = os.path.join(self.dir.name, "state")

    def test_a_restart_on_the_same_state_directory(self):
        config = self.config(jwt_enabled=True, state_dir=self.state, seed=42)
        app = config.app_id
        first = self.client(config)
        first.identify("user-7")
        first.pass_authentication_details(mint("user-7"), "user-7")
        for i in range(3):
            first.track("e", f'{{"i": {i}}}')
        self.assertEqual(os.stat(self.state).st_mode & 0o777, 0o700)

        # One client per directory at a time.
        with self.assertRaises(authsync.AuthsyncError.StateDirectory) as refused:
            authsync.AuthsyncClient(config)
        self.assertIn("state directory", str(refused.exception))

        first.close()  # without flushing: the three events stay in the directory
        with self.assertRaises(authsync.AuthsyncError.ShutDown):
            first.track("late")
        self.assertEqual(accepted(app), 0)

        second = self.client(config)
        self.assertEqual(second.seed(), 42)
        self.assertEqual(second.current_identifier(), "user-7")
        self.assertEqual(second.totals(), authsync.Totals(tracked=3, acked=0, dropped=0, pending=3))
        self.assertEqual(second.track("e", '{"i": 3}'), 4, "sequence numbers go on")
        report = second.flush_and_wait(10_000)
        self.assertEqual(report.pending_events, 0)
        self.assertEqual(accepted(app), 4)
        second.close()

        # Another seed is refused for an existing install.
        with self.assertRaises(authsync.AuthsyncError.StateDirectory):
            authsync.AuthsyncClient(self.config(app_id=app, state_dir=self.state, seed=43))

    def test_garbage_collection_with_work_still_pending(self):
        config = self.config(state_dir=self.state, seed=7)
        listener = Listener()
        client = authsync.AuthsyncClient(config, listener=listener)  # not kept by the test case
        for i in range(5):
            client.track("e", f'{{"i": {i}}}')
        listener_ref, client_ref = weakref.ref(listener), weakref.ref(client)
        self.assertIn(client, authsync.live_clients())
        del client, listener
        gc.collect()
        self.assertIsNone(client_ref())
        self.assertEqual(authsync.live_clients().count(None), 0)
        # The Rust side closes on its own threads; then it lets the listener go.
        wait_until(lambda: gc.collect() is not None and listener_ref() is None, what="the listener's release")

        again = start_when_free(config)
        self._clients.append(again)
        self.assertEqual(again.totals().pending, 5)
        self.assertEqual(again.flush_and_wait(10_000).pending_events, 0)
        self.assertEqual(accepted(config.app_id), 5)

    def test_shutdown_with_work_still_pending(self):
        config = self.config(state_dir=self.state, seed=9, backoff_base_ms=2_000, backoff_cap_ms=2_000)
        client = self.client(config)
        for i in range(3):
            client.track("e", f'{{"i": {i}}}')
        push_faults({"kind": "status", "status": 503, "count": 20})
        started = time.monotonic()
        report = client.shutdown(500)
        self.assertLess(time.monotonic() - started, 5)
        self.assertEqual(report.pending_events, 3)
        self.assertEqual(report.totals.acked, 0)
        with self.assertRaises(authsync.AuthsyncError.ShutDown) as refused:
            client.track("late")
        self.assertEqual(str(refused.exception), "the client was shut down")
        self.assertEqual(client.totals().tracked, 3, "getters still answer")

        clear_faults()
        again = self.client(config)
        self.assertEqual(again.flush_and_wait(10_000).pending_events, 0)
        self.assertEqual(accepted(config.app_id), 3)


EXIT_SCRIPT = textwrap.dedent(
    """
    import sys, threading, time
    import authsync

    # Called back hundreds of times a second (503, backoff of a few ms): without the
    # package's exit hook, one of these calls lands in the interpreter's finalization
    # and the process aborts ("FATAL: exception not rethrown", 10 runs out of 10 on
    # Python 3.11).
    class BusyTransport(authsync.Transport):
        def __init__(self):
            self.calls = 0

        def send(self, request):
            self.calls += 1
            if self.calls == 1:
                print("in transport", flush=True)
            time.sleep(0.002)
            return authsync.HttpResponse(status=503, headers={"retry-after": "0"})

    class Chatty(authsync.AuthenticationListener):
        def on_authentication_error(self, notice):
            time.sleep(0.05)

    mode = sys.argv[1]
    config = authsync.ClientConfig(
        app_id="py-exit", endpoint=sys.argv[2], environment=authsync.Environment.LIVE,
        jwt_enabled=True, backoff_base_ms=1, backoff_cap_ms=5)
    client = authsync.AuthsyncClient(config, listener=Chatty(), transport=BusyTransport())
    client.identify("user-x")   # no token: notices for the listener
    for i in range(50):
        client.track("e")
    client.logout()
    client.track("anonymous")
    client.flush()
    time.sleep(0.5)
    if mode == "collected":
        del client               # the Rust threads go on in the background
    print("main exiting", flush=True)
    """
)


class ExitTest(ClientTest):
    def run_exit_script(self, mode):
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
        done = subprocess.run(
            [sys.executable, "-c", EXIT_SCRIPT, mode, SERVER],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
        self.assertEqual(done.returncode, 0, f"{mode}: rc {done.returncode}\n{done.stdout}\n{done.stderr[-2000:]}")
        self.assertIn("main exiting", done.stdout)
        self.assertIn("in transport", done.stdout)

    def test_exit_with_a_live_client_calling_into_python(self):
        for _ in range(3):
            self.run_exit_script("live")

    def test_exit_after_a_client_was_collected_while_its_threads_call_python(self):
        for _ in range(3):
            self.run_exit_script("collected")
