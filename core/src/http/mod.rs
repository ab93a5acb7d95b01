//! The HTTP management front of a node (issue 18, ADR 0025): a JSON API, Prometheus
//! metrics, a live feed (Server-Sent Events) and a dashboard, served with axum on the
//! node's own runtime when `http_listen` is set.
//!
//! - [`active`]: the transfers in progress (a pure table fed by progress events);
//! - [`metrics`]: the node's Prometheus registry (one per node);
//! - [`limits`]: what a client may use;
//! - `api`, `routes`, `feed`, `listener`: what the routes share, the JSON routes, the
//!   live feed, and the listener started and stopped with the node.
//!
//! Routes: `GET /` (dashboard), `/health`, `/cluster/members`, `/cluster/leader`,
//! `/storage/stats`, `/sync/status`, `/transfers`, `/metrics`, `/events`, and
//! `POST /docs/{id}/sync`. `docs/http-api.yaml` is the OpenAPI document of them.

pub mod active;
pub(crate) mod api;
pub(crate) mod feed;
pub mod limits;
pub(crate) mod listener;
pub mod metrics;
pub(crate) mod routes;

pub use active::ActiveTransfers;
pub use metrics::Metrics;
