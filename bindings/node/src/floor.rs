//! Not part of the API: the floor a request to the node itself stands on in Node.js.
//!
//! `bench/node/call_bench.js` measures, beside `ch.request(node.id, ..)`, a native call
//! that does what the binding does around the core's request and nothing else: read the
//! peer id and copy the payload in, build the handler's `{ from, data }` argument, call
//! the JS handler, read its answer back as bytes, and return them as a new Buffer. What
//! that costs is Node-API's and V8's share of a local request, which no change to memmesh
//! can remove.

use napi::bindgen_prelude::{BufferSlice, Either, Env, Function, Uint8ArraySlice, Unknown};
use napi_derive::napi;

use crate::bytes::{buffer_here, from_js, from_unknown};
use crate::error::{js_error, to_js};
use crate::handler::request_arg;

/// The binding's work around a local request, without the core (see the module docs).
#[napi(js_name = "__requestFloorForBench", catch_unwind)]
pub fn request_floor<'env>(
    env: &'env Env,
    peer: String,
    data: Either<Uint8ArraySlice<'_>, String>,
    handler: Function<'_, Unknown<'static>, Unknown<'static>>,
) -> napi::Result<BufferSlice<'env>> {
    let from: memmesh::NodeId = to_js(env, peer.parse())?;
    let data = from_js(data);
    let answer = handler.call(request_arg(env, from, &data)?)?;
    let reply = from_unknown(answer).map_err(|m| {
        js_error(
            env,
            &memmesh::Error::new(memmesh::ErrorKind::HandlerFailed, m),
        )
    })?;
    buffer_here(env, &reply)
}
