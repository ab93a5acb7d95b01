//! Free-quota adverts gossiped through SWIM: each node piggybacks
//! `(id, seq, quota, free, disk_free)` on foca's messages as a custom broadcast, so members learn
//! each other's free RAM without extra round trips. `Auto` block placement and
//! `PeerInfo::quota_free` read the table kept here.
//!
//! An advert is only believed from the node it describes: foca hands the handler the
//! sender's SWIM identity, which the membership service has checked is the authenticated
//! peer the packet came from. Adverts are therefore not relayed (a relayed advert would be
//! refused); each node spreads its own. What a node says about itself is bounded too
//! ([`judge`]): the quota is capped at [`MAX_ADVERT_QUOTA`] and `free` at the quota; a new
//! generation starts its sequence afresh; within one, the sequence may only run ahead as
//! fast as a node can advertise, and no entry stays frozen beyond [`ADVERT_STALE_AFTER`].

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use tracing::debug;

use crate::identity::NodeId;
use crate::membership::limits::{
    ADVERT_SEQ_AHEAD, ADVERT_SEQ_INTERVAL, ADVERT_SEQ_SLACK, ADVERT_STALE_AFTER, MAX_ADVERT_QUOTA,
    MAX_MEMBERS,
};
use crate::membership::member::MemberId;
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
    /// Bytes of disk it accepts for others' files (its disk quota minus what it uses,
    /// bounded by the filesystem's free space minus a reserve; 0 without a data dir).
    pub disk_free: u64,
}

/// The most disk an advert may claim free (1 EiB): larger claims are cut to it.
pub const MAX_ADVERT_DISK: u64 = 1 << 60;

impl Advert {
    /// The advert's wire form.
    pub fn encode(&self) -> Result<Vec<u8>, WireError> {
        encode_header(self)
    }

    /// The advert with its figures made plausible: quota at most [`MAX_ADVERT_QUOTA`],
    /// free at most the quota, free disk at most [`MAX_ADVERT_DISK`].
    pub fn capped(self) -> Advert {
        let quota = self.quota.min(MAX_ADVERT_QUOTA);
        Advert {
            quota,
            free: self.free.min(quota),
            disk_free: self.disk_free.min(MAX_ADVERT_DISK),
            ..self
        }
    }
}

/// What is known of a node's adverts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Known {
    /// Its latest accepted advert.
    pub advert: Advert,
    /// The generation of the node that sent it.
    pub generation: u64,
    /// When it was accepted.
    pub at: Instant,
}

/// The decision about an advert received from a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Recorded.
    Accepted,
    /// It describes another node than its sender.
    NotFromSubject,
    /// Older than (or as old as) what is known.
    Stale,
    /// Its sequence number is further ahead than the node could have advertised.
    Implausible,
    /// The table is full of other nodes.
    Full,
}

/// Whether to accept `advert`, sent by the member `sender` at `now`, given what is known
/// of its node.
pub fn judge(known: Option<&Known>, advert: &Advert, sender: &MemberId, now: Instant) -> Verdict {
    if advert.id != sender.id {
        return Verdict::NotFromSubject;
    }
    // A node numbers its adverts from its starting generation on.
    if advert.seq > sender.generation.saturating_add(ADVERT_SEQ_AHEAD) {
        return Verdict::Implausible;
    }
    let Some(k) = known else {
        return Verdict::Accepted;
    };
    if sender.generation != k.generation {
        return if sender.generation > k.generation {
            Verdict::Accepted // a new incarnation starts afresh
        } else {
            Verdict::Stale
        };
    }
    let elapsed = now.saturating_duration_since(k.at);
    if elapsed >= ADVERT_STALE_AFTER {
        return Verdict::Accepted; // nothing freezes an entry for longer
    }
    if advert.seq <= k.advert.seq {
        return Verdict::Stale;
    }
    let steps = elapsed.as_millis() / ADVERT_SEQ_INTERVAL.as_millis().max(1);
    let allowed = k
        .advert
        .seq
        .saturating_add(u64::try_from(steps).unwrap_or(u64::MAX))
        .saturating_add(ADVERT_SEQ_SLACK);
    if advert.seq > allowed {
        Verdict::Implausible
    } else {
        Verdict::Accepted
    }
}

/// The latest advert of every node, shared between the SWIM actor and readers.
#[derive(Debug, Clone, Default)]
pub struct AdvertTable(Arc<RwLock<HashMap<NodeId, Known>>>);

