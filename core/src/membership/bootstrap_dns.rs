//! Bootstrap entries given as DNS names (ADR 0027): their syntax, and when to resolve each
//! name again and how its answers change the set of addresses dialled. Pure logic: time is
//! passed in, answers are handed in; the resolver around it is `bootstrap_resolver.rs`.
//!
//! An entry is one of
//! - `IP:PORT` (`10.0.0.5:7400`, `[fd00::5]:7400`): dialled as it is, as before;
//! - `HOST:PORT` (`memmesh.default.svc.cluster.local:7400`): every A/AAAA address of
//!   `HOST`, at `PORT`;
//! - `srv:NAME` (`srv:_memmesh._udp.memmesh.default.svc.cluster.local`): the SRV records of
//!   `NAME` give targets and ports; every A/AAAA address of each target, at its port.
//!
//! A name is resolved at start, again every [`REFRESH`] (sooner when its records' TTL is
//! shorter, never more often than [`MIN_REFRESH`]), every [`ALONE_REFRESH`] while this node
//! has no live member, and after a failure with a backoff from [`MIN_REFRESH`] to
//! [`MAX_FAILURE_BACKOFF`]. A name that does not resolve yet is not an error: clouds
//! publish records late. An answer replaces what the name gave before, so an address gone
//! from DNS stops being dialled; a failure to ask (a timeout, no server) keeps it.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::error::{Classify, ErrorKind};

/// Prefix of an SRV entry.
pub const SRV_PREFIX: &str = "srv:";
/// Most addresses kept from one name (the rest of a larger answer is dropped).
pub const MAX_ADDRS_PER_NAME: usize = 64;
/// Most SRV targets resolved for one SRV name.
pub const MAX_SRV_TARGETS: usize = 16;
/// Most DNS names among the bootstrap entries.
pub const MAX_DNS_NAMES: usize = 64;
/// Longest pause between two resolutions of a name that answered.
pub const REFRESH: Duration = Duration::from_secs(30);
/// Shortest pause between two resolutions of a name (a TTL of 0 included).
pub const MIN_REFRESH: Duration = Duration::from_secs(1);
/// Pause between two resolutions of a name while this node is alone.
pub const ALONE_REFRESH: Duration = Duration::from_secs(2);
/// Longest pause after failed resolutions.
pub const MAX_FAILURE_BACKOFF: Duration = Duration::from_secs(16);
/// Longest a resolution may take before it counts as failed.
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(10);

/// A bootstrap entry that is not one of the accepted forms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BootstrapError {
    /// The entry, and what is wrong with it.
    #[error("invalid bootstrap entry {entry:?}: {why} (expected IP:PORT, HOST:PORT or srv:NAME)")]
    Syntax {
        /// The entry given.
        entry: String,
        /// What is wrong.
        why: &'static str,
    },
    /// More DNS names than [`MAX_DNS_NAMES`].
    #[error("at most {MAX_DNS_NAMES} bootstrap entries may be DNS names, got {0}")]
    TooManyNames(usize),
}

impl Classify for BootstrapError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidInput
    }
}

/// A DNS name to resolve for bootstrap addresses.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DnsName {
    /// A/AAAA records of `host`, at `port`.
    Host {
        /// The name.
        host: String,
        /// The port dialled on every address.
        port: u16,
    },
    /// SRV records of the name: targets (resolved by A/AAAA) and their ports.
    Srv(String),
}

impl std::fmt::Display for DnsName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DnsName::Host { host, port } => write!(f, "{host}:{port}"),
            DnsName::Srv(name) => write!(f, "{SRV_PREFIX}{name}"),
        }
    }
}

/// One parsed bootstrap entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BootstrapEntry {
    /// An address dialled as it is.
    Addr(SocketAddr),
    /// A name resolved (and re-resolved) for addresses.
    Dns(DnsName),
}

