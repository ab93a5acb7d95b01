//! Who gets into the membership, and whose word counts. Pure logic: the members held are
//! passed in as a [`Census`], time as `now`.
//!
//! - At most `cap` members ([`MAX_MEMBERS`](crate::membership::limits::MAX_MEMBERS)).
//!   Members only *heard of* (in another member's gossip or sync) are admitted while
//!   there is room, and dropped beyond it.
//! - A member that *speaks for itself* (the sender of a SWIM packet, authenticated by its
//!   connection) always gets a seat if one can be made: it takes the place of a down
//!   member, else of one only heard of (never of a live member that spoke for itself). A
//!   made-up member cannot speak for itself, so fakes can fill the table but never keep a
//!   real node out of it.
//! - Only members that proved who they are ([`Admission::proved`]: spoke for themselves,
//!   or were connected) are shown to the rest of the node (the membership view): a made-up member never reaches the application,
//!   the cache's routing or block placement.
//! - A member's own word about its generation outweighs hearsay: while it has spoken for
//!   itself recently ([`OWN_WORD_WINDOW`]), others' claims that it runs a higher
//!   generation are dropped; and when it speaks with a lower generation than the one
//!   held, the held one was hearsay and is replaced ([`Census::hearsay_above`]).

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use foca::{Member, State};

use crate::identity::NodeId;
use crate::membership::limits::OWN_WORD_WINDOW;
use crate::membership::member::MemberId;

/// The members held now (foca's full state), by NodeId.
#[derive(Debug, Clone, Default)]
pub struct Census {
    held: HashMap<NodeId, (MemberId, State)>,
}

impl Census {
    /// A census of `members` (one identity per NodeId, as foca holds them).
    pub fn new<'a>(members: impl IntoIterator<Item = &'a Member<MemberId>>) -> Self {
        Self {
            held: members
                .into_iter()
                .map(|m| (m.id().id, (m.id().clone(), m.state())))
                .collect(),
        }
    }

    /// How many members are held.
    pub fn len(&self) -> usize {
        self.held.len()
    }

    /// Whether no member is held.
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// The identity held for `id`.
    pub fn identity(&self, id: &NodeId) -> Option<&MemberId> {
        self.held.get(id).map(|(m, _)| m)
    }

    /// Records `member` as held (alive), e.g. a sender about to be applied.
    pub fn insert(&mut self, member: MemberId) {
        self.held.insert(member.id, (member, State::Alive));
    }

    /// Forgets `id`.
    pub fn remove(&mut self, id: &NodeId) {
        self.held.remove(id);
    }

    /// When `speaker` (speaking for itself) runs a lower generation than the identity
    /// held for it, that held identity: it can only have come from hearsay.
    pub fn hearsay_above(&self, speaker: &MemberId) -> Option<MemberId> {
        self.identity(&speaker.id)
            .filter(|held| held.generation > speaker.generation)
            .cloned()
    }
}

/// Where a member speaking for itself goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seat {
    /// It is held already (or it is this node).
    Held,
    /// There is room.
    Free,
    /// It takes the place of this member, which must be removed first.
    Evict(MemberId),
    /// Every place is taken by a live member that spoke for itself.
    Full,
}

/// Which of a list of updates to apply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sifted {
    /// One flag per update, in order: apply it or not.
    pub keep: Vec<bool>,
    /// Updates about members not held, dropped because the membership is full.
    pub over_cap: usize,
    /// Members for whom an update claimed a higher generation than their own recent
    /// word (ignored: the member is asked itself, see `Engine`), each once.
    pub contradicted: Vec<NodeId>,
}

/// Admission control (see the module documentation).
#[derive(Debug)]
pub struct Admission {
    me: NodeId,
    cap: usize,
    /// Members that spoke for themselves: the generation they spoke with, and when.
    own_word: HashMap<NodeId, (u64, Instant)>,
    /// Members that proved their key by an authenticated connection.
    connected: HashSet<NodeId>,
}

impl Admission {
    /// Admission for node `me`, holding at most `cap` members.
    pub fn new(me: NodeId, cap: usize) -> Self {
        Self {
            me,
            cap,
            own_word: HashMap::new(),
            connected: HashSet::new(),
        }
    }