impl AdvertTable {
    /// Records this node's own advert.
    pub fn own(&self, advert: Advert, generation: u64, now: Instant) {
        self.0.write().unwrap_or_else(|p| p.into_inner()).insert(
            advert.id,
            Known {
                advert,
                generation,
                at: now,
            },
        );
    }

    /// Considers `advert`, received from the member `sender` at `now`, and records it
    /// (capped) if [`judge`] accepts it.
    pub fn offer(&self, advert: Advert, sender: &MemberId, now: Instant) -> Verdict {
        let mut map = self.0.write().unwrap_or_else(|p| p.into_inner());
        let known = map.get(&advert.id);
        let mut verdict = judge(known, &advert, sender, now);
        if verdict == Verdict::Accepted && known.is_none() && map.len() > MAX_MEMBERS {
            verdict = Verdict::Full;
        }
        if verdict == Verdict::Accepted {
            map.insert(
                advert.id,
                Known {
                    advert: advert.capped(),
                    generation: sender.generation,
                    at: now,
                },
            );
        }
        verdict
    }

    /// The latest advert of `id`.
    pub fn get(&self, id: &NodeId) -> Option<Advert> {
        self.0
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .map(|k| k.advert)
    }

    /// Forgets `id` (it left or was removed).
    pub fn forget(&self, id: &NodeId) {
        self.0.write().unwrap_or_else(|p| p.into_inner()).remove(id);
    }

    /// How many nodes have an advert recorded.
    pub fn len(&self) -> usize {
        self.0.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether no advert is recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
    generation: u64,
}

impl AdvertHandler {
    /// A handler recording into `table` for node `me` (started as `generation`).
    pub fn new(table: AdvertTable, me: NodeId, generation: u64) -> Self {
        Self {
            table,
            me,
            generation,
        }
    }
}

impl foca::BroadcastHandler<MemberId> for AdvertHandler {
    type Key = AdvertKey;
    type Error = WireError;

