//! The simulator's CI scenarios (issue 13): each prints its figures (run with
//! `--nocapture` to see them, as `ci/test` does) and the seed; `MEMMESH_SIM_SEED=<seed>`
//! replays a run, `MEMMESH_SIM_NODES=<n>` changes the size of the membership run (50 by
//! default: its cost grows with the cube of the nodes in a debug build, where the `memmesh`
//! crate is not optimised; see the README for larger runs).

use std::sync::OnceLock;

use memmesh_sim::scenarios::{failure_placement, join_placement, membership};
use memmesh_sim::seed::{from_env, SEED_VAR};

/// One seed for every test of the run (printed by each, as their output interleaves).
fn seed() -> u64 {
    static SEED: OnceLock<u64> = OnceLock::new();
    let seed = *SEED.get_or_init(|| from_env().unwrap_or_else(|e| panic!("{e}")));
    println!("{SEED_VAR}={seed}");
    seed
}

fn membership_nodes() -> usize {
    std::env::var("MEMMESH_SIM_NODES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50)
}

/// (a) With 1,000 members a join moves at most 1/N + 5 % of the partitions.
#[test]
fn a_join_into_1000_members_moves_at_most_one_share_plus_5_percent() {
    let seed = seed();
    for f in join_placement(seed, 1000, 200, &[1, 2, 3], 2) {
        println!("{f}");
        assert!(f.ok(), "seed {seed}: {f}");
    }
}

/// (b) Every partition keeps `replicas` live owners through any single failure of 1,000.
#[test]
fn every_partition_keeps_its_owners_through_any_single_failure_of_1000() {
    let seed = seed();
    for f in failure_placement(seed, 1000, &[2, 3], 2) {
        println!("{f}");
        assert!(f.ok(), "seed {seed}: {f}");
    }
}

/// (c) Membership converges, and routing tables agree, after joins, crashes, a leave and
/// a split that heals, with message loss; (a) and (b) hold for the tables nodes compute.
#[test]
fn membership_converges_and_routing_tables_agree_after_churn_loss_and_a_split() {
    let seed = seed();
    let f = membership(seed, membership_nodes(), 0.05, 2);
    println!("{f}");
    assert!(f.ok(), "seed {seed}: {f}");
}

/// Same seed, same run.
#[test]
fn the_same_seed_replays_the_same_run() {
    let seed = seed();
    let a = membership(seed, 16, 0.1, 2);
    let b = membership(seed, 16, 0.1, 2);
    assert_eq!(a, b, "seed {seed}");
    let c = membership(seed.wrapping_add(1), 16, 0.1, 2);
    assert_ne!(a.trace, c.trace, "another seed, another run");
    println!("replayed seed {seed}: trace {:#018x} both times", a.trace);
}
