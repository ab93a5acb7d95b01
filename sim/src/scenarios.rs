//! The runs CI checks, each returning its figures (printed by the tests).
//!
//! - [`join_placement`]: N members, one joins: how many partitions change owners.
//! - [`failure_placement`]: N members, each of a set of single failures: does every
//!   partition keep `replicas` live owners, and how much moves.
//! - [`membership`]: nodes running SWIM on virtual time: they join, one crashes, one
//!   joins, then with message loss some crash, restart, leave and join while the network
//!   is split; after the split heals every live node's view and routing table must agree,
//!   and, once the loss stops, keep agreeing at every instant.

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use memmesh::cache::partition::PARTITIONS;
use memmesh::cache::routing::Table;
use memmesh::identity::NodeId;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use crate::placement::{
    join_bound, moved, not_kept, owned_by, partitions, scores_of, share_bound, Scores,
};
use crate::sim::{Sim, SimConfig, Stats};

fn random_ids(rng: &mut StdRng, n: usize) -> Vec<NodeId> {
    (0..n)
        .map(|_| {
            let mut b = [0u8; 32];
            rng.fill(&mut b[..]);
            NodeId::from_bytes(b)
        })
        .collect()
}

/// What joins into a table of `members` moved.
#[derive(Debug, Clone, PartialEq)]
pub struct JoinFigures {
    /// Members before the join.
    pub members: usize,
    /// Copies of each partition.
    pub replicas: u32,
    /// Joins tried (each into the same members).
    pub trials: usize,
    /// Most partitions one join moved.
    pub max_moved: usize,
    /// Partitions moved, summed over the joins.
    pub total_moved: usize,
    /// The most allowed: `(1/N + 5 %)` of the partitions, N the members after the join.
    pub bound: f64,
    /// Whether every moved partition went (in part) to the newcomer.
    pub only_newcomer: bool,
    /// Tables built with core's `Table::new` that placed exactly as the scores said
    /// (the member list itself and the first joins), out of those built.
    pub tables_checked: (usize, usize),
}

impl JoinFigures {
    /// Whether every join stayed within the bound, and the real tables agreed.
    pub fn ok(&self) -> bool {
        self.max_moved as f64 <= self.bound
            && self.only_newcomer
            && self.tables_checked.0 == self.tables_checked.1
    }
}

impl fmt::Display for JoinFigures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.members + 1;
        write!(
            f,
            "(a) {} joins, each into the same {} members, replicas {}: at most {} of \
             {PARTITIONS} partitions changed owners ({:.2} %; mean {:.2} %, expected {:.2} %), \
             bound 1/N + 5 % = {:.1} ({:.2} %); moved only to the newcomer: {}; core tables \
             agreeing: {}/{}",
            self.trials,
            self.members,
            self.replicas,
            self.max_moved,
            100.0 * self.max_moved as f64 / PARTITIONS as f64,
            100.0 * self.total_moved as f64 / (self.trials.max(1) * PARTITIONS) as f64,
            100.0 * f64::from(self.replicas) / n as f64,
            self.bound,
            100.0 * self.bound / PARTITIONS as f64,
            self.only_newcomer,
            self.tables_checked.0,
            self.tables_checked.1,
        )
    }
}

fn set(v: &[NodeId]) -> BTreeSet<NodeId> {
    v.iter().copied().collect()
}

/// `trials` different nodes each joining the same `members` random members, for each
/// number of `replicas`: partitions moved. The member list's table and those of the first
/// `checks` joins are also built with core's `Table::new` and compared.
pub fn join_placement(
    seed: u64,
    members: usize,
    trials: usize,
    replicas: &[u32],
    checks: usize,
) -> Vec<JoinFigures> {
    let mut rng = StdRng::seed_from_u64(seed);
    let ids = random_ids(&mut rng, members);
    let scores = Scores::new(ids.clone());
    let newcomers = random_ids(&mut rng, trials);
    let most = replicas.iter().copied().max().unwrap_or(1);
    // The real tables, built once for every number of replicas.
    let base_ok = scores.same_as(&Table::new(1, ids.clone()), most, None, None);
    let joined_ok: Vec<bool> = newcomers
        .iter()
        .take(checks)
        .map(|nc| {
            let mut with = ids.clone();
            with.push(*nc);
            scores.same_as(
                &Table::new(2, with),
                most,
                None,
                Some((nc, scores_of(nc).as_slice())),
            )
        })
        .collect();
    let built = 1 + joined_ok.len();
    let agreeing = usize::from(base_ok) + joined_ok.iter().filter(|ok| **ok).count();
    let newcomer_scores: Vec<Vec<u64>> = newcomers.iter().map(scores_of).collect();
    replicas
        .iter()
        .map(|&r| {
            let before: Vec<BTreeSet<NodeId>> = partitions()
                .map(|p| set(&scores.owners(p, r, None, None)))
                .collect();
            let mut out = JoinFigures {
                members,
                replicas: r,
                trials,
                max_moved: 0,
                total_moved: 0,
                bound: join_bound(members + 1),
                only_newcomer: true,
                tables_checked: (agreeing, built),
            };
            for (nc, nscores) in newcomers.iter().zip(&newcomer_scores) {
                let mut m = 0;
                for p in partitions() {
                    let after = set(&scores.owners(p, r, None, Some((nc, nscores))));
                    if after != before[usize::from(p)] {
                        m += 1;
                        out.only_newcomer &= after.contains(nc);
                    }
                }
                out.max_moved = out.max_moved.max(m);
                out.total_moved += m;
            }
            out
        })
        .collect()
}