impl BootstrapEntry {
    /// Parses `entry` (see the module documentation for the forms).
    pub fn parse(entry: &str) -> Result<Self, BootstrapError> {
        let bad = |why| BootstrapError::Syntax {
            entry: entry.to_string(),
            why,
        };
        let trimmed = entry.trim();
        if trimmed.is_empty() {
            return Err(bad("it is empty"));
        }
        if let Ok(addr) = trimmed.parse::<SocketAddr>() {
            return Ok(BootstrapEntry::Addr(addr));
        }
        if let Some(rest) = strip_prefix_ignore_case(trimmed, SRV_PREFIX) {
            check_name(rest).map_err(bad)?;
            return Ok(BootstrapEntry::Dns(DnsName::Srv(rest.to_ascii_lowercase())));
        }
        let Some((host, port)) = trimmed.rsplit_once(':') else {
            return Err(bad(
                "no port (write HOST:PORT, or srv:NAME for SRV records)",
            ));
        };
        if host.contains(':') || host.starts_with('[') {
            return Err(bad("not an IPv6 address (write [ADDR]:PORT)"));
        }
        let port: u16 = port
            .parse()
            .map_err(|_| bad("the port is not a number from 0 to 65535"))?;
        let last = host.trim_end_matches('.').rsplit('.').next().unwrap_or("");
        if !last.is_empty() && last.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("not an address (and no name ends in a number)"));
        }
        check_name(host).map_err(bad)?;
        Ok(BootstrapEntry::Dns(DnsName::Host {
            host: host.to_ascii_lowercase(),
            port,
        }))
    }
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) {
        s.get(prefix.len()..)
    } else {
        None
    }
}

/// Checks a DNS name: 1..=253 characters, dot-separated labels of 1..=63 letters, digits,
/// `-` or `_` (SRV names start with `_service._proto`), an optional final dot.
fn check_name(name: &str) -> Result<(), &'static str> {
    let body = name.strip_suffix('.').unwrap_or(name);
    if body.is_empty() {
        return Err("the name is empty");
    }
    if body.len() > 253 {
        return Err("the name is longer than 253 characters");
    }
    for label in body.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err("a label of the name is empty or longer than 63 characters");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err("the name has a character other than letters, digits, '-', '_' and '.'");
        }
    }
    Ok(())
}

/// Splits bootstrap entries into addresses and DNS names (duplicates dropped). Bad syntax,
/// or more than [`MAX_DNS_NAMES`] names, is an error.
pub fn split_entries(
    entries: &[String],
) -> Result<(Vec<SocketAddr>, Vec<DnsName>), BootstrapError> {
    let mut addrs = Vec::new();
    let mut names = Vec::new();
    for entry in entries {
        match BootstrapEntry::parse(entry)? {
            BootstrapEntry::Addr(a) => {
                if !addrs.contains(&a) {
                    addrs.push(a)
                }
            }
            BootstrapEntry::Dns(n) => {
                if !names.contains(&n) {
                    names.push(n)
                }
            }
        }
    }
    if names.len() > MAX_DNS_NAMES {
        return Err(BootstrapError::TooManyNames(names.len()));
    }
    Ok((addrs, names))
}

/// What one resolution of a name found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The name's addresses now (possibly none: the records are gone), and how long the
    /// answer is valid for (the smallest TTL), if known.
    Found {
        /// The addresses (at most [`MAX_ADDRS_PER_NAME`] are kept).
        addrs: Vec<SocketAddr>,
        /// The records' lifetime.
        ttl: Option<Duration>,
    },
    /// The name does not exist or has no such record: whatever it gave before is gone.
    Gone,
    /// Asking failed (a timeout, no server reachable): what it gave before is kept.
    Failed,
}

#[derive(Debug, Clone)]
struct NameState {
    name: DnsName,
    /// When it was last asked (`None`: never).
    last: Option<Instant>,
    /// Pause after `last` before asking again (not alone).
    spacing: Duration,
    failures: u32,
    in_flight: bool,
    addrs: BTreeSet<SocketAddr>,
}

/// How an answer changed the bootstrap set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Change {
    /// Addresses no name gave before: dial them now.
    pub added: Vec<SocketAddr>,
    /// Addresses no name gives any more: stop dialling them.
    pub removed: Vec<SocketAddr>,
}

impl Change {
    /// Whether the set is unchanged.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty()
    }
}

