"""Several workspaces in one client (W1): the original SDK's `workspaceId` arguments,
as handles of one client."""

import authsync

from .support import ClientTest, Listener, accepted, events, mint


class WorkspacesTest(ClientTest):
    def test_each_workspace_sends_its_own_events_with_its_own_listener_and_token(self):
        main_listener, other_listener = Listener(), Listener()
        client = self.client(self.config(jwt_enabled=True), listener=main_listener)
        other = client.add_workspace(self.config(self.app_id("-b"), jwt_enabled=True), listener=other_listener)
        main_app, other_app = client.app_id(), other.app_id()
        self.assertEqual(client.workspace_ids(), [main_app, other_app])
        self.assertEqual(client.workspace(other_app).app_id(), other_app)
        self.assertEqual(other.workspace(main_app).app_id(), main_app)

        client.track("main_event", '{"n": 1}')
        other.identify("user-b")
        other.track("other_event", '{"n": 2}')
        other.track("other_event", '{"n": 3}')

        # The other workspace's user has no token yet: only its listener hears it.
        self.assertEqual(client.flush_and_wait(10_000).pending_events, 0)
        self.assertEqual(other.flush_and_wait(2_000).pending_events, 2)
        self.assertEqual(other_listener.codes(), ["TOKEN_NOT_AVAILABLE"])
        self.assertEqual(main_listener.codes(), [])

        other.pass_authentication_details(mint("user-b"), "user-b")
        self.assertEqual(other.flush_and_wait(10_000).pending_events, 0)
        self.assertEqual((accepted(main_app), accepted(other_app)), (1, 2))
        self.assertEqual([e["name"] for e in events(other_app)], ["other_event", "other_event"])
        self.assertEqual(client.totals().acked, 1)
        self.assertEqual(other.totals().acked, 2)
        self.assertIsNone(client.current_identifier())
        self.assertEqual(other.current_identifier(), "user-b")

    def test_a_duplicate_or_unknown_workspace_is_a_typed_error(self):
        client = self.client()
        with self.assertRaises(authsync.AuthsyncError.DuplicateWorkspace):
            client.add_workspace(self.config(client.app_id()))
        with self.assertRaises(authsync.AuthsyncError.UnknownWorkspace):
            client.workspace("no-such-app")
        client.track("still_fine")
        self.assertEqual(client.flush_and_wait(10_000).pending_events, 0)

    def test_shutting_down_through_any_handle_ends_every_workspace(self):
        client = self.client()
        other = client.add_workspace(self.config(self.app_id("-b")))
        other.track("pending", '{"n": 1}')
        client.track("pending", '{"n": 2}')
        report = other.shutdown(10_000)
        self.assertEqual(report.pending_events, 0)
        self.assertEqual((accepted(client.app_id()), accepted(other.app_id())), (1, 1))
        for handle in (client, other):
            with self.assertRaises(authsync.AuthsyncError.ShutDown):
                handle.track("after")