/// What single failures among `members` did to placement.
#[derive(Debug, Clone, PartialEq)]
pub struct FailureFigures {
    /// Members before the failure.
    pub members: usize,
    /// Copies of each partition.
    pub replicas: u32,
    /// Failures tried (each alone).
    pub failures: usize,
    /// Partitions, summed over the failures, that did not keep their owners (must be 0).
    pub not_kept: usize,
    /// Most partitions one failure moved.
    pub max_moved: usize,
    /// Whether each failure moved exactly the partitions the failed node owned.
    pub moved_only_its_own: bool,
    /// Tables built with core's `Table::new` that placed exactly as the scores said, out
    /// of those built.
    pub tables_checked: (usize, usize),
}

impl FailureFigures {
    /// Whether every partition kept `replicas` live owners through every failure, only
    /// the failed node's partitions moved, and the real tables agreed.
    pub fn ok(&self) -> bool {
        self.not_kept == 0
            && self.moved_only_its_own
            && self.tables_checked.0 == self.tables_checked.1
    }
}

impl fmt::Display for FailureFigures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "(b) each of {} members failing alone ({} failures), replicas {}: partitions \
             without {} live owners, or that lost a surviving owner, once the table is \
             recomputed: {}; at most {} of {PARTITIONS} partitions moved ({:.2} %), each \
             failure exactly those the failed node owned: {}; core tables agreeing: {}/{}",
            self.members,
            self.failures,
            self.replicas,
            self.replicas,
            self.not_kept,
            self.max_moved,
            100.0 * self.max_moved as f64 / PARTITIONS as f64,
            self.moved_only_its_own,
            self.tables_checked.0,
            self.tables_checked.1,
        )
    }
}

/// Every one of `members` random members failing alone, for each number of `replicas`.
/// The tables of the first `checks` failures are also built with core's `Table::new`.
pub fn failure_placement(
    seed: u64,
    members: usize,
    replicas: &[u32],
    checks: usize,
) -> Vec<FailureFigures> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed_fa11);
    let scores = Scores::new(random_ids(&mut rng, members));
    let ids = scores.members().to_vec();
    let most = replicas.iter().copied().max().unwrap_or(1);
    let checked: Vec<bool> = (0..checks.min(members))
        .map(|f| {
            let without: Vec<NodeId> = ids.iter().copied().filter(|m| *m != ids[f]).collect();
            scores.same_as(&Table::new(2, without), most, Some(f), None)
        })
        .collect();
    let agreeing = checked.iter().filter(|ok| **ok).count();
    replicas
        .iter()
        .map(|&r| {
            let before: Vec<Vec<NodeId>> = partitions()
                .map(|p| scores.owners(p, r, None, None))
                .collect();
            let want = (r as usize).min(members.saturating_sub(1));
            let mut out = FailureFigures {
                members,
                replicas: r,
                failures: members,
                not_kept: 0,
                max_moved: 0,
                moved_only_its_own: true,
                tables_checked: (agreeing, checked.len()),
            };
            for (f, gone) in ids.iter().enumerate() {
                let mut m = 0;
                let mut owned = 0;
                for p in partitions() {
                    let old = &before[usize::from(p)];
                    let new = scores.owners(p, r, Some(f), None);
                    let survivors_kept = old.iter().filter(|o| *o != gone).all(|o| new.contains(o));
                    if new.len() != want || new.contains(gone) || !survivors_kept {
                        out.not_kept += 1;
                    }
                    if set(old) != set(&new) {
                        m += 1;
                    }
                    if old.contains(gone) {
                        owned += 1;
                    }
                }
                out.max_moved = out.max_moved.max(m);
                out.moved_only_its_own &= m == owned;
            }
            out
        })
        .collect()
}

