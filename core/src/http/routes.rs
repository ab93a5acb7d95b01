//! The routes of the HTTP front, the bearer-token check and the JSON errors.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, MatchedPath, Path, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::docs::DocId;
use crate::error::{Error, ErrorKind};
use crate::http::api::{peer_json, transfer_json, Api};
use crate::http::{feed, limits};

/// The dashboard: one page, no dependencies, live through `/events`.
const DASHBOARD: &str = include_str!("dashboard.html");

/// An error as the API answers it: `{"error": {"kind": "NotFound", "message": ...}}`
/// with the status of its kind.
pub(crate) struct ApiError(pub Error);

impl<E: Into<Error>> From<E> for ApiError {
    fn from(e: E) -> Self {
        ApiError(e.into())
    }
}

/// The HTTP status of an error kind.
pub(crate) fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::InvalidInput => StatusCode::BAD_REQUEST,
        ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorKind::QuotaExceeded => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::Unsupported => StatusCode::CONFLICT,
        ErrorKind::Timeout => StatusCode::GATEWAY_TIMEOUT,
        ErrorKind::PeerUnavailable | ErrorKind::Closed => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The JSON error response of `kind` with `message`.
pub(crate) fn error_response(kind: ErrorKind, message: &str) -> Response {
    let body = json!({"error": {"kind": kind.as_str(), "message": message}});
    let mut r = (status_of(kind), Json(body)).into_response();
    if kind == ErrorKind::Unauthorized {
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    r
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        error_response(self.0.kind(), self.0.message())
    }
}

type Answer = Result<Json<Value>, ApiError>;

/// Every route on `api`.
pub(crate) fn router(api: Arc<Api>) -> Router {
    Router::new()
        .route("/", get(dashboard))
        .route("/health", get(health))
        .route("/cluster/members", get(members))
        .route("/cluster/leader", get(leader))
        .route("/storage/stats", get(storage))
        .route("/sync/status", get(sync_status))
        .route("/transfers", get(transfers))
        .route("/metrics", get(metrics))
        .route("/events", get(feed::events))
        .route("/docs/{id}/sync", post(force_sync))
        .route("/node/drain", get(drain_status).post(drain))
        .fallback(not_found)
        .method_not_allowed_fallback(not_allowed)
        .layer(middleware::from_fn_with_state(api.clone(), guard))
        .layer(DefaultBodyLimit::max(limits::MAX_BODY))
        .with_state(api)
}

/// Routes anyone who reaches the listener may read: the health check and the (static)
/// dashboard page, which asks for the token itself.
fn is_public(path: &str) -> bool {
    matches!(path, "/" | "/health")
}

/// Checks the bearer token, bounds the requests served at once and counts them.
async fn guard(State(api): State<Arc<Api>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |m| m.as_str())
        .to_string();
    let response = if !is_public(req.uri().path()) && !api.admits(bearer(&req)) {
        error_response(ErrorKind::Unauthorized, "a valid bearer token is required")
    } else if req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|n| n > limits::MAX_BODY)
    {
        error_response(ErrorKind::InvalidInput, "the request body is too large")
    } else {
        match tokio::time::timeout(limits::QUEUE_WAIT, api.slots.acquire()).await {
            Ok(Ok(_permit)) => next.run(req).await,
            _ => error_response(ErrorKind::PeerUnavailable, "the node is busy"),
        }
    };
    let class = format!("{}xx", response.status().as_u16() / 100);
    api.metrics
        .http_requests
        .get_or_create(&vec![("route", route), ("status", class)])
        .inc();
    response
}

/// The token of an `Authorization: Bearer ...` header.
fn bearer(req: &Request) -> Option<&str> {
    let v = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

async fn dashboard() -> Html<&'static str> {
    Html(DASHBOARD)
}

async fn not_found() -> Response {
    error_response(ErrorKind::NotFound, "no such route")
}

