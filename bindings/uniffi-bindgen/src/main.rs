//! `uniffi-bindgen`: generates the Python, Kotlin and Swift sources of authsync's
//! bindings from the built library (`target/<profile>/libauthsync_ffi.so`).

fn main() {
    uniffi::uniffi_bindgen_main()
}