/// The resolution schedule of the bootstrap names and the addresses they gave.
#[derive(Debug, Clone)]
pub struct DnsSchedule {
    names: Vec<NameState>,
}

impl DnsSchedule {
    /// A schedule for `names` (at most [`MAX_DNS_NAMES`] are kept), each due at once.
    pub fn new(names: Vec<DnsName>) -> Self {
        Self {
            names: names
                .into_iter()
                .take(MAX_DNS_NAMES)
                .map(|name| NameState {
                    name,
                    last: None,
                    spacing: Duration::ZERO,
                    failures: 0,
                    in_flight: false,
                    addrs: BTreeSet::new(),
                })
                .collect(),
        }
    }

    /// The names.
    pub fn names(&self) -> impl Iterator<Item = &DnsName> {
        self.names.iter().map(|n| &n.name)
    }

    fn next_of(n: &NameState, alone: bool) -> Option<Instant> {
        if n.in_flight {
            return None;
        }
        let last = n.last?;
        let spacing = if alone && n.failures == 0 {
            n.spacing.min(ALONE_REFRESH)
        } else {
            n.spacing
        };
        Some(last + spacing)
    }

    /// The names to resolve now (by index; each is then in flight until
    /// [`DnsSchedule::answered`]). `alone`: this node has no live member.
    pub fn due(&mut self, now: Instant, alone: bool) -> Vec<usize> {
        let mut due = Vec::new();
        for (i, n) in self.names.iter_mut().enumerate() {
            let ready = match n.last {
                None => !n.in_flight,
                Some(_) => Self::next_of(n, alone).is_some_and(|t| t <= now),
            };
            if ready {
                n.in_flight = true;
                n.last = Some(now);
                due.push(i);
            }
        }
        due
    }

    /// How long until a name is due (`None`: every name is in flight).
    pub fn wait(&self, now: Instant, alone: bool) -> Option<Duration> {
        self.names
            .iter()
            .filter_map(|n| match n.last {
                None if !n.in_flight => Some(now),
                _ => Self::next_of(n, alone),
            })
            .min()
            .map(|t| t.saturating_duration_since(now))
    }

    /// Takes the answer for name `index`, asked at [`DnsSchedule::due`] and answered at
    /// `now`; returns how the union of every name's addresses changed.
    pub fn answered(&mut self, index: usize, answer: Answer, now: Instant) -> Change {
        let before = self.addrs();
        let Some(n) = self.names.get_mut(index) else {
            return Change::default();
        };
        n.in_flight = false;
        n.last = Some(now);
        match answer {
            Answer::Found { addrs, ttl } => {
                n.failures = 0;
                n.spacing = ttl.map_or(REFRESH, |t| t.clamp(MIN_REFRESH, REFRESH));
                n.addrs = addrs.into_iter().take(MAX_ADDRS_PER_NAME).collect();
                if n.addrs.is_empty() {
                    // Nothing yet: ask again as a failure would.
                    n.failures = 1;
                    n.spacing = MIN_REFRESH;
                }
            }
            Answer::Gone | Answer::Failed => {
                if answer == Answer::Gone {
                    n.addrs.clear();
                }
                n.failures = n.failures.saturating_add(1);
                let shift = n.failures.saturating_sub(1).min(16);
                n.spacing = (MIN_REFRESH * (1u32 << shift)).min(MAX_FAILURE_BACKOFF);
            }
        }
        let after = self.addrs();
        Change {
            added: after.difference(&before).copied().collect(),
            removed: before.difference(&after).copied().collect(),
        }
    }