async fn not_allowed() -> Response {
    let mut r = error_response(ErrorKind::InvalidInput, "method not allowed on this route");
    *r.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    r
}

async fn health(State(api): State<Arc<Api>>) -> Json<Value> {
    Json(json!({
        "status": if api.shared.is_closed() { "closing" } else { "ok" },
        "id": api.shared.id.to_string(),
        "name": api.shared.hello.name,
        "addr": api.shared.local_addr.to_string(),
        "uptime_secs": api.started.elapsed().as_secs(),
        "draining": api.src.drain.status().draining,
    }))
}

async fn members(State(api): State<Arc<Api>>) -> Json<Value> {
    let members: Vec<Value> = api.peers().iter().map(peer_json).collect();
    Json(json!({
        "self": {"id": api.shared.id.to_string(), "name": api.shared.hello.name},
        "members": members,
    }))
}

async fn leader(State(api): State<Arc<Api>>) -> Json<Value> {
    let leader = api.leader();
    Json(json!({
        "leader": leader.to_string(),
        "is_self": leader == api.shared.id,
    }))
}

async fn storage(State(api): State<Arc<Api>>) -> Json<Value> {
    Json(api.storage().await)
}

async fn sync_status(State(api): State<Arc<Api>>) -> Answer {
    let docs = api.src.docs.sync_status().await?;
    let docs: Vec<Value> = docs
        .iter()
        .map(|d| {
            let peers: Vec<Value> = d
                .peers
                .iter()
                .map(|p| {
                    json!({
                        "peer": p.peer.to_string(),
                        "in_sync": p.in_sync,
                        "in_flight": p.in_flight,
                        "behind": p.behind,
                        "last_synced": p.last_synced,
                    })
                })
                .collect();
            json!({
                "id": d.id.to_string(),
                "reach": format!("{:?}", d.reach).to_lowercase(),
                "heads": d.heads,
                "peers": peers,
            })
        })
        .collect();
    Ok(Json(json!({ "documents": docs })))
}

async fn transfers(State(api): State<Arc<Api>>) -> Json<Value> {
    let list: Vec<Value> = api.transfers().iter().map(transfer_json).collect();
    Json(json!({ "transfers": list }))
}

async fn metrics(State(api): State<Arc<Api>>) -> Response {
    let snapshot = api.snapshot().await;
    match api.metrics.encode(snapshot) {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            Body::from(text),
        )
            .into_response(),
        Err(_) => error_response(ErrorKind::Internal, "encoding the metrics failed"),
    }
}

async fn force_sync(
    State(api): State<Arc<Api>>,
    id: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Response {
    let Ok(Path(id)) = id else {
        return error_response(ErrorKind::InvalidInput, "not a document id");
    };
    let id: DocId = match id.parse() {
        Ok(id) => id,
        Err(e) => return ApiError::from(e).into_response(),
    };
    match api.src.docs.force_sync(id).await {
        Ok(()) => (
            StatusCode::ACCEPTED,
            Json(json!({"id": id.to_string(), "queued": true})),
        )
            .into_response(),
        Err(e) => ApiError(e).into_response(),
    }
}

/// A drain status as the API answers it.
fn drain_json(s: crate::node::DrainStatus) -> Value {
    json!({
        "draining": s.draining,
        "partitions": s.partitions,
        "files": s.files,
        "done": s.done(),
    })
}

async fn drain_status(State(api): State<Arc<Api>>) -> Json<Value> {
    Json(drain_json(api.src.drain.status()))
}

/// Starts draining the node (ADR 0025): 202 with the status; poll `GET /node/drain`
/// until `done`.
async fn drain(State(api): State<Arc<Api>>) -> Response {
    match api.src.drain.start().await {
        Ok(status) => (StatusCode::ACCEPTED, Json(drain_json(status))).into_response(),
        Err(e) => ApiError(e).into_response(),
    }
}
