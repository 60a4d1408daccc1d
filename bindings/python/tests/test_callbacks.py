"""Foreign callbacks: the app-supplied transport (urllib), listeners and providers
that raise, a provider that is cancelled."""

import threading
import time

import authsync

from .support import (
    ClientTest,
    Listener,
    RaisingListener,
    UrllibTransport,
    accepted,
    mint,
    push_faults,
    requests,
    wait_until,
)


class TransportTest(ClientTest):
    def test_the_app_supplied_transport_sends_everything_with_urllib(self):
        transport = UrllibTransport()
        client = self.client(
            self.config(jwt_enabled=True, backoff_base_ms=50, backoff_cap_ms=200), transport=transport
        )
        app = client.app_id()
        client.identify("user-t")
        token = mint("user-t")
        client.pass_authentication_details(token, "user-t")
        client.track("purchase", '{"sku": "A1"}')
        client.track("purchase", '{"sku": "B2"}')
        push_faults({"kind": "status", "status": 503, "retry_after_secs": 0})

        report = client.flush_and_wait(10_000)
        self.assertEqual(report.pending_events, 0)
        self.assertEqual(accepted(app), 2)
        self.assertEqual(transport.statuses, [503, 200], "the 503 is an answer, retried after backoff")
        first, retry = transport.requests
        self.assertEqual(first.method, "POST")
        self.assertEqual(first.url, f"{self.config().endpoint}/v1/report")
        self.assertEqual(first.headers["authorization"], f"Bearer {token}")
        self.assertEqual(first.headers["x-app-id"], app)
        self.assertEqual(first.headers["content-type"], "application/json")
        self.assertEqual(first.headers["idempotency-key"], retry.headers["idempotency-key"])
        self.assertEqual(first.body, retry.body, "a retry sends the same bytes (S3)")
        self.assertIn(b'"sku":"A1"', first.body)
        # The server saw exactly what urllib sent.
        self.assertEqual([status for status, _ in requests(app)], [503, 200])
        # str() of a request never shows the whole token.
        self.assertNotIn(token, str(first))
        self.assertNotIn(token, repr(first))

    def test_transport_errors_and_exceptions_are_retried(self):
        transport = UrllibTransport(
            failures=[
                authsync.TransportError.Connect(reason="offline"),
                authsync.TransportError.Timeout(reason="slow network"),
                ValueError("a bug in the app's transport"),
            ]
        )
        client = self.client(self.config(backoff_base_ms=20, backoff_cap_ms=100), transport=transport)
        app = client.app_id()
        client.track("e")
        report = client.flush_and_wait(10_000)
        self.assertEqual(report.pending_events, 0)
        self.assertEqual(len(transport.requests), 4)
        self.assertEqual(transport.statuses, [200])
        self.assertEqual(accepted(app), 1)

    def test_a_transport_that_returns_nonsense_counts_as_a_failure(self):
        class Nonsense(authsync.Transport):
            def __init__(self):
                self.calls = 0
                self.real = UrllibTransport()

            def send(self, request):
                self.calls += 1
                if self.calls == 1:
                    return "not a response"
                if self.calls == 2:
                    return authsync.HttpResponse(status=42)
                return self.real.send(request)

        transport = Nonsense()
        client = self.client(self.config(backoff_base_ms=20, backoff_cap_ms=100), transport=transport)
        client.track("e")
        self.assertEqual(client.flush_and_wait(10_000).pending_events, 0)
        self.assertEqual(transport.calls, 3)
        self.assertEqual(accepted(client.app_id()), 1)


class RaisingCallbacksTest(ClientTest):
    def test_a_listener_that_raises_does_not_stop_delivery(self):
        raising, later = RaisingListener(), Listener()
        client = self.client(self.config(jwt_enabled=True), listener=RaisingListener(KeyError("k")))
        client.register_authentication_listener(raising)
        client.register_authentication_listener(later)
        app = client.app_id()
        client.identify("user-r")
        client.track("e1")
        client.flush()
        wait_until(lambda: later.codes() == ["TOKEN_NOT_AVAILABLE"], what="the notice")
        self.assertEqual(raising.calls, 1)

        # A 401 reaches the listeners too; the raising ones change nothing.
        push_faults({"kind": "jwt_401", "code": "INVALID_SIGNATURE"})
        client.pass_authentication_details(mint("user-r"), "user-r")
        client.flush_and_wait(5_000)
        self.assertEqual(later.codes(), ["TOKEN_NOT_AVAILABLE", "INVALID_SIGNATURE"])
        self.assertEqual(raising.calls, 2)
        client.pass_authentication_details(mint("user-r"), "user-r")
        client.track("e2")
        self.assertEqual(client.flush_and_wait(10_000).pending_events, 0)
        self.assertEqual(accepted(app), 2)

    def test_a_provider_that_raises_gives_no_token_and_is_asked_again(self):
        class Flaky(authsync.TokenProvider):
            def __init__(self):
                self.calls = 0

            def fetch_token(self, request):
                self.calls += 1
                if self.calls == 1:
                    raise ConnectionError("the backend is down")
                return mint(request.identifier)

        provider, listener = Flaky(), Listener()
        client = self.client(self.config(jwt_enabled=True), listener=listener, token_provider=provider)
        app = client.app_id()
        client.identify("user-p")
        client.track("e1")
        client.flush()
        wait_until(lambda: provider.calls == 1, what="the first fetch")
        report = client.flush_and_wait(1_000)
        self.assertEqual(report.pending_events, 1, "no token yet")
        # The next notice (here a 401 of a token the app passed) asks again. The batch
        # is sealed already, so the token sends it at once: the fault goes first.
        push_faults({"kind": "jwt_401", "code": "INVALID_SIGNATURE"})
        client.pass_authentication_details(mint("user-p"), "user-p")
        wait_until(lambda: accepted(app) == 1, what="delivery with the provider's token")
        self.assertEqual(provider.calls, 2)
        self.assertEqual(listener.codes(), ["TOKEN_NOT_AVAILABLE", "INVALID_SIGNATURE"])

    def test_a_slow_provider_is_cancelled_at_its_timeout(self):
        class Slow(authsync.TokenProvider):
            def __init__(self):
                self.cancelled = threading.Event()
                self.request = None

            def fetch_token(self, request):
                self.request = request
                if request.cancellation.wait(10_000):
                    self.cancelled.set()
                return None

        provider = Slow()
        client = self.client(self.config(jwt_enabled=True, token_timeout_ms=200), token_provider=provider)
        client.identify("user-s")
        client.track("e")
        started = time.monotonic()
        client.flush()
        self.assertTrue(provider.cancelled.wait(10), "the provider heard its cancellation")
        self.assertLess(time.monotonic() - started, 5)
        self.assertEqual(provider.request.timeout_ms, 200)
        self.assertEqual(provider.request.code, "TOKEN_NOT_AVAILABLE")
        self.assertTrue(provider.request.cancellation.is_cancelled())
