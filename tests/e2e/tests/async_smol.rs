//! The end-to-end suites, run against the async driver.

authsync_e2e::suite!(authsync_e2e::async_smol::AsyncDriver);
