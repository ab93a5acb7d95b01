//! Closed-loop load: `concurrency` workers, each issuing one request at a time and
//! issuing the next as soon as the reply arrives.
//!
//! Every reply is compared with the payload that was sent, so a bench run also proves
//! that the echo works. A request counts if it *completes* inside the measurement window
//! (after the warmup): throughput is that count divided by the window, and the latency
//! percentiles are over exactly those requests.

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context, Result};
use bytes::Bytes;
use tokio::runtime::Handle;

use crate::stats::Summary;
use crate::usage::Usage;

/// How long requests still in flight at the end of the window may take before the run
/// is declared hung.
const STRAGGLER_GRACE: Duration = Duration::from_secs(30);

/// The future of one call under test. Both systems box it the same way, so the
/// allocation is part of both measurements.
pub type CallFuture = std::pin::Pin<Box<dyn Future<Output = Result<Bytes>> + Send + 'static>>;

/// The shape of one measured run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spec {
    /// Workers issuing requests in parallel.
    pub concurrency: usize,
    /// Time spent before measuring (connections warm, allocators and caches settled).
    pub warmup: Duration,
    /// The measurement window.
    pub measure: Duration,
}

impl Spec {
    fn check(&self) -> Result<()> {
        ensure!(self.concurrency >= 1, "concurrency must be at least 1");
        ensure!(
            !self.measure.is_zero(),
            "the measurement window must be longer than zero"
        );
        Ok(())
    }
}

/// Fails unless `reply` is exactly `sent`.
pub fn check_echo(sent: &[u8], reply: &[u8]) -> Result<()> {
    if sent == reply {
        return Ok(());
    }
    let first_diff = sent.iter().zip(reply).position(|(a, b)| a != b);
    bail!(
        "wrong echo: sent {} bytes, got {} bytes back (first differing byte: {:?})",
        sent.len(),
        reply.len(),
        first_diff
    )
}

/// Runs `call` in `spec.concurrency` tasks spawned on `handle` and summarises the
/// requests that completed in the window. Call from a thread that is not running an
/// async runtime. Fails on the first failed request or wrong echo.
pub fn run_on<F, Fut>(handle: &Handle, spec: Spec, payload: Bytes, call: F) -> Result<Summary>
where
    F: Fn(Bytes) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Bytes>> + Send + 'static,
{
    spec.check()?;
    let from = Instant::now() + spec.warmup;
    let until = from + spec.measure;
    let workers: Vec<_> = (0..spec.concurrency)
        .map(|_| handle.spawn(worker(call.clone(), payload.clone(), from, until)))
        .collect();
    let aborts: Vec<_> = workers.iter().map(|w| w.abort_handle()).collect();
    let usage = sample_window(from, until);
    let deadline = spec.warmup + spec.measure + STRAGGLER_GRACE;
    let joined = futures::executor::block_on(handle.spawn(async move {
        tokio::time::timeout(deadline, futures::future::join_all(workers)).await
    }))
    .context("the load collector task failed")?;
    let Ok(results) = joined else {
        aborts.iter().for_each(|a| a.abort());
        bail!("requests were still unanswered {STRAGGLER_GRACE:?} after the end of the window");
    };
    let mut latencies = Vec::new();
    for r in results {
        latencies.extend(r.context("a load worker panicked")??);
    }
    summarize(latencies, spec, usage)
}

/// Sleeps until `from`, then until `until`, and returns what the process consumed in
/// between (the calling thread is idle meanwhile, so it adds nothing).
fn sample_window(from: Instant, until: Instant) -> Option<Usage> {
    std::thread::sleep(from.saturating_duration_since(Instant::now()));
    let start = Usage::now();
    std::thread::sleep(until.saturating_duration_since(Instant::now()));
    Some(Usage::now()?.since(start?))
}

fn summarize(latencies: Vec<Duration>, spec: Spec, usage: Option<Usage>) -> Result<Summary> {
    let mut summary = Summary::from_latencies(latencies, spec.measure)
        .ok_or_else(|| anyhow!("no request completed in the window"))?;
    summary.usage = usage;
    Ok(summary)
}

/// Runs `call` on `spec.concurrency` plain OS threads (blocking callers, as a binding's
/// synchronous API is used) and summarises the requests that completed in the window.
pub fn run_blocking<F>(spec: Spec, payload: Bytes, call: F) -> Result<Summary>
where
    F: Fn(Bytes) -> Result<Bytes> + Clone + Send + 'static,
{
    spec.check()?;
    let from = Instant::now() + spec.warmup;
    let until = from + spec.measure;
    let threads: Vec<_> = (0..spec.concurrency)
        .map(|i| {
            let call = call.clone();
            let payload = payload.clone();
            std::thread::Builder::new()
                .name(format!("bench-caller-{i}"))
                .spawn(move || {
                    let mut latencies = Vec::new();
                    loop {
                        let t0 = Instant::now();
                        if t0 >= until {
                            return Ok(latencies);
                        }
                        let reply = call(payload.clone())?;
                        let t1 = Instant::now();
                        check_echo(&payload, &reply)?;
                        if t1 >= from && t1 <= until {
                            latencies.push(t1 - t0);
                        }
                    }
                })
                .context("spawning a caller thread")
        })
        .collect::<Result<_>>()?;
    let usage = sample_window(from, until);
    let mut latencies = Vec::new();
    for t in threads {
        let r: Result<Vec<Duration>> = t.join().map_err(|_| anyhow!("a caller thread panicked"))?;
        latencies.extend(r?);
    }
    summarize(latencies, spec, usage)
}

async fn worker<F, Fut>(
    call: F,
    payload: Bytes,
    from: Instant,
    until: Instant,
) -> Result<Vec<Duration>>
where
    F: Fn(Bytes) -> Fut,
    Fut: Future<Output = Result<Bytes>>,
{
    let mut latencies = Vec::new();
    loop {
        let t0 = Instant::now();
        if t0 >= until {
            return Ok(latencies);
        }
        let reply = call(payload.clone()).await?;
        let t1 = Instant::now();
        check_echo(&payload, &reply)?;
        if t1 >= from && t1 <= until {
            latencies.push(t1 - t0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_check_names_the_difference() {
        assert!(check_echo(b"abc", b"abc").is_ok());
        let err = check_echo(b"abc", b"abd").unwrap_err().to_string();
        assert!(err.contains("first differing byte: Some(2)"), "{err}");
        let err = check_echo(b"abc", b"ab").unwrap_err().to_string();
        assert!(err.contains("sent 3 bytes, got 2 bytes"), "{err}");
    }

    #[test]
    fn bad_specs_are_refused() {
        let zero = Spec {
            concurrency: 0,
            warmup: Duration::ZERO,
            measure: Duration::from_millis(1),
        };
        let err = run_blocking(zero, Bytes::new(), Ok).unwrap_err();
        assert!(err.to_string().contains("concurrency"), "{err}");
        let empty = Spec {
            concurrency: 1,
            warmup: Duration::ZERO,
            measure: Duration::ZERO,
        };
        assert!(run_blocking(empty, Bytes::new(), Ok).is_err());
    }
}
