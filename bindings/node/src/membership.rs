//! Membership events as plain JS objects, read one at a time from a promise.

use std::sync::Arc;

use memmesh::Event;
use napi::bindgen_prelude::{Env, PromiseRaw};
use napi_derive::napi;

use crate::runtime::spawn_promise;

/// One membership event. `type` says which; the other fields are set when they apply.
#[napi(object)]
pub struct MembershipEvent {
    /// `"PeerUp"`, `"PeerSuspect"`, `"PeerDown"`, `"LeaderChanged"` or `"Lagged"`.
    #[napi(js_name = "type")]
    pub kind: String,
    /// The member (PeerUp, PeerSuspect, PeerDown).
    pub id: Option<String>,
    /// Its name (PeerUp).
    pub name: Option<String>,
    /// Its addresses, `"ip:port"` (PeerUp).
    pub addrs: Option<Vec<String>>,
    /// The new leader's id (LeaderChanged).
    pub leader: Option<String>,
    /// How many events this reader missed by falling behind (Lagged).
    pub missed: Option<f64>,
}

impl From<Event> for MembershipEvent {
    fn from(e: Event) -> Self {
        let mut out = MembershipEvent {
            kind: String::new(),
            id: None,
            name: None,
            addrs: None,
            leader: None,
            missed: None,
        };
        match e {
            Event::PeerUp { id, name, addrs } => {
                out.kind = "PeerUp".into();
                out.id = Some(id.to_string());
                out.name = Some(name);
                out.addrs = Some(addrs.iter().map(ToString::to_string).collect());
            }
            Event::PeerSuspect { id } => {
                out.kind = "PeerSuspect".into();
                out.id = Some(id.to_string());
            }
            Event::PeerDown { id } => {
                out.kind = "PeerDown".into();
                out.id = Some(id.to_string());
            }
            Event::LeaderChanged { leader } => {
                out.kind = "LeaderChanged".into();
                out.leader = Some(leader.to_string());
            }
            Event::Lagged { missed } => {
                out.kind = "Lagged".into();
                out.missed = Some(missed as f64);
            }
        }
        out
    }
}

/// A subscription to membership events, from the moment it was created (the native
/// half of `node.events()`).
#[napi(js_name = "NativeEvents")]
pub struct Events {
    inner: Arc<tokio::sync::Mutex<memmesh::Events>>,
    node: memmesh::Node,
}

impl Events {
    pub(crate) fn new(inner: memmesh::Events, node: memmesh::Node) -> Self {
        Self {
            inner: Arc::new(tokio::sync::Mutex::new(inner)),
            node,
        }
    }
}

#[napi]
impl Events {
    /// Resolves with the next event; rejects with `Closed` once the node shuts down.
    #[napi(ts_return_type = "Promise<MembershipEvent>", catch_unwind)]
    pub fn next<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, MembershipEvent>> {
        let inner = self.inner.clone();
        spawn_promise(
            env,
            &self.node.runtime_handle(),
            async move { inner.lock().await.next().await },
            |e| Ok(MembershipEvent::from(e)),
        )
    }
}
