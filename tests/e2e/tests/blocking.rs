//! The end-to-end suites, run against the blocking driver.

authsync_e2e::suite!(authsync_e2e::blocking::BlockingDriver);
