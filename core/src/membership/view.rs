//! The membership view the application sees, derived from SWIM's states. Pure logic.
//!
//! It turns SWIM's member states into events, holds a `PeerDown` back for a grace period
//! (a member that is down and back within it causes no `PeerDown` and so moves no data),
//! reports a graceful leave at once, forgets long-dead members, and elects the leader:
//! the lowest NodeId among live members, this node included.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::identity::NodeId;
use crate::membership::limits::MAX_EARLY_GOODBYES;
use crate::membership::member::MemberId;
use crate::peer::PeerState;

/// A change in the membership, as delivered by `Node::events`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A member joined, or came back.
    PeerUp {
        /// The member.
        id: NodeId,
        /// Its name.
        name: String,
        /// Its addresses.
        addrs: Vec<SocketAddr>,
    },
    /// A member is suspected of failure.
    PeerSuspect {
        /// The member.
        id: NodeId,
    },
    /// A member is down (failed and not back within the grace period, or left).
    PeerDown {
        /// The member.
        id: NodeId,
    },
    /// The leader of the current view changed.
    LeaderChanged {
        /// The new leader (this node's own id when it leads).
        leader: NodeId,
    },
    /// The receiver fell behind and `missed` events were dropped for it; read
    /// `Node::peers` to resynchronise.
    Lagged {
        /// How many events were missed.
        missed: u64,
    },
}

#[derive(Debug, Clone)]
struct Entry {
    member: MemberId,
    reported: Option<PeerState>,
    down_pending_since: Option<Instant>,
    down_since: Option<Instant>,
    left_generation: Option<u64>,
}

/// The view: members by id with their reported state, and the leader.
#[derive(Debug, Clone)]
pub struct View {
    me: NodeId,
    grace: Duration,
    members: BTreeMap<NodeId, Entry>,
    leader: NodeId,
    /// Whether this node may lead: a client never does (ADR 0024).
    me_leads: bool,
    /// Nodes that said goodbye before SWIM told us about them (their later appearance in
    /// SWIM's gossip is news about an incarnation that is gone).
    left_unknown: BTreeMap<NodeId, Instant>,
}

/// How long a goodbye from a node not yet in the view is remembered.
const LEFT_MEMORY: Duration = Duration::from_secs(10);

impl View {
    /// An empty view for node `me` with the given down grace period.
    pub fn new(me: NodeId, grace: Duration) -> Self {
        Self {
            me,
            grace,
            members: BTreeMap::new(),
            leader: me,
            me_leads: true,
            left_unknown: BTreeMap::new(),
        }
    }

    /// Sets this node's own role: a client is never the leader (nor is any client member),
    /// so the leader is the lowest live *member* id. With no live member, a client names
    /// itself.
    pub fn set_own_role(&mut self, role: crate::peer::Role) {
        self.me_leads = role.holds_data();
        self.elect();
    }

    /// This node's own role, as last set by [`View::set_own_role`].
    pub fn own_role(&self) -> crate::peer::Role {
        if self.me_leads {
            crate::peer::Role::Member
        } else {
            crate::peer::Role::Client
        }
    }

    /// The current leader.
    pub fn leader(&self) -> NodeId {
        self.leader
    }

    /// The reported state of `id`, if it is a member.
    pub fn state(&self, id: &NodeId) -> Option<PeerState> {
        self.members.get(id).and_then(|e| e.reported)
    }

    /// Every member with its reported state.
    pub fn members(&self) -> impl Iterator<Item = (&MemberId, PeerState)> {
        self.members
            .values()
            .filter_map(|e| e.reported.map(|s| (&e.member, s)))
    }

