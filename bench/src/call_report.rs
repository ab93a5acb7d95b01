//! The cost of a call from each language (issue 19 item 4), side by side: the records
//! that `call-bench` (Rust) and the language scripts (`bench/python/call_bench.py`,
//! `bench/python/cache_local_get.py`, `bench/node/call_bench.js`,
//! `bench/node/cache_local_get.js`, `bench/uniffi/call_bench.py`) print as JSON lines, and
//! the table `bench/run-bindings.sh` prints from them: each language's rate beside Rust's
//! for the same call in the same run, with CPU time and context switches per call.
//!
//! Pure: parsing and formatting only, unit-tested without nodes.

use serde::{Deserialize, Serialize};

/// A request to a channel on the same node, one caller waiting for each reply.
pub const REQUEST_SEQ: &str = "request-seq";
/// A request to a channel on the same node, 64 requests in flight.
pub const REQUEST_64: &str = "request-64";
/// A local-hit cache `get` (a key this node holds), one caller.
pub const GET_LOCAL: &str = "get-local";

/// One measured case from one language.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// `rust`, `python`, `node`, `uniffi-python`, ...
    pub lang: String,
    /// [`REQUEST_SEQ`], [`REQUEST_64`] or [`GET_LOCAL`] (the cache scripts' lines without
    /// a case are local-hit gets).
    #[serde(default = "get_local")]
    pub case: String,
    /// How the call was made (`blocking API`, `asyncio`, `block_on, plain thread`, ...).
    #[serde(default)]
    pub api: Option<String>,
    /// Calls per second (the cache scripts name it `ops_per_s`).
    #[serde(alias = "ops_per_s")]
    pub calls_per_s: f64,
    /// Process CPU time (all threads) per call, in microseconds, if measured.
    #[serde(default)]
    pub cpu_us: Option<f64>,
    /// Context switches of the process per call, if measured.
    #[serde(default)]
    pub cs: Option<f64>,
}

fn get_local() -> String {
    GET_LOCAL.to_string()
}

/// The API of the Rust record every other language's record of a case is compared with:
/// a caller outside the node runtime waiting for each reply (as every binding's caller
/// is), the runtime's own tasks at 64 in flight, `Cache::get` through `block_on`.
pub fn anchor_api(case: &str) -> Option<&'static str> {
    match case {
        REQUEST_SEQ => Some(RUST_BLOCKING),
        REQUEST_64 => Some(RUST_AWAITED),
        GET_LOCAL => Some(RUST_GET),
        _ => None,
    }
}

/// Rust's request from a plain thread through `futures::executor::block_on`.
pub const RUST_BLOCKING: &str = "block_on, plain thread";
/// Rust's request from a plain thread through `block_on`, its handler on the blocking
/// pool (the thread hops a Python plain handler needs, without Python).
pub const RUST_BLOCKING_POOL: &str = "block_on, plain thread, handler on the blocking pool";
/// Rust's request awaited by tasks on the node runtime.
pub const RUST_AWAITED: &str = "awaited on the node runtime";
/// Rust's `Cache::get` through `futures::executor::block_on`.
pub const RUST_GET: &str = "get, block_on";

/// What issue 19 asks of a language's case.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    /// At least this fraction of Rust's rate for the same case.
    Ratio(f64),
    /// At least this many calls per second.
    Rate(f64),
}

/// The target of `lang`'s `case`, if issue 19 sets one.
pub fn target(lang: &str, case: &str) -> Option<Target> {
    match (lang, case) {
        ("python" | "node", REQUEST_SEQ | REQUEST_64) => Some(Target::Ratio(0.5)),
        ("node", GET_LOCAL) => Some(Target::Rate(1e6)),
        _ => None,
    }
}

/// Parses the JSON lines of `text`, skipping lines that are not JSON objects (the
/// scripts' other output). Fails on a JSON object that is not a record.
pub fn parse(text: &str) -> Result<Vec<Record>, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).map_err(|e| format!("bad record {l:?}: {e}")))
        .collect()
}

fn rust_anchor<'a>(records: &'a [Record], case: &str) -> Option<&'a Record> {
    let api = anchor_api(case)?;
    records
        .iter()
        .find(|r| r.lang == "rust" && r.case == case && r.api.as_deref() == Some(api))
}

fn per_call(v: Option<f64>, unit: &str) -> String {
    match v {
        Some(v) if unit == "us" => format!("{v:.1} us"),
        Some(v) => format!("{v:.2}"),
        None => "-".into(),
    }
}