/// The figures of a membership run.
#[derive(Debug, Clone, PartialEq)]
pub struct MembershipFigures {
    /// The seed.
    pub seed: u64,
    /// Nodes started at first.
    pub nodes: usize,
    /// Copies of each partition checked.
    pub replicas: u32,
    /// Virtual time for the first `nodes` to agree.
    pub formed: Option<Duration>,
    /// Virtual time for the views to agree after one crash.
    pub after_crash: Option<Duration>,
    /// Partitions whose owners were not kept through that crash (in the tables the nodes
    /// computed once they agreed).
    pub crash_not_kept: usize,
    /// Partitions that crash moved, and how many the crashed node owned.
    pub crash_moved: (usize, usize),
    /// Virtual time for the views to agree after one join.
    pub after_join: Option<Duration>,
    /// Partitions that join moved, and the bound (`replicas/N + 5 %`: see
    /// [`share_bound`]).
    pub join_moved: (usize, f64),
    /// Loss during the churn and the split.
    pub loss: f64,
    /// Virtual time for the views to agree after the split healed (with loss).
    pub after_heal: Option<Duration>,
    /// The share of the instants (every [`CHECK_EVERY`]) of the next 10 s, still with
    /// loss, at which the views agreed: below 1 when a member was declared down by
    /// mistake and rejoined (a figure, not checked).
    pub lossy_agreed: f64,
    /// Live nodes at the end.
    pub live_at_end: usize,
    /// Whether the views agreed again after those 10 s, and, the loss then removed,
    /// agreed at every instant of 10 s more with every routing table the same.
    pub settled: bool,
    /// Rejoins under a renewed identity, over all nodes.
    pub rejoins: u64,
    /// The run's counters.
    pub stats: Stats,
    /// The run's trace digest.
    pub trace: u64,
}

impl MembershipFigures {
    /// Whether the run met every expectation.
    pub fn ok(&self) -> bool {
        self.formed.is_some()
            && self.after_crash.is_some()
            && self.crash_not_kept == 0
            && self.crash_moved.0 == self.crash_moved.1
            && self.after_join.is_some()
            && self.join_moved.0 as f64 <= self.join_moved.1
            && self.after_heal.is_some()
            && self.settled
    }
}

fn secs(d: Option<Duration>) -> String {
    d.map_or("never".into(), |d| format!("{:.1} s", d.as_secs_f64()))
}

impl fmt::Display for MembershipFigures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "SWIM membership, {} nodes (seed {:#x}), virtual time to agree:",
            self.nodes, self.seed
        )?;
        writeln!(f, "  all started at once, formed in {}", secs(self.formed))?;
        writeln!(
            f,
            "  one crash: agreed in {}; partitions without {} live owners: {}; moved {} = \
             the {} the crashed node owned",
            secs(self.after_crash),
            self.replicas,
            self.crash_not_kept,
            self.crash_moved.0,
            self.crash_moved.1
        )?;
        writeln!(
            f,
            "  one join: agreed in {}; moved {} partitions (bound replicas/N + 5 % = {:.1})",
            secs(self.after_join),
            self.join_moved.0,
            self.join_moved.1
        )?;
        writeln!(
            f,
            "  {:.0} % loss, crashes, a restart, a leave and joins during a 10 s split: \
             agreed {} after the heal, then at {:.0} % of the instants of 10 s; {} live nodes, \
             without loss routing tables equal and stable: {}",
            self.loss * 100.0,
            secs(self.after_heal),
            self.lossy_agreed * 100.0,
            self.live_at_end,
            self.settled
        )?;
        write!(
            f,
            "  {} rejoins, {} events, {} messages ({} lost), {} connections, trace {:#018x}",
            self.rejoins,
            self.stats.events,
            self.stats.sent,
            self.stats.lost,
            self.stats.connections,
            self.trace
        )
    }
}

/// How long the views may take to agree after each step.
const AGREE_LIMIT: Duration = Duration::from_secs(120);
/// How often agreement is checked.
const CHECK_EVERY: Duration = Duration::from_millis(100);

fn agree(sim: &mut Sim) -> Option<Duration> {
    sim.run_until_true(AGREE_LIMIT, CHECK_EVERY, Sim::converged)
}

/// How long agreement is watched after the heal, with loss and then without.
const STABLE_FOR: Duration = Duration::from_secs(10);

