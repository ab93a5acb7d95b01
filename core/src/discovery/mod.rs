//! Finding peers without being told: multicast DNS on the local network. (Bootstrap
//! addresses and peer exchange live with membership.)
//!
//! `advert` reads and writes the records, `plausible` drops addresses not worth a dial,
//! `admission` decides which adverts to dial and when (pure, bounded by `limits`), `rate`
//! and `restart` are its clocks, `browse` keeps an mdns-sd browse running whatever
//! happens to it, `queue` hands records from it to the dial task (`dialer`, the I/O
//! shell around the admission), and `mdns` advertises the node and wires them together.
//! `known` is the table of peers remembered across restarts (redialled by the node).

pub mod admission;
pub mod advert;
pub mod browse;
mod dialer;
pub mod error;
pub mod known;
pub mod limits;
pub mod mdns;
pub mod outsider_redial;
pub mod plausible;
pub mod queue;
pub mod rate;
pub mod restart;

pub use advert::{Advert, SERVICE_TYPE};
pub use error::DiscoveryError;
