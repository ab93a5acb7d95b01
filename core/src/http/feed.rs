//! The live feed (`GET /events`, Server-Sent Events): membership changes, transfers,
//! document changes and a stats tick every second, as JSON objects with a `type`. A feed ends when the node
//! shuts down; a reader that falls behind gets a `lagged` event and skips ahead.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use crate::error::ErrorKind;
use crate::http::api::{bucket_json, lock, open_feed, peer_json, transfer_json, Api};
use crate::http::limits;
use crate::http::routes::error_response;
use crate::membership::view::Event as MemberEvent;

/// `GET /events`.
pub(crate) async fn events(State(api): State<Arc<Api>>) -> Response {
    let Some(slot) = open_feed(&api) else {
        return error_response(
            ErrorKind::QuotaExceeded,
            "too many live feeds are open on this node",
        );
    };
    let rx = api.feed.subscribe();
    let cancel = api.shared.cancel.clone();
    let hello = Some(json!({"type": "hello", "id": api.shared.id.to_string()}).to_string());
    let stream = futures::stream::unfold(
        (rx, cancel, slot, hello),
        |(mut rx, cancel, slot, hello)| async move {
            if let Some(h) = hello {
                let e = Event::default().data(h);
                return Some((Ok::<_, Infallible>(e), (rx, cancel, slot, None)));
            }
            let data: String = tokio::select! {
                biased;
                _ = cancel.cancelled() => return None,
                r = rx.recv() => match r {
                    Ok(item) => item.to_string(),
                    Err(RecvError::Lagged(n)) => json!({"type": "lagged", "missed": n}).to_string(),
                    Err(RecvError::Closed) => return None,
                },
            };
            Some((Ok(Event::default().data(data)), (rx, cancel, slot, None)))
        },
    );
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// The name of a membership event in the feed and the metrics.
fn member_event(e: &MemberEvent) -> (&'static str, Value) {
    match e {
        MemberEvent::PeerUp { id, name, .. } => ("up", json!({"id": id.to_string(), "name": name})),
        MemberEvent::PeerSuspect { id } => ("suspect", json!({"id": id.to_string()})),
        MemberEvent::PeerDown { id } => ("down", json!({"id": id.to_string()})),
        MemberEvent::LeaderChanged { leader } => ("leader", json!({"id": leader.to_string()})),
        MemberEvent::Lagged { missed } => ("lagged", json!({"missed": missed})),
    }
}

/// Counts and publishes membership events until the node shuts down.
pub(crate) async fn relay_members(api: Arc<Api>, cancel: CancellationToken) {
    let mut rx = api.src.membership.subscribe();
    loop {
        let e = tokio::select! {
            _ = cancel.cancelled() => return,
            r = rx.recv() => match r {
                Ok(e) => e,
                Err(RecvError::Lagged(missed)) => MemberEvent::Lagged { missed },
                Err(RecvError::Closed) => return,
            },
        };
        let (name, detail) = member_event(&e);
        api.metrics
            .member_events
            .get_or_create(&vec![("event", name.to_string())])
            .inc();
        api.publish(json!({"type": "member", "event": name, "detail": detail}));
    }
}

/// Keeps the transfers in progress, counts their bytes and publishes their progress
/// until the node shuts down.
pub(crate) async fn relay_transfers(
    api: Arc<Api>,
    mut rx: tokio::sync::broadcast::Receiver<crate::transfer::Progress>,
    cancel: CancellationToken,
) {
    loop {
        let p = tokio::select! {
            _ = cancel.cancelled() => return,
            r = rx.recv() => match r {
                Ok(p) => p,
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return,
            },
        };
        let added = lock(&api.active).update(p.clone(), Instant::now());
        if added > 0 {
            api.metrics
                .transfer_bytes
                .get_or_create(&vec![("direction", p.direction.as_str().to_string())])
                .inc_by(added);
        }
        if api.feed.receiver_count() > 0 {
            let mut t = transfer_json(&p);
            t["type"] = json!("transfer");
            api.publish(t);
        }
    }
}

/// Publishes a `doc` event (its id, new heads and the paths the change touched) for every
/// document change, local or from a peer, until the node shuts down.
pub(crate) async fn relay_docs(api: Arc<Api>, cancel: CancellationToken) {
    let mut rx = api.src.docs.subscribe_changes();
    loop {
        let change = tokio::select! {
            _ = cancel.cancelled() => return,
            r = rx.recv() => match r {
                Ok(change) => change,
                Err(RecvError::Lagged(missed)) => {
                    api.publish(json!({"type": "lagged", "missed": missed}));
                    continue;
                }
                Err(RecvError::Closed) => return,
            },
        };
        if api.feed.receiver_count() == 0 {
            continue;
        }
        api.publish(json!({
            "type": "doc",
            "id": change.id.to_string(),
            "heads": change.heads,
            "paths": change.paths,
            "paths_truncated": change.paths_truncated,
        }));
    }
}

/// Publishes the node's stats every [`limits::TICK`] while a feed is open.
pub(crate) async fn tick(api: Arc<Api>, cancel: CancellationToken) {
    let mut every = tokio::time::interval(limits::TICK);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = every.tick() => {}
        }
        if api.feed.receiver_count() == 0 {
            continue;
        }
        let buckets: Vec<Value> = api
            .buckets()
            .iter()
            .map(|(n, s)| bucket_json(n, s))
            .collect();
        let members: Vec<Value> = api.peers().iter().map(peer_json).collect();
        let transfers: Vec<Value> = api.transfers().iter().map(transfer_json).collect();
        let files = api.src.files.stats().ok().map(|f| f.files);
        let documents = api.src.docs.count().await;
        api.publish(json!({
            "type": "stats",
            "leader": api.leader().to_string(),
            "members": members,
            "buckets": buckets,
            "transfers": transfers,
            "files": files,
            "documents": documents,
        }));
    }
}
