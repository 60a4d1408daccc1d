"""The sync flows of the issue, end to end against `authsync serve --test-keys`."""

import threading

import authsync
from authsync import IgnoredReason, Outcome

from .support import (
    ClientTest,
    Listener,
    MintingProvider,
    accepted,
    batches,
    events,
    mint,
    push_faults,
    requests,
    wait_until,
)


class AnonymousFlowTest(ClientTest):
    def test_anonymous_events_are_delivered_without_a_token(self):
        client = self.client(self.config(jwt_enabled=True))
        app = client.app_id()
        self.assertIsNone(client.current_identifier())
        seqs = [client.track("screen_view", f'{{"n": {i}}}') for i in range(3)]
        self.assertEqual(seqs, [1, 2, 3])
        report = client.flush_and_wait(10_000)
        self.assertEqual(report.pending_events, 0)
        self.assertTrue(report.settled)
        self.assertEqual(report.totals, authsync.Totals(tracked=3, acked=3, dropped=0, pending=0))
        self.assertEqual(accepted(app), 3)
        seen = events(app)
        self.assertEqual([e["attrs"]["n"] for e in seen], [0, 1, 2])
        self.assertEqual({e["user"]["type"] for e in seen}, {"anonymous"})
        self.assertTrue(all("authorization" not in headers for _, headers in requests(app)))


class IdentifiedFlowTest(ClientTest):
    def test_identify_then_a_token(self):
        listener = Listener()
        client = self.client(self.config(jwt_enabled=True), listener=listener)
        app = client.app_id()
        self.assertEqual(client.identify("user-1"), Outcome.APPLIED())
        self.assertEqual(client.identify("user-1"), Outcome.IGNORED(reason=IgnoredReason.ALREADY_IDENTIFIED))
        client.track("purchase", '{"sku": "A1"}')
        client.track("purchase", '{"sku": "B2"}')

        # No token yet: the batch waits (S5), and the listener hears it once.
        report = client.flush_and_wait(2_000)
        self.assertEqual(report.pending_events, 2)
        self.assertTrue(report.settled, "what is left waits for a token")
        self.assertEqual(accepted(app), 0)
        self.assertEqual(listener.codes(), ["TOKEN_NOT_AVAILABLE"])
        notice = listener.notices[0]
        self.assertEqual((notice.identifier, notice.app_id), ("user-1", app))
        self.assertFalse(hasattr(notice, "token"), "a notice never carries the token")
        self.assertNotIn(threading.main_thread().ident, listener.threads)

        token = mint("user-1")
        self.assertEqual(client.pass_authentication_details(token, "user-1"), Outcome.APPLIED())
        self.assertEqual(
            client.pass_authentication_details(token, "user-1"),
            Outcome.IGNORED(reason=IgnoredReason.SAME_TOKEN),
        )
        report = client.flush_and_wait(10_000)
        self.assertEqual(report.pending_events, 0)
        self.assertEqual(accepted(app), 2)
        [batch] = batches(app)
        self.assertEqual(batch["auth"]["subject"], "user-1")
        self.assertEqual([headers["authorization"] for _, headers in requests(app)], [f"Bearer {token}"])

    def test_a_401_the_listener_the_provider_then_delivery(self):
        listener, provider = Listener(), MintingProvider()
        client = self.client(self.config(jwt_enabled=True), listener=listener, token_provider=provider)
        app = client.app_id()
        client.identify("user-2")
        first = mint("user-2")
        client.pass_authentication_details(first, "user-2")
        client.track("purchase", '{"sku": "A1"}')
        push_faults({"kind": "jwt_401", "code": "INVALID_SIGNATURE"})

        report = client.flush_and_wait(10_000)
        self.assertEqual(report.pending_events, 0)
        self.assertEqual(accepted(app), 1)
        self.assertEqual(listener.codes(), ["INVALID_SIGNATURE"])
        self.assertEqual(listener.notices[0].identifier, "user-2")
        [asked] = provider.requests
        self.assertEqual((asked.identifier, asked.code, asked.app_id), ("user-2", "INVALID_SIGNATURE", app))
        self.assertFalse(asked.cancellation.is_cancelled())
        sent = requests(app)
        self.assertEqual([status for status, _ in sent], [401, 200])
        self.assertEqual(sent[0][1]["authorization"], f"Bearer {first}")
        self.assertEqual(sent[1][1]["authorization"], f"Bearer {provider.tokens[0]}")
        self.assertEqual(client.totals().acked, 1)

    def test_a_401_the_listener_then_a_new_token_from_the_app(self):
        listener = Listener()
        client = self.client(self.config(jwt_enabled=True), listener=listener)
        app = client.app_id()
        client.identify("user-3")
        rejected = mint("user-3")
        client.pass_authentication_details(rejected, "user-3")
        client.track("e")
        push_faults({"kind": "jwt_401", "code": "TIME_CONSTRAINT_FAILURE"})

        report = client.flush_and_wait(2_000)
        self.assertEqual(report.pending_events, 1, "waits for a token other than the rejected one")
        self.assertEqual(listener.codes(), ["TIME_CONSTRAINT_FAILURE"])
        self.assertEqual(
            client.pass_authentication_details(rejected, "user-3"),
            Outcome.IGNORED(reason=IgnoredReason.REJECTED_TOKEN),
        )
        self.assertEqual(client.pass_authentication_details(mint("user-3"), "user-3"), Outcome.APPLIED())
        self.assertEqual(client.flush_and_wait(10_000).pending_events, 0)
        self.assertEqual(accepted(app), 1)
        self.assertEqual([status for status, _ in requests(app)], [401, 200])


