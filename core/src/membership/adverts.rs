//! Free-quota adverts gossiped through SWIM: each node piggybacks
//! `(id, seq, quota, free)` on foca's messages as a custom broadcast, so every member
//! learns every other member's free RAM without extra round trips. `Auto` block placement
//! and `PeerInfo::quota_free` read the table kept here.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::identity::NodeId;
use crate::wire::codec::{decode_header, encode_header, WireError};

/// One node's advertised memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Advert {
    /// The advertising node.
    pub id: NodeId,
    /// Increases with every new advert from that node (a restart starts above the last).
    pub seq: u64,
    /// Its memory quota in bytes.
    pub quota: u64,
    /// Bytes of it still free.
    pub free: u64,
}

impl Advert {
    /// The advert's wire form.
    pub fn encode(&self) -> Result<Vec<u8>, WireError> {
        encode_header(self)
    }
}

/// The latest advert of every node, shared between the SWIM actor and readers.
#[derive(Debug, Clone, Default)]
pub struct AdvertTable(Arc<RwLock<HashMap<NodeId, Advert>>>);

impl AdvertTable {
    /// Records `advert` if it is newer than what is known; returns whether it was.
    pub fn offer(&self, advert: Advert) -> bool {
        let mut map = self.0.write().unwrap_or_else(|p| p.into_inner());
        match map.get(&advert.id) {
            Some(known) if known.seq >= advert.seq => false,
            _ => {
                map.insert(advert.id, advert);
                true
            }
        }
    }

    /// The latest advert of `id`.
    pub fn get(&self, id: &NodeId) -> Option<Advert> {
        self.0
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .copied()
    }

    /// Forgets `id` (it left or was removed).
    pub fn forget(&self, id: &NodeId) {
        self.0.write().unwrap_or_else(|p| p.into_inner()).remove(id);
    }
}

/// The dissemination key: a newer advert of the same node replaces an older one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdvertKey {
    id: NodeId,
    seq: u64,
}

impl foca::Invalidates for AdvertKey {
    fn invalidates(&self, other: &Self) -> bool {
        self.id == other.id && self.seq >= other.seq
    }
}

/// foca's custom-broadcast handler for adverts.
#[derive(Debug, Clone)]
pub struct AdvertHandler {
    table: AdvertTable,
    me: NodeId,
}

impl AdvertHandler {
    /// A handler recording into `table`; adverts about `me` from others are ignored.
    pub fn new(table: AdvertTable, me: NodeId) -> Self {
        Self { table, me }
    }
}

impl<T> foca::BroadcastHandler<T> for AdvertHandler {
    type Key = AdvertKey;
    type Error = WireError;

    fn receive_item(
        &mut self,
        data: &[u8],
        sender: Option<&T>,
    ) -> Result<Option<AdvertKey>, WireError> {
        let advert: Advert = decode_header(data)?;
        let ours = sender.is_none();
        if advert.id == self.me && !ours {
            return Ok(None);
        }
        let key = AdvertKey {
            id: advert.id,
            seq: advert.seq,
        };
        if self.table.offer(advert) || ours {
            Ok(Some(key))
        } else {
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Keypair;
    use foca::{BroadcastHandler, Invalidates};

    #[test]
    fn only_newer_adverts_are_kept_and_passed_on() {
        let me = Keypair::generate().unwrap().node_id();
        let other = Keypair::generate().unwrap().node_id();
        let table = AdvertTable::default();
        let mut h = AdvertHandler::new(table.clone(), me);
        let a = |seq, free| Advert {
            id: other,
            seq,
            quota: 100,
            free,
        };
        let sender = 1u8;
        let got = |h: &mut AdvertHandler, ad: Advert| {
            BroadcastHandler::<u8>::receive_item(h, &ad.encode().unwrap(), Some(&sender)).unwrap()
        };
        assert!(got(&mut h, a(2, 50)).is_some());
        assert!(got(&mut h, a(1, 70)).is_none());
        assert_eq!(table.get(&other).unwrap().free, 50);
        assert!(got(&mut h, a(3, 10)).is_some());
        assert_eq!(table.get(&other).unwrap().free, 10);
        let k3 = AdvertKey { id: other, seq: 3 };
        let k2 = AdvertKey { id: other, seq: 2 };
        assert!(k3.invalidates(&k2));
        assert!(!k2.invalidates(&k3));
        assert!(BroadcastHandler::<u8>::receive_item(&mut h, b"\xff\xff", Some(&sender)).is_err());
    }
}
