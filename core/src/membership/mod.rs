//! Membership: who is in the cluster and alive, by SWIM (the `foca` crate) over the
//! authenticated transport, with events, a grace period before `PeerDown`, periodic
//! full-state sync, and a deterministic leader.

pub(crate) mod actor;
pub mod admission;
pub mod adverts;
pub mod bootstrap_dns;
pub(crate) mod bootstrap_resolver;
pub mod codec;
pub mod config;
pub mod engine;
pub mod error;
pub mod events;
pub(crate) mod handle;
pub mod limits;
pub mod member;
pub mod packet;
pub mod prove;
pub mod rate;
pub mod rejoin;
pub(crate) mod service;
pub mod view;

pub use config::MembershipConfig;
pub use error::MembershipError;
pub use events::Events;
pub(crate) use handle::Membership;
pub use member::MemberId;
pub use view::{Event, View};
