//! Bytes across the boundary: in from `Buffer`, `Uint8Array` or a string (UTF-8), out as
//! `Buffer`.

use memmesh::Bytes;
use napi::bindgen_prelude::{
    ArrayBuffer, Buffer, BufferSlice, Either, Env, FromNapiValue, Uint8ArraySlice, Unknown,
};
use napi::{JsValue, ValueType};

/// Copies a JS payload (a `Buffer`/`Uint8Array`, or a string) into `Bytes`.
pub fn from_js(data: Either<Uint8ArraySlice<'_>, String>) -> Bytes {
    match data {
        Either::A(slice) => Bytes::copy_from_slice(&slice),
        Either::B(text) => Bytes::from(text.into_bytes()),
    }
}

/// Copies `Bytes` into a new `Buffer` (an external buffer, made on any thread and turned
/// into a JS value later).
pub fn to_buffer(data: &Bytes) -> Buffer {
    Buffer::from(data.to_vec())
}

/// Copies `data` into a new `Buffer` owned by the JS engine, on the JavaScript thread of
/// `env`: one copy, as [`to_buffer`] makes, without the external buffer's finalizer and
/// tracking (which cost more than the copy for small values).
pub fn buffer_here<'env>(env: &'env Env, data: &[u8]) -> napi::Result<BufferSlice<'env>> {
    BufferSlice::copy_from(env, data)
}

/// Reads a value a JS handler returned: `Buffer`, any `Uint8Array`, `ArrayBuffer` or a
/// string. Anything else is described in the error message.
pub fn from_unknown(value: Unknown<'_>) -> Result<Bytes, String> {
    let env = value.value().env;
    let raw = value.raw();
    let described =
        |what: &str| format!("the handler returned {what}; return a Buffer, Uint8Array or string");
    match value.get_type().map_err(|e| e.reason)? {
        ValueType::String => {
            let text = unsafe { String::from_napi_value(env, raw) }.map_err(|e| e.reason)?;
            Ok(Bytes::from(text.into_bytes()))
        }
        ValueType::Object => {
            if value.is_typedarray().unwrap_or(false) {
                let slice = unsafe { Uint8ArraySlice::from_napi_value(env, raw) }
                    .map_err(|_| described("a typed array that is not a Uint8Array"))?;
                Ok(Bytes::copy_from_slice(&slice))
            } else if value.is_arraybuffer().unwrap_or(false) {
                let buffer =
                    unsafe { ArrayBuffer::from_napi_value(env, raw) }.map_err(|e| e.reason)?;
                Ok(Bytes::copy_from_slice(&buffer))
            } else {
                Err(described("an object"))
            }
        }
        ValueType::Undefined => Err(described("undefined")),
        ValueType::Null => Err(described("null")),
        other => Err(described(&format!("a {}", type_name(other)))),
    }
}

/// How a JS value is described in error messages: `undefined`, `null`, `a number`...
pub fn describe(value: &Unknown<'_>) -> String {
    match value.get_type() {
        Ok(ValueType::Undefined) => "undefined".into(),
        Ok(ValueType::Null) => "null".into(),
        Ok(ValueType::String) => "a string".into(),
        Ok(ValueType::Object) => "an object".into(),
        Ok(other) => format!("a {}", type_name(other)),
        Err(_) => "a value of unknown type".into(),
    }
}

fn type_name(t: ValueType) -> &'static str {
    match t {
        ValueType::Boolean => "boolean",
        ValueType::Number => "number",
        ValueType::Symbol => "symbol",
        ValueType::Function => "function",
        ValueType::BigInt => "bigint",
        _ => "value of another type",
    }
}