/// Runs for `d`, checking every [`CHECK_EVERY`], and returns the share of the checks at
/// which the views agreed.
fn agreed_share(sim: &mut Sim, d: Duration) -> f64 {
    let checks = (d.as_millis() / CHECK_EVERY.as_millis()).max(1);
    let mut agreed = 0u32;
    for _ in 0..checks {
        sim.run_for(CHECK_EVERY);
        agreed += u32::from(sim.converged());
    }
    f64::from(agreed) / checks as f64
}

/// The table every node computes, if they all compute the same one.
fn common_table(sim: &Sim) -> Option<Table> {
    let mut tables = sim
        .live()
        .into_iter()
        .filter_map(|i| sim.node(i).map(|n| n.table()));
    let first = tables.next()?;
    tables
        .all(|t| t.members == first.members && t.digest == first.digest)
        .then_some(first)
}

/// The membership run: `nodes` nodes, message `loss` during the churn and split,
/// placement checked with `replicas` copies.
pub fn membership(seed: u64, nodes: usize, loss: f64, replicas: u32) -> MembershipFigures {
    let mut sim = Sim::new(SimConfig::new(seed));
    let mut rng = StdRng::seed_from_u64(seed ^ 0x00c0_ffee);
    // Everyone starts, each dialling one node started before it.
    let first = sim.join(None);
    for i in 1..nodes {
        let via = rng.random_range(0..i);
        let _ = first;
        sim.join(Some(via));
    }
    let formed = agree(&mut sim);
    let before = common_table(&sim);

    // One crash.
    let victim = rng.random_range(0..nodes);
    let victim_id = sim.id(victim);
    sim.crash(victim);
    let after_crash = agree(&mut sim);
    let after = common_table(&sim);
    let (crash_not_kept, crash_moved) = match (&before, &after) {
        (Some(b), Some(a)) => {
            let live: BTreeSet<NodeId> = sim.live_ids().into_iter().collect();
            (
                not_kept(b, a, &live, replicas),
                (moved(b, a, replicas), owned_by(b, &victim_id, replicas)),
            )
        }
        _ => (PARTITIONS, (PARTITIONS, 0)),
    };

    // One join.
    let via = *sim.live().first().unwrap_or(&0);
    sim.join(Some(via));
    let after_join = agree(&mut sim);
    let joined = common_table(&sim);
    let join_moved = match (&after, &joined) {
        (Some(b), Some(a)) => (
            moved(b, a, replicas),
            share_bound(a.members.len(), replicas),
        ),
        _ => (PARTITIONS, 0.0),
    };

    // Churn with loss while the network is split in two (a third on one side).
    sim.set_loss(loss);
    let n = sim.len();
    let sides: Vec<u32> = (0..n)
        .map(|_| u32::from(rng.random_range(0..3) == 0))
        .collect();
    sim.split(sides);
    let pick = |sim: &Sim, rng: &mut StdRng| {
        let live = sim.live();
        live[rng.random_range(0..live.len())]
    };
    for round in 0..5 {
        sim.run_for(Duration::from_secs(2));
        match round {
            0 => {
                let v = pick(&sim, &mut rng);
                sim.crash(v);
                let v = pick(&sim, &mut rng);
                sim.crash(v);
            }
            1 => {
                sim.start(victim, Some(pick(&sim, &mut rng)));
            }
            2 => {
                let v = pick(&sim, &mut rng);
                sim.leave(v);
            }
            3 => {
                for _ in 0..3 {
                    let via = pick(&sim, &mut rng);
                    sim.join(Some(via));
                }
            }
            _ => {}
        }
    }
    sim.heal();
    let after_heal = agree(&mut sim);
    // Still with loss: a member may be declared down by mistake (every lost SWIM call is a
    // failed probe here), then rejoin; count the instants the views disagreed, and check
    // they agree again at the end.
    let lossy_agreed = agreed_share(&mut sim, STABLE_FOR);
    let recovered = agree(&mut sim).is_some();
    // Without loss, nothing may disturb the agreement: checked at every instant.
    sim.set_loss(0.0);
    let settled = recovered
        && agree(&mut sim).is_some()
        && agreed_share(&mut sim, STABLE_FOR) >= 1.0
        && common_table(&sim).is_some();
    let rejoins = sim
        .live()
        .into_iter()
        .filter_map(|i| sim.node(i).map(|n| n.rejoins()))
        .sum();
    MembershipFigures {
        seed,
        nodes,
        replicas,
        formed,
        after_crash,
        crash_not_kept,
        crash_moved,
        after_join,
        join_moved,
        loss,
        after_heal,
        lossy_agreed,
        live_at_end: sim.live().len(),
        settled,
        rejoins,
        stats: sim.stats(),
        trace: sim.trace_digest(),
    }
}
