"""The Python surface: names, records, typed errors, threads."""

import threading

import authsync
from authsync import AuthsyncError, Environment, IgnoredReason, Outcome

from .support import SERVER, ClientTest, accepted, mint, wait_until


class ErrorTest(ClientTest):
    def test_configuration_errors_are_typed(self):
        for config, fragment in [
            (self.config(app_id=""), "app id must not be empty"),
            (authsync.ClientConfig(app_id="a", endpoint="ftp://x", environment=Environment.LIVE), "scheme"),
            (self.config(batch_max_events=0), "batch_max_events"),
        ]:
            with self.subTest(fragment=fragment):
                with self.assertRaises(AuthsyncError.InvalidConfig) as raised:
                    authsync.AuthsyncClient(config)
                self.assertIn(fragment, str(raised.exception))
                self.assertIsInstance(raised.exception, AuthsyncError)
                self.assertEqual(raised.exception.reason in str(raised.exception), True)

    def test_refused_calls_are_typed_and_change_nothing(self):
        client = self.client(self.config(jwt_enabled=True))
        cases = [
            (lambda: client.track("", "{}"), AuthsyncError.InvalidEvent, "name must not be empty"),
            (lambda: client.track("e", "[1, 2]"), AuthsyncError.InvalidEvent, "JSON object"),
            (lambda: client.track("e", "{not json"), AuthsyncError.InvalidEvent, "not JSON"),
            (lambda: client.track("e", '{"big": "' + "x" * 40_000 + '"}'), AuthsyncError.InvalidEvent, "32 KiB"),
            (lambda: client.identify(""), AuthsyncError.InvalidIdentifier, "must not be empty"),
            (lambda: client.pass_authentication_details("t", ""), AuthsyncError.InvalidIdentifier, "empty"),
            (
                lambda: client.pass_authentication_details("not-a-jwt", "u"),
                AuthsyncError.InvalidToken,
                "three base64url segments",
            ),
        ]
        for call, kind, fragment in cases:
            with self.subTest(fragment=fragment):
                with self.assertRaises(kind) as raised:
                    call()
                self.assertIn(fragment, str(raised.exception))
        self.assertEqual(client.totals().tracked, 0)

    def test_jwt_disabled_misuse_is_an_error_in_test_and_ignored_in_live(self):
        token = mint("u")
        test = self.client(self.config(environment=Environment.TEST))
        with self.assertRaises(AuthsyncError.JwtDisabled) as raised:
            test.pass_authentication_details(token, "u")
        self.assertIn("JWT disabled", str(raised.exception))
        self.assertNotIn(token, str(raised.exception))
        relaxed = self.client(self.config(environment=Environment.TEST, disable_integration_validator=True))
        live = self.client(self.config(environment=Environment.LIVE))
        for client in (relaxed, live):
            self.assertEqual(
                client.pass_authentication_details(token, "u"),
                Outcome.IGNORED(reason=IgnoredReason.JWT_DISABLED),
            )

    def test_a_malformed_token_message_never_shows_the_token(self):
        client = self.client(self.config(jwt_enabled=True))
        secret = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1In0.sig nature"
        with self.assertRaises(AuthsyncError.InvalidToken) as raised:
            client.pass_authentication_details(secret, "u")
        self.assertNotIn("eyJzdWIiOiJ1In0", str(raised.exception))
        self.assertNotIn("eyJzdWIiOiJ1In0", repr(raised.exception))


class SurfaceTest(ClientTest):
    def test_records_are_keyword_only_with_defaults(self):
        with self.assertRaises(TypeError):
            authsync.ClientConfig("a", SERVER, Environment.LIVE)
        config = authsync.ClientConfig(app_id="a", endpoint=SERVER, environment=Environment.LIVE)
        self.assertEqual(
            (config.jwt_enabled, config.state_dir, config.seed, config.session_on_launch),
            (False, None, None, False),
        )
        response = authsync.HttpResponse(status=204)
        self.assertEqual((response.headers, response.body), ({}, b""))

    def test_the_client_is_usable_from_many_threads(self):
        client = self.client(self.config(batch_max_events=50))
        errors = []

        def work():
            try:
                for _ in range(100):
                    client.track("e", '{"t": 1}')
            except Exception as error:  # noqa: BLE001
                errors.append(error)

        threads = [threading.Thread(target=work) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.assertEqual(errors, [])
        self.assertEqual(client.flush_and_wait(20_000).pending_events, 0)
        self.assertEqual(accepted(client.app_id()), 400)
        self.assertEqual(client.totals().acked, 400)

    def test_session_on_launch_and_pending(self):
        client = self.client(self.config(session_on_launch=True, flush_interval_ms=100))
        client.track("e")
        self.assertEqual(client.pending().pending_events, 1)
        # The flush interval (100 ms here, 20 s by default) seals the batch on its own.
        wait_until(lambda: accepted(client.app_id()) == 1, what="the flush interval")
        self.assertEqual(client.shutdown(1_000).pending_events, 0)
        self.assertEqual(client.shutdown(1_000).pending_events, 0, "a second shutdown is harmless")