    /// The most members held.
    pub fn cap(&self) -> usize {
        self.cap
    }

    /// A place for `speaker`, a member speaking for itself, given what is held.
    pub fn seat(&self, census: &Census, speaker: &MemberId) -> Seat {
        if speaker.id == self.me || census.identity(&speaker.id).is_some() {
            return Seat::Held;
        }
        if census.len() < self.cap {
            return Seat::Free;
        }
        let rank = |state: State| match state {
            State::Down => 0,
            State::Suspect => 1,
            State::Alive => 2,
        };
        census
            .held
            .values()
            .filter(|(m, s)| *s == State::Down || !self.own_word.contains_key(&m.id))
            .min_by_key(|(m, s)| (rank(*s), m.id))
            .map_or(Seat::Full, |(m, _)| Seat::Evict(m.clone()))
    }

    /// `speaker` spoke for itself at `now` (call once it is seated).
    pub fn heard_from(&mut self, speaker: &MemberId, now: Instant) {
        self.own_word.insert(speaker.id, (speaker.generation, now));
    }

    /// `id`, a member held, has an authenticated connection to this node.
    pub fn connected(&mut self, id: NodeId) {
        self.connected.insert(id);
    }

    /// Whether `id` has proved who it is (spoken for itself, or been connected) since it
    /// was last removed.
    pub fn proved(&self, id: &NodeId) -> bool {
        self.own_word.contains_key(id) || self.connected.contains(id)
    }

    /// Forgets what `id` said (it was removed).
    pub fn forget(&mut self, id: &NodeId) {
        self.own_word.remove(id);
        self.connected.remove(id);
    }

    /// Forgets whoever is no longer held.
    pub fn retain(&mut self, census: &Census) {
        self.own_word.retain(|id, _| census.identity(id).is_some());
        self.connected.retain(|id| census.identity(id).is_some());
    }