    /// Applies SWIM's current states and returns the resulting events.
    pub fn observe(
        &mut self,
        states: impl IntoIterator<Item = (MemberId, PeerState)>,
        now: Instant,
    ) -> Vec<Event> {
        let mut events = Vec::new();
        for (member, swim) in states {
            if member.id == self.me {
                continue;
            }
            let said_goodbye = self
                .left_unknown
                .get(&member.id)
                .is_some_and(|t| now.duration_since(*t) < LEFT_MEMORY);
            let entry = self.members.entry(member.id).or_insert_with(|| Entry {
                member: member.clone(),
                reported: None,
                down_pending_since: None,
                down_since: None,
                left_generation: said_goodbye.then_some(member.generation),
            });
            if member.generation < entry.member.generation {
                continue; // stale news about an older incarnation
            }
            if member.generation > entry.member.generation {
                entry.left_generation = None;
            }
            entry.member = member;
            let live = swim != PeerState::Down;
            if live && entry.left_generation == Some(entry.member.generation) {
                continue; // it told us it left; SWIM has not caught up yet
            }
            match (entry.reported, swim) {
                (None | Some(PeerState::Down), PeerState::Alive | PeerState::Suspect) => {
                    entry.reported = Some(PeerState::Alive);
                    entry.down_since = None;
                    events.push(up(&entry.member));
                    if swim == PeerState::Suspect {
                        entry.reported = Some(PeerState::Suspect);
                        events.push(Event::PeerSuspect {
                            id: entry.member.id,
                        });
                    }
                }
                (Some(PeerState::Alive), PeerState::Suspect) => {
                    entry.reported = Some(PeerState::Suspect);
                    events.push(Event::PeerSuspect {
                        id: entry.member.id,
                    });
                }
                (Some(PeerState::Suspect), PeerState::Alive) => {
                    entry.reported = Some(PeerState::Alive);
                    events.push(up(&entry.member));
                }
                (Some(PeerState::Alive | PeerState::Suspect), PeerState::Down)
                    if entry.down_pending_since.is_none() =>
                {
                    entry.down_pending_since = Some(now);
                    if entry.reported == Some(PeerState::Alive) {
                        entry.reported = Some(PeerState::Suspect);
                        events.push(Event::PeerSuspect {
                            id: entry.member.id,
                        });
                    }
                }
                _ => {}
            }
            if live {
                entry.down_pending_since = None;
            }
        }
        events.extend(self.tick(now));
        events
    }

    /// Reports `PeerDown` for members whose grace period has run out.
    pub fn tick(&mut self, now: Instant) -> Vec<Event> {
        let mut events = Vec::new();
        for entry in self.members.values_mut() {
            if let Some(since) = entry.down_pending_since {
                if now.saturating_duration_since(since) >= self.grace {
                    entry.down_pending_since = None;
                    entry.reported = Some(PeerState::Down);
                    entry.down_since = Some(now);
                    events.push(Event::PeerDown {
                        id: entry.member.id,
                    });
                }
            }
        }
        events.extend(self.elect());
        events
    }

    /// A member said goodbye: it is down at once, without a grace period.
    pub fn left(&mut self, id: &NodeId, now: Instant) -> Vec<Event> {
        let mut events = Vec::new();
        self.left_unknown
            .retain(|_, t| now.duration_since(*t) < LEFT_MEMORY);
        if !self.members.contains_key(id) && self.left_unknown.len() < MAX_EARLY_GOODBYES {
            self.left_unknown.insert(*id, now);
        }
        if let Some(entry) = self.members.get_mut(id) {
            entry.left_generation = Some(entry.member.generation);
            entry.down_pending_since = None;
            if matches!(entry.reported, Some(PeerState::Alive | PeerState::Suspect)) {
                entry.reported = Some(PeerState::Down);
                entry.down_since = Some(now);
                events.push(Event::PeerDown { id: *id });
            }
        }
        events.extend(self.elect());
        events
    }

    /// A new authenticated connection from `id`: whatever goodbye it said before no
    /// longer holds (it may be a restarted incarnation, or the goodbye was not one).
    pub fn connected(&mut self, id: &NodeId) {
        self.left_unknown.remove(id);
        if let Some(entry) = self.members.get_mut(id) {
            entry.left_generation = None;
        }
    }

    /// Removes `id` at once (membership made room for another member): a member
    /// reported live is reported down.
    pub fn remove(&mut self, id: &NodeId) -> Vec<Event> {
        let mut events = Vec::new();
        if let Some(entry) = self.members.remove(id) {
            if matches!(entry.reported, Some(PeerState::Alive | PeerState::Suspect)) {
                events.push(Event::PeerDown { id: *id });
            }
        }
        self.left_unknown.remove(id);
        events.extend(self.elect());
        events
    }

    /// The member itself says it runs `member.generation`: a higher generation held for
    /// it came from hearsay, and SWIM's news about `member` is no longer stale.
    pub fn recant(&mut self, member: &MemberId) {
        if let Some(entry) = self.members.get_mut(&member.id) {
            if entry.member.generation > member.generation {
                entry.member = member.clone();
                entry.left_generation = None;
            }
        }
    }

    /// How many members the view holds.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether the view holds no member.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// When the next grace period ends, if any member is in one.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.members
            .values()
            .filter_map(|e| e.down_pending_since)
            .min()
            .map(|since| since + self.grace)
    }

    /// Removes members that have been down for `after`; returns their ids.
    pub fn forget(&mut self, now: Instant, after: Duration) -> Vec<NodeId> {
        let gone: Vec<NodeId> = self
            .members
            .iter()
            .filter(|(_, e)| {
                e.down_since
                    .is_some_and(|t| now.saturating_duration_since(t) >= after)
            })
            .map(|(id, _)| *id)
            .collect();
        for id in &gone {
            self.members.remove(id);
        }
        gone
    }

    fn elect(&mut self) -> Option<Event> {
        let leader = self
            .members
            .values()
            .filter(|e| matches!(e.reported, Some(PeerState::Alive | PeerState::Suspect)))
            .filter(|e| e.member.role.holds_data())
            .map(|e| e.member.id)
            .chain(self.me_leads.then_some(self.me))
            .min()
            .unwrap_or(self.me);
        if leader != self.leader {
            self.leader = leader;
            Some(Event::LeaderChanged { leader })
        } else {
            None
        }
    }
}