    fn receive_item(
        &mut self,
        data: &[u8],
        sender: Option<&MemberId>,
    ) -> Result<Option<AdvertKey>, WireError> {
        let advert: Advert = decode_header(data)?;
        let key = AdvertKey {
            id: advert.id,
            seq: advert.seq,
        };
        let now = Instant::now();
        match sender {
            // Our own, queued by `add_broadcast`: record it and spread it.
            None => {
                self.table.own(advert, self.generation, now);
                Ok(Some(key))
            }
            // Nobody speaks for this node.
            Some(_) if advert.id == self.me => Ok(None),
            Some(sender) => {
                let verdict = self.table.offer(advert, sender, now);
                if verdict != Verdict::Accepted {
                    debug!(
                        from = %sender.id.short(),
                        about = %advert.id.short(),
                        ?verdict,
                        "free-quota advert refused"
                    );
                }
                // Not relayed: others believe an advert only from the node it describes.
                Ok(None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Keypair;
    use foca::{BroadcastHandler, Invalidates};
    use std::time::Duration;

    fn member(generation: u64) -> MemberId {
        MemberId {
            id: Keypair::generate().unwrap().node_id(),
            generation,
            name: "n".into(),
            addrs: vec![],
            role: crate::peer::Role::Member,
        }
    }

    fn ad(of: &MemberId, seq: u64, free: u64) -> Advert {
        Advert {
            id: of.id,
            seq,
            quota: 100,
            free,
            disk_free: 0,
        }
    }

    #[test]
    fn an_advert_is_believed_only_from_the_node_it_describes() {
        let t0 = Instant::now();
        let table = AdvertTable::default();
        let (honest, liar) = (member(1_000), member(1_000));
        assert_eq!(
            table.offer(ad(&honest, 1_000, 50), &honest, t0),
            Verdict::Accepted
        );
        let forged = Advert {
            id: honest.id,
            seq: u64::MAX,
            quota: u64::MAX,
            free: u64::MAX,
            disk_free: u64::MAX,
        };
        assert_eq!(table.offer(forged, &liar, t0), Verdict::NotFromSubject);
        assert_eq!(table.get(&honest.id).unwrap().free, 50);
        // Through foca's handler: nothing about us from others, nothing relayed.
        let me = member(1);
        let mut h = AdvertHandler::new(table.clone(), me.id, me.generation);
        let got = |h: &mut AdvertHandler, a: Advert, s: Option<&MemberId>| {
            BroadcastHandler::<MemberId>::receive_item(h, &a.encode().unwrap(), s).unwrap()
        };
        assert_eq!(got(&mut h, ad(&me, 5, 1), Some(&liar)), None);
        assert_eq!(table.get(&me.id), None);
        assert_eq!(got(&mut h, ad(&honest, 1_001, 40), Some(&honest)), None);
        assert_eq!(table.get(&honest.id).unwrap().free, 40);
        // Our own is recorded and spread.
        assert!(got(&mut h, ad(&me, 7, 3), None).is_some());
        assert_eq!(table.get(&me.id).unwrap().free, 3);
        assert!(BroadcastHandler::<MemberId>::receive_item(&mut h, b"\xff\xff", None).is_err());
        table.forget(&honest.id);
        assert_eq!(table.get(&honest.id), None);
    }

    #[test]
    fn figures_are_capped_at_plausible_values() {
        let t0 = Instant::now();
        let table = AdvertTable::default();
        let node = member(1);
        let greedy = Advert {
            id: node.id,
            seq: 2,
            quota: 1 << 20,
            free: u64::MAX,
            disk_free: u64::MAX,
        };
        table.offer(greedy, &node, t0);
        assert_eq!(table.get(&node.id).unwrap().free, 1 << 20);
        assert_eq!(table.get(&node.id).unwrap().disk_free, MAX_ADVERT_DISK);
        let huge = Advert {
            seq: 3,
            quota: u64::MAX,
            ..greedy
        };
        table.offer(huge, &node, t0);
        let got = table.get(&node.id).unwrap();
        assert_eq!((got.quota, got.free), (MAX_ADVERT_QUOTA, MAX_ADVERT_QUOTA));
    }

    #[test]
    fn seq_max_freezes_nothing() {
        let t0 = Instant::now();
        let table = AdvertTable::default();
        let node = member(1_000);
        assert_eq!(
            table.offer(ad(&node, 1_000, 10), &node, t0),
            Verdict::Accepted
        );
        // Far ahead of what the node could have sent since: refused.
        assert_eq!(
            table.offer(ad(&node, u64::MAX, 1), &node, t0),
            Verdict::Implausible
        );
        let t1 = t0 + Duration::from_secs(10);
        // 10 s at one advert per 200 ms, plus slack, is fine; one more is not.
        let reach = 1_000 + 50 + ADVERT_SEQ_SLACK;
        assert_eq!(
            table.offer(ad(&node, reach + 1, 1), &node, t1),
            Verdict::Implausible
        );
        assert_eq!(
            table.offer(ad(&node, reach, 20), &node, t1),
            Verdict::Accepted
        );
        assert_eq!(table.offer(ad(&node, reach, 21), &node, t1), Verdict::Stale);
        // A first advert far beyond the generation it is numbered from: refused.
        let other = member(5);
        assert_eq!(
            table.offer(ad(&other, u64::MAX, 1), &other, t0),
            Verdict::Implausible
        );
        // Even an entry frozen at seq MAX (a node with a huge generation) thaws: a new
        // generation starts afresh, and after ADVERT_STALE_AFTER anything from it goes.
        let odd = member(u64::MAX - 5);
        assert_eq!(
            table.offer(ad(&odd, u64::MAX, 1), &odd, t0),
            Verdict::Accepted
        );
        assert_eq!(table.offer(ad(&odd, 3, 2), &odd, t1), Verdict::Stale);
        let later = t0 + ADVERT_STALE_AFTER;
        assert_eq!(table.offer(ad(&odd, 3, 2), &odd, later), Verdict::Accepted);
        let renewed = MemberId {
            generation: u64::MAX - 4,
            ..odd.clone()
        };
        assert_eq!(
            table.offer(ad(&renewed, 4, 9), &renewed, later),
            Verdict::Accepted
        );
        assert_eq!(table.get(&odd.id).unwrap().free, 9);
        // An older incarnation is stale.
        assert_eq!(table.offer(ad(&odd, 99, 5), &odd, later), Verdict::Stale);
    }

    #[test]
    fn the_table_is_bounded_and_newer_keys_invalidate_older() {
        let t0 = Instant::now();
        let table = AdvertTable::default();
        for _ in 0..=MAX_MEMBERS {
            let n = member(1);
            assert_eq!(table.offer(ad(&n, 1, 1), &n, t0), Verdict::Accepted);
        }
        let n = member(1);
        assert_eq!(table.offer(ad(&n, 1, 1), &n, t0), Verdict::Full);
        assert_eq!(table.len(), MAX_MEMBERS + 1);
        let id = n.id;
        let k3 = AdvertKey { id, seq: 3 };
        let k2 = AdvertKey { id, seq: 2 };
        assert!(k3.invalidates(&k2));
        assert!(!k2.invalidates(&k3));
    }
}
