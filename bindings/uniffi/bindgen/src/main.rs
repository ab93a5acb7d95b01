//! `uniffi-bindgen`: generates the Swift and Python bindings of `memmesh-uniffi` from the
//! compiled library (`generate --library target/debug/libmemmesh_uniffi.so ...`).

fn main() {
    uniffi::uniffi_bindgen_main();
}
