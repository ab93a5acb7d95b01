//! Document change subscriptions (`docs.changes()`, `doc.changes()`): the events as plain
//! objects and the native stream that yields them (core `docs/changes.rs`).

use std::sync::Arc;

use memmesh::docs::{ChangeEvent, ChangeOrigin, DocChanges};
use napi::bindgen_prelude::{Env, PromiseRaw};
use napi_derive::napi;

use crate::runtime::spawn_promise;

/// One change event: `{ type: 'Change', id, heads, paths, pathsTruncated, origin }` or
/// `{ type: 'Lagged', missed }`.
#[napi(object)]
pub struct DocChange {
    /// `"Change"` or `"Lagged"`.
    #[napi(js_name = "type")]
    pub kind: String,
    /// The document (Change).
    pub id: Option<String>,
    /// Its heads after the change (Change).
    pub heads: Option<Vec<String>>,
    /// The paths the change touched, in the string form `get` takes (Change).
    pub paths: Option<Vec<String>>,
    /// Whether it touched more paths than `paths` lists (Change).
    pub paths_truncated: Option<bool>,
    /// `"local"`, or the node id of the peer whose sync brought it (Change).
    pub origin: Option<String>,
    /// How many events were dropped for this slow reader (Lagged).
    pub missed: Option<f64>,
}

impl From<ChangeEvent> for DocChange {
    fn from(e: ChangeEvent) -> Self {
        match e {
            ChangeEvent::Change(c) => DocChange {
                kind: "Change".into(),
                id: Some(c.id.to_string()),
                heads: Some(c.heads),
                paths: Some(c.paths),
                paths_truncated: Some(c.paths_truncated),
                origin: Some(match c.origin {
                    ChangeOrigin::Local => "local".to_string(),
                    ChangeOrigin::Peer(p) => p.to_string(),
                }),
                missed: None,
            },
            ChangeEvent::Lagged(n) => DocChange {
                kind: "Lagged".into(),
                id: None,
                heads: None,
                paths: None,
                paths_truncated: None,
                origin: None,
                missed: Some(n as f64),
            },
        }
    }
}

/// Changes of documents from the moment the subscription was made (the native half of
/// `docs.changes()` and `doc.changes()`).
#[napi(js_name = "NativeDocChanges")]
pub struct DocChangesStream {
    inner: Arc<tokio::sync::Mutex<DocChanges>>,
    node: memmesh::Node,
}

impl DocChangesStream {
    pub(crate) fn new(inner: DocChanges, node: memmesh::Node) -> Self {
        Self {
            inner: Arc::new(tokio::sync::Mutex::new(inner)),
            node,
        }
    }
}

#[napi]
impl DocChangesStream {
    /// Resolves with the next event; rejects with `Closed` once the node shuts down.
    #[napi(ts_return_type = "Promise<DocChange>", catch_unwind)]
    pub fn next<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, DocChange>> {
        let inner = self.inner.clone();
        spawn_promise(
            env,
            &self.node.runtime_handle(),
            async move {
                inner
                    .lock()
                    .await
                    .next()
                    .await
                    .ok_or_else(memmesh::Error::closed)
            },
            |e| Ok(DocChange::from(e)),
        )
    }
}
