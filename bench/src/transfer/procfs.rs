//! CPU time and resident memory of this process around one measured transfer (Linux
//! `/proc/self`; elsewhere the memory figures are 0).
//!
//! The peak of a window is `VmHWM` after the high-water mark was reset at its start (by
//! writing `5` to `/proc/self/clear_refs`, Linux 4.0+), so a 1 GiB memory transfer early in
//! the run does not hide the peak of a file transfer later.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::transfer::Rss;
use crate::usage::Usage;

/// A field of `/proc/self/status` given in kB (`VmRSS`, `VmHWM`), in bytes.
pub fn status_bytes(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_status_bytes(&status, field)
}

fn parse_status_bytes(status: &str, field: &str) -> Option<u64> {
    let line = status
        .lines()
        .find(|l| l.split(':').next() == Some(field))?;
    let mut words = line.split_whitespace().skip(1);
    let value: u64 = words.next()?.parse().ok()?;
    match words.next() {
        Some("kB") => Some(value * 1024),
        _ => None,
    }
}

/// The resident set size now (bytes; 0 if unknown).
pub fn rss() -> u64 {
    status_bytes("VmRSS").unwrap_or(0)
}

/// The resident high-water mark (bytes; 0 if unknown).
pub fn hwm() -> u64 {
    status_bytes("VmHWM").unwrap_or(0)
}

/// The largest high-water mark seen before a [`reset_peak`] (which also resets the
/// kernel's `ru_maxrss`).
static PEAK_BEFORE_RESETS: AtomicU64 = AtomicU64::new(0);

/// Resets the resident high-water mark to the current resident size (remembering the old
/// one for [`max_rss`]). Returns whether the kernel accepted it.
pub fn reset_peak() -> bool {
    PEAK_BEFORE_RESETS.fetch_max(hwm().max(kernel_max_rss()), Ordering::Relaxed);
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// The largest resident size the process ever had (bytes), across [`reset_peak`] calls.
pub fn max_rss() -> u64 {
    PEAK_BEFORE_RESETS
        .load(Ordering::Relaxed)
        .max(hwm())
        .max(kernel_max_rss())
}

/// `getrusage` `ru_maxrss` in bytes: since the last reset of the high-water mark.
fn kernel_max_rss() -> u64 {
    let mut raw = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the rusage we point to.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, raw.as_mut_ptr()) };
    if rc != 0 {
        return 0;
    }
    // SAFETY: getrusage succeeded, so the struct is initialised (and was zeroed).
    let raw = unsafe { raw.assume_init() };
    // Linux reports kilobytes.
    (raw.ru_maxrss.max(0) as u64) * 1024
}

/// A measurement window of this process, opened by [`Window::begin`].
#[derive(Debug, Clone, Copy)]
pub struct Window {
    cpu: Option<Usage>,
    rss_before: u64,
    faults_sys: (u64, Duration),
}

/// What a window measured, in a form that crosses process boundaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Sample {
    /// CPU time (user + system, all threads) in nanoseconds.
    pub cpu_ns: u64,
    /// Resident memory around the window.
    pub rss: Rss,
    /// Page faults (minor + major, all threads) during the window.
    #[serde(default)]
    pub faults: u64,
    /// System (kernel) CPU time during the window, nanoseconds (included in `cpu_ns`).
    #[serde(default)]
    pub sys_ns: u64,
}

/// (page faults, system CPU time) of this process so far, from `getrusage`.
fn faults_and_sys() -> (u64, Duration) {
    let mut raw = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the rusage we point to; RUSAGE_SELF sums all threads.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, raw.as_mut_ptr()) };
    if rc != 0 {
        return (0, Duration::ZERO);
    }
    // SAFETY: getrusage succeeded, so the struct is initialised (and was zeroed).
    let raw = unsafe { raw.assume_init() };
    let faults = (raw.ru_minflt.max(0) as u64).saturating_add(raw.ru_majflt.max(0) as u64);
    let sys = Duration::from_secs(raw.ru_stime.tv_sec.max(0) as u64)
        + Duration::from_micros(raw.ru_stime.tv_usec.max(0) as u64);
    (faults, sys)
}

impl Sample {
    /// The CPU time as a duration.
    pub fn cpu(&self) -> Duration {
        Duration::from_nanos(self.cpu_ns)
    }
}

impl Window {
    /// Resets the peak and samples CPU time and resident size.
    pub fn begin() -> Window {
        reset_peak();
        Window {
            rss_before: rss(),
            cpu: Usage::now(),
            faults_sys: faults_and_sys(),
        }
    }

    /// What the process consumed since [`Window::begin`].
    pub fn end(self) -> Sample {
        let cpu = match (Usage::now(), self.cpu) {
            (Some(now), Some(then)) => now.since(then).cpu,
            _ => Duration::ZERO,
        };
        let rss_after = rss();
        let (faults, sys) = faults_and_sys();
        Sample {
            faults: faults.saturating_sub(self.faults_sys.0),
            sys_ns: u64::try_from(sys.saturating_sub(self.faults_sys.1).as_nanos())
                .unwrap_or(u64::MAX),
            cpu_ns: u64::try_from(cpu.as_nanos()).unwrap_or(u64::MAX),
            rss: Rss {
                before: self.rss_before,
                peak: hwm().max(rss_after),
                after: rss_after,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_fields_are_read_in_kilobytes() {
        let status = "Name:\tx\nVmHWM:\t  9 kB\nVmRSS:\t   1234 kB\n";
        assert_eq!(parse_status_bytes(status, "VmRSS"), Some(1234 * 1024));
        assert_eq!(parse_status_bytes(status, "VmHWM"), Some(9 * 1024));
        assert_eq!(parse_status_bytes(status, "VmPeak"), None);
        assert_eq!(parse_status_bytes("VmRSS:\t12 MB\n", "VmRSS"), None);
    }

    #[test]
    fn a_window_sees_an_allocation_in_its_peak() {
        let w = Window::begin();
        let block = vec![1u8; 64 << 20];
        std::hint::black_box(&block);
        drop(block);
        let s = w.end();
        if cfg!(target_os = "linux") {
            assert!(s.rss.before > 0 && s.rss.after > 0, "{s:?}");
            assert!(
                s.rss.peak_growth() >= 32 << 20,
                "a 64 MiB buffer was touched: {s:?}"
            );
            assert!(max_rss() >= s.rss.peak, "{s:?}");
            reset_peak();
            assert!(max_rss() >= s.rss.peak, "kept across a reset: {s:?}");
        }
    }
}