/// The table: one block per case, every record of that case with its rate, CPU and
/// context switches per call, its ratio to the Rust anchor and its target.
pub fn table(records: &[Record]) -> String {
    let mut out = String::new();
    let width = 58;
    for (case, title) in [
        (REQUEST_SEQ, "request to self, 64 B, one caller"),
        (REQUEST_64, "request to self, 64 B, 64 in flight"),
        (GET_LOCAL, "local-hit cache get, 100 B values"),
    ] {
        let rows: Vec<&Record> = records.iter().filter(|r| r.case == case).collect();
        if rows.is_empty() {
            continue;
        }
        let anchor = rust_anchor(records, case);
        out.push_str(&format!(
            "{:<width$} | {:>10} {:>9} {:>7} | {:>8} | target\n",
            title, "calls/s", "cpu/call", "cs/call", "vs rust"
        ));
        out.push_str(&"-".repeat(width + 52));
        out.push('\n');
        for r in rows {
            let label = match &r.api {
                Some(api) => format!("{}: {api}", r.lang),
                None => r.lang.clone(),
            };
            let ratio = anchor.map(|a| r.calls_per_s / a.calls_per_s);
            let ratio_text = ratio.map_or_else(|| "-".into(), |x| format!("{x:.2}x"));
            // An anchor measured from a language (no memmesh in it) has no target.
            let is_anchor = r.api.as_deref().is_some_and(|a| a.starts_with("anchor"));
            let target_text = match target(&r.lang, case).filter(|_| !is_anchor) {
                Some(Target::Ratio(t)) => match ratio {
                    Some(x) => format!(">= {t}x: {}", if x >= t { "met" } else { "not met" }),
                    None => format!(">= {t}x"),
                },
                Some(Target::Rate(t)) => format!(
                    ">= {:.1} M/s: {}",
                    t / 1e6,
                    if r.calls_per_s >= t { "met" } else { "not met" }
                ),
                None => String::new(),
            };
            out.push_str(&format!(
                "{:<width$} | {:>10.0} {:>9} {:>7} | {:>8} | {}\n",
                truncate(&label, width),
                r.calls_per_s,
                per_call(r.cpu_us, "us"),
                per_call(r.cs, ""),
                ratio_text,
                target_text
            ));
        }
        out.push('\n');
    }
    out.push_str(
        "(vs rust: the rate over Rust's in the same run: one caller from a plain thread \
         through block_on; 64 in flight as tasks on the node runtime; Cache::get through \
         block_on. cpu/call: process CPU time of all threads per call; cs/call: context \
         switches per call.)\n",
    );
    out
}

fn truncate(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        s.to_string()
    } else {
        s.chars().take(width).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(lang: &str, case: &str, api: Option<&str>, rate: f64) -> Record {
        Record {
            lang: lang.into(),
            case: case.into(),
            api: api.map(Into::into),
            calls_per_s: rate,
            cpu_us: Some(10.0),
            cs: Some(2.0),
        }
    }

    #[test]
    fn parses_records_and_the_cache_scripts_lines() {
        let text = "memmesh call_bench\n\
            {\"lang\":\"rust\",\"case\":\"request-seq\",\"api\":\"block_on, plain thread\",\"calls_per_s\":40000,\"cpu_us\":16.0,\"cs\":3.4}\n\
            {\"lang\": \"python\", \"ops_per_s\": 2000000}\n";
        let records = parse(text).unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].api.as_deref(), Some(RUST_BLOCKING));
        assert_eq!(records[1].case, GET_LOCAL);
        assert_eq!(records[1].calls_per_s, 2e6);
        assert_eq!(records[1].cpu_us, None);
        assert!(parse("{\"lang\": \"x\"}").is_err());
    }

    #[test]
    fn ratios_are_to_the_rust_anchor_of_the_same_case() {
        let records = vec![
            rec("rust", REQUEST_SEQ, Some(RUST_BLOCKING), 40_000.0),
            rec("rust", REQUEST_SEQ, Some(RUST_AWAITED), 400_000.0),
            rec("python", REQUEST_SEQ, Some("blocking API"), 10_000.0),
            rec("node", REQUEST_SEQ, None, 30_000.0),
            rec("node", GET_LOCAL, None, 1_200_000.0),
        ];
        let t = table(&records);
        let line = |start: &str| {
            t.lines()
                .find(|l| l.starts_with(start))
                .unwrap()
                .to_string()
        };
        assert!(line("python: blocking API").contains("0.25x"), "{t}");
        assert!(line("python: blocking API").contains("not met"), "{t}");
        assert!(
            line("node ").contains("0.75x") && line("node ").contains("met"),
            "{t}"
        );
        assert!(line("rust: awaited").contains("10.00x"), "{t}");
        // No Rust get in the records: no ratio, but the absolute target still applies.
        let get = t
            .lines()
            .find(|l| l.starts_with("node") && l.contains("M/s"))
            .unwrap();
        assert!(
            get.contains(">= 1.0 M/s: met") && get.contains(" - "),
            "{t}"
        );
    }

    #[test]
    fn a_language_s_own_anchor_gets_a_ratio_but_no_target() {
        let records = vec![
            rec("rust", REQUEST_SEQ, Some(RUST_BLOCKING), 40_000.0),
            rec("node", REQUEST_SEQ, Some("anchor: floor"), 30_000.0),
            rec("node", REQUEST_SEQ, Some("await, one caller"), 10_000.0),
        ];
        let t = table(&records);
        let anchor = t.lines().find(|l| l.starts_with("node: anchor")).unwrap();
        assert!(anchor.contains("0.75x") && !anchor.contains("met"), "{t}");
        let call = t.lines().find(|l| l.starts_with("node: await")).unwrap();
        assert!(call.contains("0.25x") && call.contains("not met"), "{t}");
    }
}