class LockoutTest(ClientTest):
    def test_a_lockout_then_a_session_start(self):
        listener, provider = Listener(), MintingProvider()
        client = self.client(
            self.config(jwt_enabled=True, max_auth_failures=3), listener=listener, token_provider=provider
        )
        app = client.app_id()
        client.identify("user-4")
        client.pass_authentication_details(mint("user-4"), "user-4")
        client.track("e1")
        push_faults({"kind": "jwt_401", "code": "INVALID_SIGNATURE", "count": 3})

        client.flush()
        wait_until(client.is_locked_out, what="the lockout")
        # Three failures, each with a fresh token from the provider; then nothing more.
        wait_until(lambda: len(provider.requests) == 3, what="the provider's third token")
        report = client.flush_and_wait(1_000)
        self.assertEqual(report.pending_events, 1)
        self.assertTrue(client.is_locked_out())
        self.assertEqual(listener.codes(), ["INVALID_SIGNATURE"] * 3)
        self.assertEqual([status for status, _ in requests(app)], [401, 401, 401])
        client.track("e2")

        client.session_start()
        self.assertFalse(client.is_locked_out())
        client.flush()
        wait_until(lambda: accepted(app) == 2, what="delivery after the session start")
        self.assertEqual(client.flush_and_wait(10_000).pending_events, 0)
        self.assertEqual(requests(app)[-1][1]["authorization"], f"Bearer {provider.tokens[-1]}")


class LogoutTest(ClientTest):
    def test_logout_without_a_usable_token_purges_the_user_data(self):
        client = self.client(self.config(jwt_enabled=True))
        app = client.app_id()
        client.identify("user-5")
        for i in range(3):
            client.track("e", f'{{"i": {i}}}')
        self.assertEqual(client.logout(), Outcome.APPLIED())
        self.assertIsNone(client.current_identifier())
        totals = client.totals()
        self.assertEqual((totals.dropped, totals.pending), (3, 0))
        self.assertEqual(client.logout(), Outcome.IGNORED(reason=IgnoredReason.ALREADY_ANONYMOUS))

        client.track("after_logout")
        self.assertEqual(client.flush_and_wait(10_000).pending_events, 0)
        self.assertEqual(accepted(app), 1)
        self.assertEqual([e["user"]["type"] for e in events(app)], ["anonymous"])

    def test_a_401_after_logout_purges_the_user_data(self):
        listener = Listener()
        client = self.client(self.config(jwt_enabled=True), listener=listener)
        app = client.app_id()
        client.identify("user-6")
        client.pass_authentication_details(mint("user-6"), "user-6")
        client.track("e1")
        client.track("e2")
        push_faults({"kind": "jwt_401", "code": "INVALID_SIGNATURE"})
        client.logout()  # seals user-6's batch; it goes with their token and gets the 401

        report = client.flush_and_wait(10_000)
        self.assertEqual(report.pending_events, 0)
        self.assertEqual(client.totals(), authsync.Totals(tracked=2, acked=0, dropped=2, pending=0))
        self.assertEqual(listener.codes(), ["INVALID_SIGNATURE"], "one notice, none for the deletion")
        self.assertEqual(accepted(app), 0)
        self.assertEqual([status for status, _ in requests(app)], [401])