    /// Every address the names give now, sorted.
    pub fn addrs(&self) -> BTreeSet<SocketAddr> {
        self.names
            .iter()
            .flat_map(|n| n.addrs.iter().copied())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn host(h: &str, port: u16) -> DnsName {
        DnsName::Host {
            host: h.into(),
            port,
        }
    }

    #[test]
    fn entries_parse_into_addresses_hosts_and_srv_names() {
        assert_eq!(
            BootstrapEntry::parse("10.0.0.1:7400").unwrap(),
            BootstrapEntry::Addr(a("10.0.0.1:7400"))
        );
        assert_eq!(
            BootstrapEntry::parse("[fd00::1]:7400").unwrap(),
            BootstrapEntry::Addr(a("[fd00::1]:7400"))
        );
        assert_eq!(
            BootstrapEntry::parse("LocalHost:7400").unwrap(),
            BootstrapEntry::Dns(host("localhost", 7400))
        );
        assert_eq!(
            BootstrapEntry::parse("mesh.default.svc.cluster.local.:1").unwrap(),
            BootstrapEntry::Dns(host("mesh.default.svc.cluster.local.", 1))
        );
        assert_eq!(
            BootstrapEntry::parse("srv:_memmesh._udp.mesh.test").unwrap(),
            BootstrapEntry::Dns(DnsName::Srv("_memmesh._udp.mesh.test".into()))
        );
        assert_eq!(
            BootstrapEntry::parse("SRV:_memmesh._udp.mesh.test").unwrap(),
            BootstrapEntry::Dns(DnsName::Srv("_memmesh._udp.mesh.test".into()))
        );
        assert_eq!(
            DnsName::Srv("_m._udp.x".into()).to_string(),
            "srv:_m._udp.x"
        );
    }

    #[test]
    fn bad_entries_say_what_is_wrong() {
        for (entry, why) in [
            ("", "empty"),
            ("mesh.test", "no port"),
            ("mesh.test:http", "port"),
            ("mesh.test:70000", "port"),
            ("fd00::1:7400", "IPv6"),
            ("[fd00::1]", "IPv6"),
            ("1.2.3:7400", "not an address"),
            ("srv:", "empty"),
            ("mesh..test:1", "label"),
            ("me sh.test:1", "character"),
            ("srv:_memmesh._udp.mesh/test", "character"),
        ] {
            let e = BootstrapEntry::parse(entry).unwrap_err();
            let msg = e.to_string();
            assert!(msg.contains(why), "{entry:?}: {msg}");
            assert!(msg.contains("HOST:PORT"), "{msg}");
            assert_eq!(e.kind(), ErrorKind::InvalidInput);
        }
        let long = format!("{}.test:1", "a".repeat(64));
        assert!(BootstrapEntry::parse(&long).is_err());
    }

    #[test]
    fn entries_split_dedup_and_bound() {
        let entries: Vec<String> = ["1.2.3.4:1", "h:1", "1.2.3.4:1", "h:1", "srv:s"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let (addrs, names) = split_entries(&entries).unwrap();
        assert_eq!(addrs, vec![a("1.2.3.4:1")]);
        assert_eq!(names, vec![host("h", 1), DnsName::Srv("s".into())]);
        let many: Vec<String> = (0..=MAX_DNS_NAMES).map(|i| format!("h{i}:1")).collect();
        assert_eq!(
            split_entries(&many).unwrap_err(),
            BootstrapError::TooManyNames(MAX_DNS_NAMES + 1)
        );
    }

    #[test]
    fn names_are_due_at_once_then_every_refresh_bounded_by_ttl() {
        let t0 = Instant::now();
        let mut s = DnsSchedule::new(vec![host("a", 1), host("b", 1)]);
        assert_eq!(s.due(t0, false), vec![0, 1]);
        assert!(s.due(t0, false).is_empty(), "in flight");
        assert_eq!(s.wait(t0, false), None);
        let c = s.answered(
            0,
            Answer::Found {
                addrs: vec![a("10.0.0.1:1")],
                ttl: None,
            },
            t0,
        );
        assert_eq!(c.added, vec![a("10.0.0.1:1")]);
        let c = s.answered(
            1,
            Answer::Found {
                addrs: vec![a("10.0.0.2:1"), a("10.0.0.1:1")],
                ttl: Some(S * 5),
            },
            t0,
        );
        assert_eq!(c.added, vec![a("10.0.0.2:1")], "10.0.0.1 was known");
        assert_eq!(s.wait(t0, false), Some(S * 5));
        assert!(s.due(t0 + S * 4, false).is_empty());
        assert_eq!(s.due(t0 + S * 5, false), vec![1]);
        assert_eq!(s.due(t0 + REFRESH, false), vec![0]);
        // A TTL of 0 is asked again after MIN_REFRESH, a long one after REFRESH.
        let c = s.answered(
            0,
            Answer::Found {
                addrs: vec![a("10.0.0.1:1")],
                ttl: Some(Duration::ZERO),
            },
            t0 + REFRESH,
        );
        assert!(c.is_empty());
        assert_eq!(s.wait(t0 + REFRESH, false), Some(MIN_REFRESH));
    }

    #[test]
    fn while_alone_names_are_asked_every_alone_refresh() {
        let t0 = Instant::now();
        let mut s = DnsSchedule::new(vec![host("a", 1)]);
        s.due(t0, true);
        s.answered(
            0,
            Answer::Found {
                addrs: vec![a("10.0.0.1:1")],
                ttl: None,
            },
            t0,
        );
        assert_eq!(s.wait(t0, true), Some(ALONE_REFRESH));
        assert_eq!(s.wait(t0, false), Some(REFRESH));
        assert!(s.due(t0 + ALONE_REFRESH, false).is_empty());
        assert_eq!(s.due(t0 + ALONE_REFRESH, true), vec![0]);
    }

    #[test]
    fn failures_back_off_and_gone_records_stop_being_dialled() {
        let t0 = Instant::now();
        let mut s = DnsSchedule::new(vec![host("a", 1)]);
        let mut asked = Vec::new();
        let mut now = t0;
        for _ in 0..8 {
            assert_eq!(s.due(now, true), vec![0]);
            asked.push(now.duration_since(t0).as_secs());
            s.answered(0, Answer::Failed, now);
            now += s.wait(now, true).unwrap();
        }
        assert_eq!(asked, vec![0, 1, 3, 7, 15, 31, 47, 63]);
        // An answer resets the backoff.
        s.due(now, true);
        let c = s.answered(
            0,
            Answer::Found {
                addrs: vec![a("10.0.0.1:1"), a("10.0.0.2:1")],
                ttl: None,
            },
            now,
        );
        assert_eq!(c.added.len(), 2);
        // A failure to ask keeps the addresses...
        now += REFRESH;
        s.due(now, false);
        assert!(s.answered(0, Answer::Failed, now).is_empty());
        assert_eq!(s.addrs().len(), 2);
        assert_eq!(s.wait(now, false), Some(MIN_REFRESH));
        // ...an answer without one of them drops it...
        now += MIN_REFRESH;
        s.due(now, false);
        let c = s.answered(
            0,
            Answer::Found {
                addrs: vec![a("10.0.0.2:1")],
                ttl: None,
            },
            now,
        );
        assert_eq!(c.removed, vec![a("10.0.0.1:1")]);
        // ...and a name gone from DNS drops them all.
        now += REFRESH;
        s.due(now, false);
        let c = s.answered(0, Answer::Gone, now);
        assert_eq!(c.removed, vec![a("10.0.0.2:1")]);
        assert!(s.addrs().is_empty());
    }

    #[test]
    fn an_empty_answer_is_asked_again_soon_and_answers_are_bounded() {
        let t0 = Instant::now();
        let mut s = DnsSchedule::new(vec![DnsName::Srv("s".into())]);
        s.due(t0, false);
        s.answered(
            0,
            Answer::Found {
                addrs: vec![],
                ttl: None,
            },
            t0,
        );
        assert_eq!(s.wait(t0, false), Some(MIN_REFRESH));
        s.due(t0 + MIN_REFRESH, false);
        let many: Vec<SocketAddr> = (0..200u16)
            .map(|p| SocketAddr::from(([10, 0, 0, 1], p)))
            .collect();
        let c = s.answered(
            0,
            Answer::Found {
                addrs: many,
                ttl: None,
            },
            t0 + MIN_REFRESH,
        );
        assert_eq!(c.added.len(), MAX_ADDRS_PER_NAME);
        // An index out of range changes nothing.
        assert!(s.answered(7, Answer::Gone, t0).is_empty());
    }
}