    /// Of `updates` heard from `from`, which to apply: updates about members held (or
    /// about this node) always, except claims by others of a higher generation against
    /// a member's recent own word; updates about members not held (`from` itself
    /// included) only while there is room.
    pub fn sift(
        &self,
        census: &Census,
        updates: &[&Member<MemberId>],
        from: Option<NodeId>,
        now: Instant,
    ) -> Sifted {
        let mut room = self.cap.saturating_sub(census.len());
        let mut admitted: HashSet<NodeId> = HashSet::new();
        let mut out = Sifted::default();
        for u in updates {
            let m = u.id();
            let keep = if m.id == self.me {
                true
            } else if census.identity(&m.id).is_some() {
                let own = Some(m.id) == from;
                let contradicted = !own
                    && self.own_word.get(&m.id).is_some_and(|(g, at)| {
                        m.generation > *g && now.saturating_duration_since(*at) < OWN_WORD_WINDOW
                    });
                if contradicted && !out.contradicted.contains(&m.id) {
                    out.contradicted.push(m.id);
                }
                !contradicted
            } else if admitted.contains(&m.id) {
                true
            } else if room > 0 {
                room -= 1;
                admitted.insert(m.id);
                true
            } else {
                out.over_cap += 1;
                false
            };
            out.keep.push(keep);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Keypair;
    use std::time::Duration;

    fn id() -> NodeId {
        Keypair::generate().unwrap().node_id()
    }

    fn member(id: NodeId, generation: u64, state: State) -> Member<MemberId> {
        Member::new(
            MemberId {
                id,
                generation,
                name: "m".into(),
                addrs: vec![],
                role: crate::peer::Role::Member,
            },
            0,
            state,
        )
    }

    #[test]
    fn members_heard_of_are_admitted_up_to_the_cap_and_known_ones_always() {
        let me = id();
        let a = Admission::new(me, 3);
        let held = [member(id(), 1, State::Alive), member(id(), 1, State::Down)];
        let census = Census::new(&held);
        let fresh: Vec<Member<MemberId>> = (0..5).map(|_| member(id(), 1, State::Alive)).collect();
        let mut updates: Vec<&Member<MemberId>> = fresh.iter().collect();
        // A repeat of an admitted newcomer, news about a held member and about this node.
        updates.push(&fresh[0]);
        let news = member(held[1].id().id, 2, State::Alive);
        updates.push(&news);
        let about_me = member(me, 9, State::Suspect);
        updates.push(&about_me);
        let s = a.sift(&census, &updates, None, Instant::now());
        assert_eq!(
            s.keep,
            vec![true, false, false, false, false, true, true, true]
        );
        assert_eq!(s.over_cap, 4);
        assert!(s.contradicted.is_empty());
        // A full membership admits no one heard of.
        let full = Census::new(&[
            member(id(), 1, State::Alive),
            member(id(), 1, State::Alive),
            member(id(), 1, State::Alive),
        ]);
        let s = a.sift(&full, &[&fresh[1]], None, Instant::now());
        assert_eq!((s.keep, s.over_cap), (vec![false], 1));
    }

    #[test]
    fn a_member_speaking_for_itself_takes_the_place_of_a_down_one_then_of_one_heard_of() {
        let me = id();
        let t0 = Instant::now();
        let mut a = Admission::new(me, 3);
        let (real1, real2) = (id(), id());
        let heard = member(id(), 1, State::Alive);
        let down = member(id(), 1, State::Down);
        let mut census =
            Census::new(&[member(real1, 1, State::Alive), heard.clone(), down.clone()]);
        a.heard_from(census.identity(&real1).unwrap(), t0);
        assert!(a.proved(&real1) && !a.proved(&heard.id().id));
        let newcomer = member(real2, 5, State::Alive).id().clone();
        assert_eq!(a.seat(&census, &newcomer), Seat::Evict(down.id().clone()));
        census.remove(&down.id().id);
        assert_eq!(a.seat(&census, &newcomer), Seat::Free);
        census.insert(newcomer.clone());
        a.heard_from(&newcomer, t0);
        assert_eq!(a.seat(&census, &newcomer), Seat::Held);
        // Full again: the one only heard of gives way, live speakers never do.
        let third = member(id(), 1, State::Alive).id().clone();
        assert_eq!(a.seat(&census, &third), Seat::Evict(heard.id().clone()));
        census.remove(&heard.id().id);
        census.insert(third.clone());
        a.heard_from(&third, t0);
        let fourth = member(id(), 1, State::Alive).id().clone();
        assert_eq!(a.seat(&census, &fourth), Seat::Full);
        // This node itself never needs a seat.
        let myself = member(me, 1, State::Alive).id().clone();
        assert_eq!(a.seat(&census, &myself), Seat::Held);
        // Forgetting the removed keeps the record bounded.
        a.connected(fourth.id);
        assert!(a.proved(&fourth.id));
        a.retain(&census);
        assert_eq!(a.own_word.len(), 3);
        assert!(!a.proved(&fourth.id), "not held");
        a.forget(&third.id);
        assert_eq!(a.own_word.len(), 2);
        assert!(!a.proved(&third.id));
    }

    #[test]
    fn a_members_own_word_about_its_generation_outweighs_hearsay() {
        let me = id();
        let t0 = Instant::now();
        let mut a = Admission::new(me, 10);
        let real = id();
        let census = Census::new(&[member(real, 100, State::Alive)]);
        a.heard_from(census.identity(&real).unwrap(), t0);
        let impostor = member(real, u64::MAX - 1, State::Alive);
        let accusation = member(real, 100, State::Down);
        let s = a.sift(
            &census,
            &[&impostor, &accusation],
            None,
            t0 + Duration::from_secs(1),
        );
        assert_eq!((s.keep, s.contradicted), (vec![false, true], vec![real]));
        // From the member itself, a new generation is its own word.
        let s = a.sift(&census, &[&impostor], Some(real), t0);
        assert_eq!(s.keep, vec![true]);
        // Long after it last spoke, hearsay is how a restart is learned.
        let later = t0 + OWN_WORD_WINDOW + Duration::from_secs(1);
        assert_eq!(a.sift(&census, &[&impostor], None, later).keep, vec![true]);
        // And once it speaks again with its real generation, the impostor is recanted.
        let held = Census::new(std::slice::from_ref(&impostor));
        let speaking = member(real, 100, State::Alive).id().clone();
        assert_eq!(held.hearsay_above(&speaking), Some(impostor.id().clone()));
        assert_eq!(census.hearsay_above(&speaking), None);
    }
}
