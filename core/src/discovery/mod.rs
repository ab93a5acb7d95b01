//! Finding peers without being told: multicast DNS on the local network. (Bootstrap
//! addresses and peer exchange live with membership.)

pub mod advert;
pub mod mdns;

pub use advert::{Advert, SERVICE_TYPE};
