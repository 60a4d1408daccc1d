#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| authsync_fuzz_bodies::journal(data));
