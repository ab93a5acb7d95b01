//! CPU time and context switches of the whole process (every runtime of both sides of a
//! benchmark lives in it), sampled at the edges of the measurement window.

use std::time::Duration;

/// Resources the process consumed over a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    /// User plus system CPU time, summed over all threads.
    pub cpu: Duration,
    /// Voluntary plus involuntary context switches, summed over all threads.
    pub switches: u64,
}

impl Usage {
    /// What the process has consumed so far (`None` where `getrusage` is unavailable).
    pub fn now() -> Option<Usage> {
        imp::now()
    }

    /// The consumption between `earlier` and `self`.
    pub fn since(self, earlier: Usage) -> Usage {
        Usage {
            cpu: self.cpu.saturating_sub(earlier.cpu),
            switches: self.switches.saturating_sub(earlier.switches),
        }
    }
}

#[cfg(unix)]
mod imp {
    use super::Usage;
    use std::time::Duration;

    pub fn now() -> Option<Usage> {
        let mut raw = std::mem::MaybeUninit::<libc::rusage>::zeroed();
        // SAFETY: getrusage fills the rusage we point to; RUSAGE_SELF sums all threads.
        let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, raw.as_mut_ptr()) };
        if rc != 0 {
            return None;
        }
        // SAFETY: getrusage succeeded, so the struct is initialised (and was zeroed).
        let raw = unsafe { raw.assume_init() };
        let time = |t: libc::timeval| {
            Duration::from_secs(t.tv_sec.max(0) as u64)
                + Duration::from_micros(t.tv_usec.max(0) as u64)
        };
        Some(Usage {
            cpu: time(raw.ru_utime) + time(raw.ru_stime),
            switches: (raw.ru_nvcsw.max(0) + raw.ru_nivcsw.max(0)) as u64,
        })
    }
}

#[cfg(not(unix))]
mod imp {
    pub fn now() -> Option<super::Usage> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_grows_with_work() {
        let before = Usage::now().unwrap();
        let start = std::time::Instant::now();
        let mut x = 0u64;
        let mut spent = Usage::default();
        while spent.cpu < Duration::from_millis(5) && start.elapsed() < Duration::from_secs(10) {
            for _ in 0..100_000 {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
            }
            spent = Usage::now().unwrap().since(before);
        }
        assert!(
            spent.cpu >= Duration::from_millis(5),
            "busy for 10 s but {spent:?}"
        );
        assert_eq!(before.since(Usage::now().unwrap()).cpu, Duration::ZERO);
    }
}