fn up(m: &MemberId) -> Event {
    Event::PeerUp {
        id: m.id,
        name: m.name.clone(),
        addrs: m.dialable_addrs(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{ids, member as m};

    const GRACE: Duration = Duration::from_secs(2);

    #[test]
    fn a_goodbye_before_swim_knew_the_node_keeps_it_out_until_it_reconnects() {
        let ids = ids(2);
        let (other, me) = (ids[0], ids[1]);
        let mut v = View::new(me, GRACE);
        let t0 = Instant::now();
        // The peer says goodbye before SWIM has reported it (a short-lived connection).
        assert!(v.left(&other, t0).is_empty());
        // SWIM gossip about that incarnation arrives later: it is not reported alive.
        assert!(v.observe([(m(other, 1), PeerState::Alive)], t0).is_empty());
        assert_eq!(v.state(&other), None);
        // A new connection (a restart) makes it welcome again.
        v.connected(&other);
        let ev = v.observe([(m(other, 2), PeerState::Alive)], t0);
        assert!(
            matches!(ev[0], Event::PeerUp { id, .. } if id == other),
            "{ev:?}"
        );
    }

    #[test]
    fn a_new_connection_after_a_goodbye_lets_swim_report_the_member_again() {
        let ids = ids(2);
        let mut v = View::new(ids[1], GRACE);
        let t0 = Instant::now();
        v.observe([(m(ids[0], 1), PeerState::Alive)], t0);
        assert_eq!(v.left(&ids[0], t0)[0], Event::PeerDown { id: ids[0] });
        // Same incarnation, still alive for SWIM: ignored while the goodbye holds...
        assert!(v.observe([(m(ids[0], 1), PeerState::Alive)], t0).is_empty());
        // ...but the peer connects again: it did not leave after all.
        v.connected(&ids[0]);
        let ev = v.observe([(m(ids[0], 1), PeerState::Alive)], t0);
        assert!(matches!(ev[0], Event::PeerUp { .. }), "{ev:?}");
    }

    #[test]
    fn up_suspect_down_after_grace() {
        let ids = ids(2);
        let (low, me) = (ids[0], ids[1]);
        let mut v = View::new(me, GRACE);
        let t0 = Instant::now();
        let ev = v.observe([(m(low, 1), PeerState::Alive)], t0);
        assert!(matches!(ev[0], Event::PeerUp { id, .. } if id == low));
        assert_eq!(ev[1], Event::LeaderChanged { leader: low });
        assert_eq!(
            v.observe([(m(low, 1), PeerState::Suspect)], t0),
            vec![Event::PeerSuspect { id: low }]
        );
        // SWIM says down: nothing yet, the grace period runs.
        assert!(v.observe([(m(low, 1), PeerState::Down)], t0).is_empty());
        assert_eq!(v.state(&low), Some(PeerState::Suspect));
        assert_eq!(v.next_deadline(), Some(t0 + GRACE));
        assert!(v.tick(t0 + GRACE / 2).is_empty());
        let ev = v.tick(t0 + GRACE);
        assert_eq!(
            ev,
            vec![
                Event::PeerDown { id: low },
                Event::LeaderChanged { leader: me }
            ]
        );
        assert_eq!(v.leader(), me);
    }

    #[test]
    fn back_within_grace_moves_nothing() {
        let ids = ids(2);
        let mut v = View::new(ids[1], GRACE);
        let t0 = Instant::now();
        v.observe([(m(ids[0], 1), PeerState::Alive)], t0);
        let ev = v.observe([(m(ids[0], 1), PeerState::Down)], t0);
        assert_eq!(ev, vec![Event::PeerSuspect { id: ids[0] }]);
        let ev = v.observe([(m(ids[0], 1), PeerState::Alive)], t0 + GRACE / 2);
        assert!(matches!(ev[..], [Event::PeerUp { .. }]));
        assert!(
            v.tick(t0 + GRACE * 3).is_empty(),
            "no PeerDown after recovery"
        );
    }

    #[test]
    fn a_goodbye_is_down_at_once_and_a_restart_comes_back() {
        let ids = ids(2);
        let mut v = View::new(ids[1], GRACE);
        let t0 = Instant::now();
        v.observe([(m(ids[0], 1), PeerState::Alive)], t0);
        let ev = v.left(&ids[0], t0);
        assert_eq!(ev[0], Event::PeerDown { id: ids[0] });
        // SWIM still believes the old incarnation alive: ignored.
        assert!(v.observe([(m(ids[0], 1), PeerState::Alive)], t0).is_empty());
        // The node restarts with a new generation: it is up again.
        let ev = v.observe([(m(ids[0], 2), PeerState::Alive)], t0);
        assert!(matches!(ev[0], Event::PeerUp { .. }));
        // Stale news about the old generation changes nothing.
        assert!(v.observe([(m(ids[0], 1), PeerState::Down)], t0).is_empty());
        assert_eq!(v.state(&ids[0]), Some(PeerState::Alive));
    }

    #[test]
    fn a_removed_member_is_reported_down_and_a_recanted_generation_is_news_again() {
        let ids = ids(3);
        let (low, mid, me) = (ids[0], ids[1], ids[2]);
        let mut v = View::new(me, GRACE);
        let t0 = Instant::now();
        v.observe(
            [(m(low, 1), PeerState::Alive), (m(mid, 1), PeerState::Alive)],
            t0,
        );
        assert_eq!(
            v.remove(&low),
            vec![
                Event::PeerDown { id: low },
                Event::LeaderChanged { leader: mid }
            ]
        );
        assert_eq!(v.state(&low), None);
        assert_eq!(v.len(), 1);
        assert!(v.remove(&low).is_empty());
        // Hearsay claimed a huge generation for `mid`; its own word says 1.
        v.observe([(m(mid, u64::MAX), PeerState::Down)], t0);
        v.tick(t0 + GRACE);
        assert_eq!(v.state(&mid), Some(PeerState::Down));
        assert!(v.observe([(m(mid, 1), PeerState::Alive)], t0).is_empty());
        v.recant(&m(mid, 1));
        let ev = v.observe([(m(mid, 1), PeerState::Alive)], t0 + GRACE);
        assert!(
            matches!(ev[0], Event::PeerUp { id, .. } if id == mid),
            "{ev:?}"
        );
        // Recanting never raises a generation.
        v.recant(&m(mid, 5));
        assert!(v.observe([(m(mid, 0), PeerState::Down)], t0).is_empty());
    }

    #[test]
    fn goodbyes_from_unknown_nodes_are_remembered_within_a_bound() {
        let me = ids(1)[0];
        let mut v = View::new(me, GRACE);
        let t0 = Instant::now();
        for i in 0..MAX_EARLY_GOODBYES + 50 {
            let mut b = [0u8; 32];
            b[..8].copy_from_slice(&(i as u64).to_be_bytes());
            v.left(&NodeId::from_bytes(b), t0);
        }
        assert_eq!(v.left_unknown.len(), MAX_EARLY_GOODBYES);
        // They expire, which makes room again.
        v.left(&me, t0 + LEFT_MEMORY);
        assert!(v.left_unknown.len() <= 1);
    }

    #[test]
    fn leader_is_the_lowest_live_id_and_long_dead_members_are_forgotten() {
        let ids = ids(4);
        let mut v = View::new(ids[3], Duration::ZERO);
        let t0 = Instant::now();
        v.observe(ids[..3].iter().map(|&i| (m(i, 1), PeerState::Alive)), t0);
        assert_eq!(v.leader(), ids[0]);
        let ev = v.observe([(m(ids[0], 1), PeerState::Down)], t0);
        assert!(ev.contains(&Event::LeaderChanged { leader: ids[1] }));
        assert!(v.forget(t0, Duration::from_secs(60)).is_empty());
        assert_eq!(
            v.forget(t0 + Duration::from_secs(60), Duration::from_secs(60)),
            vec![ids[0]]
        );
        assert_eq!(v.state(&ids[0]), None);
        assert_eq!(v.members().count(), 2);
    }

    #[test]
    fn clients_never_lead() {
        let ids = ids(4);
        let t0 = Instant::now();
        let client = |id| MemberId {
            role: crate::peer::Role::Client,
            ..m(id, 1)
        };
        // A member's view: the lowest id is a client, so the next member leads.
        let mut v = View::new(ids[3], GRACE);
        v.observe(
            [
                (client(ids[0]), PeerState::Alive),
                (m(ids[1], 1), PeerState::Alive),
            ],
            t0,
        );
        assert_eq!(v.leader(), ids[1]);
        // A client's own view: it does not name itself while a member is live.
        let mut c = View::new(ids[0], GRACE);
        c.set_own_role(crate::peer::Role::Client);
        c.observe([(m(ids[2], 1), PeerState::Alive)], t0);
        assert_eq!(c.leader(), ids[2]);
    }
}
