//! This node's own health, as Lifeguard's "local health multiplier" (Dadgar et al., 2018)
//! uses it: a node that is itself slow stretches its SWIM probe and suspicion timers, so
//! that its own lateness is not taken for its peers' failures.
//!
//! Lifeguard scores a node by the probes it sees fail and the suspicions of itself it
//! has to refute. Here the score follows what starves a memmesh node in practice, a CPU
//! shared with a busy host process (or, on a test machine, with 63 other nodes): how late
//! the membership tick runs. A tick [`LATE`] or more after its time adds one to the score
//! (at most [`MAX_SCORE`]); [`RECOVER_AFTER`] ticks in a row on time take one off. The
//! multiplier is `score + 1`, so a healthy node keeps its configured timings exactly.
//! A pure state machine: the actor reports each tick's lateness.

use std::time::Duration;

/// A tick at least this late counts against this node's health.
pub const LATE: Duration = Duration::from_millis(50);

/// The highest score: timers are stretched at most `MAX_SCORE + 1` times.
pub const MAX_SCORE: u32 = 4;

/// Ticks in a row on time that take one off the score.
pub const RECOVER_AFTER: u32 = 5;

/// This node's health score.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Health {
    score: u32,
    on_time: u32,
}

impl Health {
    /// A tick ran `late` after its time.
    pub fn tick(&mut self, late: Duration) {
        if late >= LATE {
            self.score = (self.score + 1).min(MAX_SCORE);
            self.on_time = 0;
        } else if self.score > 0 {
            self.on_time += 1;
            if self.on_time >= RECOVER_AFTER {
                self.score -= 1;
                self.on_time = 0;
            }
        }
    }

    /// The score, 0 (healthy) to [`MAX_SCORE`].
    pub fn score(&self) -> u32 {
        self.score
    }

    /// How many times the probe and suspicion timers are stretched: `score + 1`.
    pub fn multiplier(&self) -> u32 {
        self.score + 1
    }

    /// `d` stretched by the multiplier.
    pub fn stretch(&self, d: Duration) -> Duration {
        d.saturating_mul(self.multiplier())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ON_TIME: Duration = Duration::from_millis(2);

    #[test]
    fn a_healthy_node_keeps_its_timings() {
        let mut h = Health::default();
        for _ in 0..100 {
            h.tick(ON_TIME);
            h.tick(LATE - Duration::from_millis(1));
        }
        assert_eq!(h.multiplier(), 1);
        assert_eq!(
            h.stretch(Duration::from_millis(500)),
            Duration::from_millis(500)
        );
    }

    #[test]
    fn late_ticks_raise_the_score_up_to_its_bound() {
        let mut h = Health::default();
        h.tick(LATE);
        assert_eq!(h.score(), 1);
        assert_eq!(
            h.stretch(Duration::from_millis(200)),
            Duration::from_millis(400)
        );
        for _ in 0..20 {
            h.tick(Duration::from_secs(3));
        }
        assert_eq!(h.score(), MAX_SCORE);
        assert_eq!(h.multiplier(), MAX_SCORE + 1);
    }

    #[test]
    fn ticks_on_time_in_a_row_bring_it_back_one_step_at_a_time() {
        let mut h = Health::default();
        for _ in 0..3 {
            h.tick(Duration::from_millis(80));
        }
        assert_eq!(h.score(), 3);
        for _ in 0..RECOVER_AFTER - 1 {
            h.tick(ON_TIME);
        }
        assert_eq!(h.score(), 3, "not yet");
        h.tick(ON_TIME);
        assert_eq!(h.score(), 2);
        // A late tick resets the run of ticks on time.
        for _ in 0..RECOVER_AFTER - 1 {
            h.tick(ON_TIME);
        }
        h.tick(LATE);
        assert_eq!(h.score(), 3);
        for _ in 0..3 * RECOVER_AFTER {
            h.tick(ON_TIME);
        }
        assert_eq!(h.score(), 0);
        for _ in 0..10 * RECOVER_AFTER {
            h.tick(ON_TIME);
        }
        assert_eq!(h.score(), 0, "never below zero");
    }

    #[test]
    fn stretching_saturates() {
        let mut h = Health::default();
        h.tick(LATE);
        assert_eq!(h.stretch(Duration::MAX), Duration::MAX);
    }
}
