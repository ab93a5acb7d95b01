//! memmesh errors as JavaScript `Error` objects whose `.code` is the `ErrorKind` name.
//!
//! The JS error object is built on the JavaScript thread and handed to napi by
//! reference, so napi throws (or rejects with) exactly that object, `.code` included.

use napi::bindgen_prelude::{Env, JsError, Unknown};
use napi::JsValue;

/// The `.code` of every error memmesh can raise, in `ErrorKind` order.
pub fn error_codes() -> Vec<String> {
    memmesh::ErrorKind::ALL
        .iter()
        .map(|k| k.as_str().to_string())
        .collect()
}

/// Builds a JS `Error` with `message` and `.code = kind.as_str()`, wrapped as a napi
/// error that throws or rejects with that very object. Call on the JavaScript thread.
pub fn js_error(env: &Env, error: &memmesh::Error) -> napi::Error {
    let code = error.kind().as_str();
    let built: napi::Error<&str> = napi::Error::new(code, error.message());
    let value: Unknown<'_> = JsError::from(built).into_unknown(*env);
    if value.raw().is_null() {
        // The environment is tearing down: nothing can receive the error object.
        return napi::Error::from_reason(error.to_string());
    }
    napi::Error::from(value)
}

/// `js_error` for a result: converts the error side, keeps the value.
pub fn to_js<T>(env: &Env, result: memmesh::Result<T>) -> napi::Result<T> {
    result.map_err(|e| js_error(env, &e))
}

/// An `InvalidInput` error raised by the binding's own argument checks.
pub fn invalid(message: impl Into<String>) -> memmesh::Error {
    memmesh::Error::invalid(message)
}
