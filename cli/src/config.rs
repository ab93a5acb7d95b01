//! Tiered configuration: flags > `MEMMESH_*` environment variables > a TOML file >
//! defaults, resolved into [`memmesh::node::options::NodeOptions`] (so the defaults stay
//! those of [`NodeConfig`], written once in core).
//!
//! Every node option has one key: a top-level name (`listen`, `data_dir`, ...) or a
//! dotted one for a table (`membership.probe_period`, `tuning.keep_alive`). The same key
//! is the TOML key (in its table), the environment variable (`MEMMESH_` + the key in
//! capitals, dots as `_`: `MEMMESH_MEMBERSHIP_PROBE_PERIOD`) and the `--set KEY=VALUE`
//! flag. Durations are humantime strings (`"500ms"`, `"10s"`, `"1m 30s"`) or integers of
//! milliseconds; sizes are integers of bytes or strings with a unit (`"64MiB"`, `"1GB"`);
//! lists are TOML arrays, or comma-separated in the environment and in `--set`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use memmesh::node::config::NodeConfig;
use memmesh::node::options::NodeOptions;
use memmesh::transport::CongestionControl;
use serde_json::{json, Value as Json};

/// The kind of value a key takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Str,
    Secret,
    Bool,
    Int,
    Size,
    Duration,
    List,
    /// A list of node ids (each one checked when read).
    NodeIds,
    Path,
    Congestion,
    Role,
}

impl Kind {
    fn describe(self) -> &'static str {
        match self {
            Kind::Str | Kind::Secret | Kind::Path => "a string",
            Kind::Bool => "a boolean (true or false)",
            Kind::Int => "a non-negative integer",
            Kind::Size => "a size (bytes, or a string like \"64MiB\")",
            Kind::Duration => "a duration (a string like \"500ms\" or \"10s\", or milliseconds)",
            Kind::List => "a list of strings",
            Kind::NodeIds => "a list of node ids",
            Kind::Congestion => "one of \"cubic\", \"newreno\", \"bbr\"",
            Kind::Role => "\"member\" or \"client\"",
        }
    }
}

/// Every key, its kind. The order is the order `config show` prints.
const KEYS: &[(&str, Kind)] = &[
    ("name", Kind::Str),
    ("listen", Kind::Str),
    ("cluster_secret", Kind::Secret),
    ("open", Kind::Bool),
    ("bootstrap", Kind::List),
    ("devices", Kind::NodeIds),
    ("trusted_peers", Kind::NodeIds),
    ("serve_commons", Kind::Bool),
    ("mdns", Kind::Bool),
    ("mdns_interfaces", Kind::List),
    ("memory_quota", Kind::Size),
    ("data_dir", Kind::Path),
    ("inbox_dir", Kind::Path),
    ("disk_quota", Kind::Size),
    ("storage_passphrase", Kind::Secret),
    ("known_peers_ttl", Kind::Duration),
    ("redis_listen", Kind::Str),
    ("redis_password", Kind::Secret),
    ("redis_allow_flush", Kind::Bool),
    ("redis_max_clients", Kind::Int),
    ("redis_max_clients_per_ip", Kind::Int),
    ("redis_max_bulk", Kind::Size),
    ("redis_max_args", Kind::Int),
    ("redis_max_inline", Kind::Size),
    ("redis_max_pending", Kind::Size),
    ("redis_max_subscriber_bytes", Kind::Size),
    ("redis_frame_timeout", Kind::Duration),
    ("http_listen", Kind::Str),
    ("http_token", Kind::Secret),
    ("role", Kind::Role),
    ("threads", Kind::Int),
    ("max_message_size", Kind::Size),
    ("docs_max_bytes", Kind::Size),
    ("request_timeout", Kind::Duration),
    ("send_timeout", Kind::Duration),
    ("connect_timeout", Kind::Duration),
    ("channel_queue", Kind::Int),
    ("membership.probe_period", Kind::Duration),
    ("membership.probe_rtt", Kind::Duration),
    ("membership.suspect_timeout", Kind::Duration),
    ("membership.down_grace", Kind::Duration),
    ("membership.forget_after", Kind::Duration),
    ("membership.full_sync_interval", Kind::Duration),
    ("membership.rejoin_interval", Kind::Duration),
    ("tuning.mtu_upper_bound", Kind::Int),
    ("tuning.segmentation_offload", Kind::Bool),
    ("tuning.stream_receive_window", Kind::Size),
    ("tuning.receive_window", Kind::Size),
    ("tuning.send_window", Kind::Size),
    ("tuning.socket_buffer", Kind::Size),
    ("tuning.max_bidi_streams", Kind::Int),
    ("tuning.max_uni_streams", Kind::Int),
    ("tuning.keep_alive", Kind::Duration),
    ("tuning.idle_timeout", Kind::Duration),
    ("tuning.congestion", Kind::Congestion),
];

/// The tables a config file may have.
const TABLES: &[&str] = &["membership", "tuning"];

/// Defaults of the CLI that differ from [`NodeConfig::default`]: a node started from the
/// command line finds peers by `bootstrap`, not multicast, unless asked.
const CLI_DEFAULTS: &[(&str, &str)] = &[("mdns", "false")];

fn kind_of(key: &str) -> Option<Kind> {
    KEYS.iter().find(|(k, _)| *k == key).map(|(_, kind)| *kind)
}

/// The environment variable of `key`.
pub fn env_name(key: &str) -> String {
    format!("MEMMESH_{}", key.replace('.', "_").to_uppercase())
}

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A command-line flag.
    Flag,
    /// An environment variable.
    Env(String),
    /// A config file, and the line of the key.
    File(PathBuf, usize),
    /// The CLI's own default.
    CliDefault,
    /// The default of the node configuration.
    Default,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Flag => f.write_str("flag"),
            Source::Env(v) => write!(f, "env:{v}"),
            Source::File(p, line) => write!(f, "file:{}:{line}", p.display()),
            Source::CliDefault => f.write_str("default (cli)"),
            Source::Default => f.write_str("default"),
        }
    }
}

/// A parsed value.
#[derive(Debug, Clone, PartialEq)]
enum Val {
    Str(String),
    Bool(bool),
    Int(u64),
    Duration(Duration),
    List(Vec<String>),
    Congestion(CongestionControl),
    Role(memmesh::Role),
}

/// A configuration error: its message names the source (file and line, variable or
/// flag) and the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// Parses a duration: humantime text or an integer of milliseconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if let Ok(ms) = t.parse::<u64>() {
        return Ok(Duration::from_millis(ms));
    }
    humantime::parse_duration(t).map_err(|e| format!("{text:?} is not a duration ({e})"))
}

/// Parses a size: an integer of bytes or a number with a unit (B, K/KB, KiB, M/MB, MiB,
/// G/GB, GiB, T/TB, TiB; case-insensitive).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let unit = unit.trim().to_ascii_lowercase();
    let mult: u64 = match unit.as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1000,
        "kib" => 1 << 10,
        "m" | "mb" => 1000 * 1000,
        "mib" => 1 << 20,
        "g" | "gb" => 1000 * 1000 * 1000,
        "gib" => 1 << 30,
        "t" | "tb" => 1000u64.pow(4),
        "tib" => 1 << 40,
        _ => return Err(format!("{text:?} is not a size (unknown unit {unit:?})")),
    };
    let n: f64 = num.parse().map_err(|_| format!("{text:?} is not a size"))?;
    let bytes = n * mult as f64;
    if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
        return Err(format!("{text:?} is out of range"));
    }
    Ok(bytes as u64)
}

/// A list of node ids, each checked (the values stay text: `apply` parses them again).
fn node_ids(items: Vec<String>) -> Result<Val, String> {
    for i in &items {
        i.parse::<memmesh::NodeId>()
            .map_err(|e| format!("{i:?} is not a node id: {}", e.message()))?;
    }
    Ok(Val::List(items))
}

fn parse_bool(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(format!("{text:?} is not a boolean")),
    }
}

/// Parses `text` (an environment variable or `--set` value) as a value of `kind`.
fn parse_text(kind: Kind, text: &str) -> Result<Val, String> {
    Ok(match kind {
        Kind::Str | Kind::Secret | Kind::Path => Val::Str(text.to_string()),
        Kind::Bool => Val::Bool(parse_bool(text)?),
        Kind::Int => Val::Int(
            text.trim()
                .parse()
                .map_err(|_| format!("{text:?} is not a non-negative integer"))?,
        ),
        Kind::Size => Val::Int(parse_size(text)?),
        Kind::Duration => Val::Duration(parse_duration(text)?),
        Kind::List => Val::List(
            text.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
        ),
        Kind::NodeIds => node_ids(
            text.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
        )?,
        Kind::Congestion => Val::Congestion(text.trim().parse().map_err(|e| format!("{e}"))?),
        Kind::Role => Val::Role(text.trim().parse().map_err(|e| format!("{e}"))?),
    })
}

/// Converts a TOML value into a value of `kind`.
fn parse_toml(kind: Kind, v: &toml::Value) -> Result<Val, String> {
    use toml::Value as T;
    let wrong = || format!("expected {}, got {}", kind.describe(), v.type_str());
    match (kind, v) {
        (Kind::Str | Kind::Secret | Kind::Path, T::String(s)) => Ok(Val::Str(s.clone())),
        (Kind::Bool, T::Boolean(b)) => Ok(Val::Bool(*b)),
        (Kind::Int | Kind::Size, T::Integer(n)) => u64::try_from(*n)
            .map(Val::Int)
            .map_err(|_| format!("{n} is negative")),
        (Kind::Size, T::String(s)) => parse_size(s).map(Val::Int),
        (Kind::Duration, T::Integer(n)) => u64::try_from(*n)
            .map(|ms| Val::Duration(Duration::from_millis(ms)))
            .map_err(|_| format!("{n} is negative")),
        (Kind::Duration, T::String(s)) => parse_duration(s).map(Val::Duration),
        (Kind::List, T::Array(items)) => items
            .iter()
            .map(|i| i.as_str().map(str::to_string).ok_or_else(wrong))
            .collect::<Result<Vec<_>, _>>()
            .map(Val::List),
        (Kind::NodeIds, T::Array(items)) => node_ids(
            items
                .iter()
                .map(|i| i.as_str().map(str::to_string).ok_or_else(wrong))
                .collect::<Result<Vec<_>, _>>()?,
        ),
        (Kind::Congestion, T::String(s)) => s
            .parse()
            .map(Val::Congestion)
            .map_err(|e: memmesh::Error| e.to_string()),
        (Kind::Role, T::String(s)) => s
            .parse::<memmesh::Role>()
            .map(Val::Role)
            .map_err(|e| e.to_string()),
        _ => Err(wrong()),
    }
}

/// One tier: values by key, each with its source.
#[derive(Debug, Clone, Default)]
pub struct Layer {
    values: BTreeMap<String, (Val, Source)>,
}

impl Layer {
    /// Sets `key` from text given on the command line (`--listen`, `--set KEY=VALUE`).
    pub fn set_flag(&mut self, key: &str, text: &str) -> Result<(), ConfigError> {
        let kind = kind_of(key).ok_or_else(|| {
            ConfigError(format!(
                "--set {key}: unknown key (known keys: {})",
                known_keys()
            ))
        })?;
        let v = parse_text(kind, text).map_err(|e| ConfigError(format!("--set {key}: {e}")))?;
        self.values.insert(key.to_string(), (v, Source::Flag));
        Ok(())
    }

    /// Sets a list `key` from repeated flags.
    pub fn set_flag_list(&mut self, key: &str, items: Vec<String>) {
        self.values
            .insert(key.to_string(), (Val::List(items), Source::Flag));
    }

    /// Sets a boolean `key` from a flag.
    pub fn set_flag_bool(&mut self, key: &str, b: bool) {
        self.values
            .insert(key.to_string(), (Val::Bool(b), Source::Flag));
    }

    /// Parses `KEY=VALUE` (the `--set` flag).
    pub fn set_assignment(&mut self, assignment: &str) -> Result<(), ConfigError> {
        let (k, v) = assignment
            .split_once('=')
            .ok_or_else(|| ConfigError(format!("--set {assignment:?}: expected KEY=VALUE")))?;
        self.set_flag(k.trim(), v)
    }

    /// The layer of the environment: `MEMMESH_<KEY>` for every key (`MEMMESH_SECRET` too,
    /// for the cluster secret). Empty variables are ignored.
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Layer, ConfigError> {
        let mut layer = Layer::default();
        for (key, kind) in KEYS {
            let mut names = vec![env_name(key)];
            if *key == "cluster_secret" {
                names.push("MEMMESH_SECRET".to_string());
            }
            for name in names {
                let Some(text) = get(&name).filter(|t| !t.is_empty()) else {
                    continue;
                };
                let v = parse_text(*kind, &text)
                    .map_err(|e| ConfigError(format!("environment variable {name}: {e}")))?;
                layer.values.insert(key.to_string(), (v, Source::Env(name)));
                break;
            }
        }
        Ok(layer)
    }

    /// The layer of a config file's text: unknown keys, wrong types and bad values are
    /// errors naming the file, the line and the key.
    pub fn from_toml(path: &Path, text: &str) -> Result<Layer, ConfigError> {
        let table: toml::Table = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| line_of_offset(text, s.start)).unwrap_or(0);
            ConfigError(format!(
                "{}:{line}: {}",
                path.display(),
                e.message().trim_end()
            ))
        })?;
        let mut layer = Layer::default();
        let at = |key: &str| line_of_key(text, key);
        let err = |key: &str, why: String| {
            ConfigError(format!("{}:{}: key {key}: {why}", path.display(), at(key)))
        };
        for (name, value) in &table {
            if TABLES.contains(&name.as_str()) {
                let Some(sub) = value.as_table() else {
                    return Err(err(name, "expected a table".to_string()));
                };
                for (sub_name, v) in sub {
                    let key = format!("{name}.{sub_name}");
                    layer.set_toml_value(&key, v, path, text, &err)?;
                }
            } else {
                layer.set_toml_value(name, value, path, text, &err)?;
            }
        }
        Ok(layer)
    }

    fn set_toml_value(
        &mut self,
        key: &str,
        v: &toml::Value,
        path: &Path,
        text: &str,
        err: &dyn Fn(&str, String) -> ConfigError,
    ) -> Result<(), ConfigError> {
        let kind = kind_of(key)
            .ok_or_else(|| err(key, format!("unknown key (known keys: {})", known_keys())))?;
        let val = parse_toml(kind, v).map_err(|e| err(key, e))?;
        let source = Source::File(path.to_path_buf(), line_of_key(text, key));
        self.values.insert(key.to_string(), (val, source));
        Ok(())
    }
}

fn known_keys() -> String {
    KEYS.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", ")
}

/// The 1-based line of a byte offset.
fn line_of_offset(text: &str, offset: usize) -> usize {
    text.get(..offset.min(text.len()))
        .map(|t| t.matches('\n').count() + 1)
        .unwrap_or(1)
}

/// The 1-based line where `key` (`name` or `table.name`) is set in a TOML text (0 if not
/// found): the first `name =` line in the key's table.
fn line_of_key(text: &str, key: &str) -> usize {
    let (table, name) = match key.split_once('.') {
        Some((t, n)) => (Some(t), n),
        None => (None, key),
    };
    let mut current: Option<String> = None;
    for (i, line) in text.lines().enumerate() {
        let l = line.trim();
        if table.is_none()
            && l.trim_matches(|c| c == '[' || c == ']').trim() == name
            && l.starts_with('[')
        {
            return i + 1;
        }
        if l.starts_with('[') {
            current = Some(l.trim_matches(|c| c == '[' || c == ']').trim().to_string());
            continue;
        }
        let in_table = match (table, &current) {
            (None, None) => true,
            (Some(t), Some(c)) => t == c,
            _ => false,
        };
        if !in_table {
            continue;
        }
        let k = l.split('=').next().unwrap_or("").trim().trim_matches('"');
        if k == name && l.contains('=') {
            return i + 1;
        }
        if table.is_none() && k == key {
            return i + 1;
        }
    }
    0
}

/// The effective configuration: what each tier gave, merged.
#[derive(Debug, Clone)]
pub struct Settings {
    merged: BTreeMap<String, (Val, Source)>,
    /// The config file read, if any.
    pub file: Option<PathBuf>,
}

impl Settings {
    /// Merges the tiers: `flags` over `env` over `file` over the CLI's defaults.
    pub fn merge(flags: Layer, env: Layer, file: Layer, file_path: Option<PathBuf>) -> Settings {
        let mut merged = BTreeMap::new();
        for (key, text) in CLI_DEFAULTS {
            if let Some(kind) = kind_of(key) {
                if let Ok(v) = parse_text(kind, text) {
                    merged.insert(key.to_string(), (v, Source::CliDefault));
                }
            }
        }
        for layer in [file, env, flags] {
            merged.extend(layer.values);
        }
        Settings {
            merged,
            file: file_path,
        }
    }

    /// The string value of `key` if one was given (a path, the listen address...).
    pub fn get_str(&self, key: &str) -> Option<&str> {
        match self.merged.get(key) {
            Some((Val::Str(s), _)) => Some(s),
            _ => None,
        }
    }

    /// The data directory, if configured.
    pub fn data_dir(&self) -> Option<PathBuf> {
        self.get_str("data_dir").map(PathBuf::from)
    }

    /// The node options these settings give. A Redis password without a Redis listener
    /// is ignored (MEMMESH_REDIS_PASSWORD may be set for other tools).
    pub fn options(&self) -> NodeOptions {
        let mut o = NodeOptions::default();
        for (key, (val, _)) in &self.merged {
            apply(&mut o, key, val.clone());
        }
        if o.redis_listen.is_none() {
            o.redis_password = None;
        }
        o
    }

    /// The validated node configuration; a bad value names its key and source.
    pub fn node_config(&self) -> Result<NodeConfig, ConfigError> {
        self.options().into_config().map_err(|e| {
            let msg = e.to_string();
            // Name where the offending value came from: the longest key whose last
            // segment the message names.
            let culprit = self
                .merged
                .iter()
                .filter(|(k, _)| {
                    let leaf = k.rsplit('.').next().unwrap_or(k);
                    msg.contains(leaf)
                })
                .max_by_key(|(k, _)| k.len());
            match culprit {
                Some((k, (_, src))) => ConfigError(format!("{k} (from {src}): {msg}")),
                None => ConfigError(format!("invalid configuration: {msg}")),
            }
        })
    }

    /// Every key with its effective value and its source (secrets redacted).
    pub fn show(&self) -> Result<Vec<(String, Json, String)>, ConfigError> {
        let config = self.node_config()?;
        let mut out = Vec::new();
        for (key, kind) in KEYS {
            let source = self
                .merged
                .get(*key)
                .map(|(_, s)| s.to_string())
                .unwrap_or_else(|| Source::Default.to_string());
            let mut value = effective(&config, key);
            if *kind == Kind::Secret && !value.is_null() {
                value = json!("<redacted>");
            }
            out.push((key.to_string(), value, source));
        }
        Ok(out)
    }
}

/// The node ids of `option`, already checked by [`node_ids`].
fn node_ids_of(option: &'static str, items: &[String]) -> Option<Vec<memmesh::NodeId>> {
    memmesh::node::options::node_ids(option, items).ok()
}

/// Writes one value onto the options.
fn apply(o: &mut NodeOptions, key: &str, v: Val) {
    let s = |v: &Val| match v {
        Val::Str(s) => Some(s.clone()),
        _ => None,
    };
    let b = |v: &Val| match v {
        Val::Bool(b) => Some(*b),
        _ => None,
    };
    let n = |v: &Val| match v {
        Val::Int(n) => Some(*n),
        _ => None,
    };
    let d = |v: &Val| match v {
        Val::Duration(d) => Some(*d),
        _ => None,
    };
    let l = |v: &Val| match v {
        Val::List(l) => Some(l.clone()),
        _ => None,
    };
    // Integers beyond a field's type saturate; validation then names the key.
    let us = |v: &Val| n(v).map(|x| usize::try_from(x).unwrap_or(usize::MAX));
    let u32_ = |v: &Val| n(v).map(|x| u32::try_from(x).unwrap_or(u32::MAX));
    let m = &mut o.membership;
    let t = &mut o.tuning;
    let r = &mut o.redis_limits;
    match key {
        "name" => o.name = s(&v),
        "listen" => o.listen = s(&v),
        "cluster_secret" => o.cluster_secret = s(&v).map(String::into_bytes),
        "open" => o.open = b(&v),
        "bootstrap" => o.bootstrap = l(&v),
        // Checked when read (`node_ids`), so parsing again cannot fail.
        "devices" => o.devices = l(&v).and_then(|l| node_ids_of("devices", &l)),
        "trusted_peers" => o.trusted_peers = l(&v).and_then(|l| node_ids_of("trusted_peers", &l)),
        "serve_commons" => o.serve_commons = b(&v),
        "mdns" => o.mdns = b(&v),
        "mdns_interfaces" => o.mdns_interfaces = l(&v),
        "memory_quota" => o.memory_quota = n(&v),
        "data_dir" => o.data_dir = s(&v).map(PathBuf::from),
        "inbox_dir" => o.inbox_dir = s(&v).map(PathBuf::from),
        "disk_quota" => o.disk_quota = n(&v),
        "storage_passphrase" => o.storage_passphrase = s(&v),
        "known_peers_ttl" => o.known_peers_ttl = d(&v),
        "redis_listen" => o.redis_listen = s(&v),
        "redis_password" => o.redis_password = s(&v),
        "redis_allow_flush" => o.redis_allow_flush = b(&v),
        "redis_max_clients" => r.max_clients = us(&v),
        "redis_max_clients_per_ip" => r.max_clients_per_ip = us(&v),
        "redis_max_bulk" => r.max_bulk = us(&v),
        "redis_max_args" => r.max_array = us(&v),
        "redis_max_inline" => r.max_inline = us(&v),
        "redis_max_pending" => r.max_pending = us(&v),
        "redis_max_subscriber_bytes" => r.max_output = us(&v),
        "redis_frame_timeout" => r.frame_timeout = d(&v),
        "http_listen" => o.http_listen = s(&v),
        "http_token" => o.http_token = s(&v),
        "role" => {
            o.role = match v {
                Val::Role(r) => Some(r),
                _ => None,
            }
        }
        "threads" => o.threads = us(&v),
        "max_message_size" => o.max_message_size = us(&v),
        "docs_max_bytes" => o.docs_max_bytes = n(&v),
        "request_timeout" => o.request_timeout = d(&v),
        "send_timeout" => o.send_timeout = d(&v),
        "connect_timeout" => o.connect_timeout = d(&v),
        "channel_queue" => o.channel_queue = us(&v),
        "membership.probe_period" => m.probe_period = d(&v),
        "membership.probe_rtt" => m.probe_rtt = d(&v),
        "membership.suspect_timeout" => m.suspect_timeout = d(&v),
        "membership.down_grace" => m.down_grace = d(&v),
        "membership.forget_after" => m.forget_after = d(&v),
        "membership.full_sync_interval" => m.full_sync_interval = d(&v),
        "membership.rejoin_interval" => m.rejoin_interval = d(&v),
        "tuning.mtu_upper_bound" => {
            t.mtu_upper_bound = n(&v).map(|x| u16::try_from(x).unwrap_or(u16::MAX))
        }
        "tuning.segmentation_offload" => t.segmentation_offload = b(&v),
        "tuning.stream_receive_window" => t.stream_receive_window = u32_(&v),
        "tuning.receive_window" => t.receive_window = u32_(&v),
        "tuning.send_window" => t.send_window = n(&v),
        "tuning.socket_buffer" => t.socket_buffer = us(&v),
        "tuning.max_bidi_streams" => t.max_bidi_streams = u32_(&v),
        "tuning.max_uni_streams" => t.max_uni_streams = u32_(&v),
        "tuning.keep_alive" => t.keep_alive = d(&v),
        "tuning.idle_timeout" => t.idle_timeout = d(&v),
        "tuning.congestion" => {
            t.congestion = match v {
                Val::Congestion(c) => Some(c),
                _ => None,
            }
        }
        _ => {}
    }
}

fn dur(d: Duration) -> Json {
    json!(humantime::format_duration(d).to_string())
}

/// The effective value of `key` in `c`, as JSON.
fn effective(c: &NodeConfig, key: &str) -> Json {
    let m = &c.membership;
    let t = &c.tuning;
    let path = |p: &Option<PathBuf>| json!(p.as_ref().map(|p| p.display().to_string()));
    match key {
        "name" => json!(c.name),
        "listen" => json!(c.listen),
        "cluster_secret" => json!(c.cluster_secret.as_ref().map(|_| "set")),
        "open" => json!(c.open),
        "bootstrap" => json!(c.bootstrap),
        "devices" => json!(c.devices.iter().map(|i| i.to_string()).collect::<Vec<_>>()),
        "trusted_peers" => json!(c
            .trusted_peers
            .iter()
            .map(|i| i.to_string())
            .collect::<Vec<_>>()),
        "serve_commons" => json!(c.serve_commons),
        "mdns" => json!(c.mdns),
        "mdns_interfaces" => json!(c.mdns_interfaces),
        "memory_quota" => json!(c.memory_quota),
        "data_dir" => path(&c.data_dir),
        "inbox_dir" => path(&c.inbox_dir),
        "disk_quota" => json!(c.disk_quota),
        "storage_passphrase" => json!(c.storage_passphrase.as_ref().map(|_| "set")),
        "known_peers_ttl" => dur(c.known_peers_ttl),
        "redis_listen" => json!(c.redis_listen),
        "redis_password" => json!(c.redis_password.as_ref().map(|_| "set")),
        "redis_allow_flush" => json!(c.redis_allow_flush),
        "redis_max_clients" => json!(c.redis_limits.max_clients),
        "redis_max_clients_per_ip" => json!(c.redis_limits.max_clients_per_ip),
        "redis_max_bulk" => json!(c.redis_limits.max_bulk),
        "redis_max_args" => json!(c.redis_limits.max_array),
        "redis_max_inline" => json!(c.redis_limits.max_inline),
        "redis_max_pending" => json!(c.redis_limits.max_pending),
        "redis_max_subscriber_bytes" => json!(c.redis_limits.max_output),
        "redis_frame_timeout" => dur(c.redis_limits.frame_timeout),
        "http_listen" => json!(c.http_listen),
        "http_token" => json!(c.http_token.as_ref().map(|_| "set")),
        "role" => json!(c.role.as_str()),
        "threads" => json!(c.threads),
        "max_message_size" => json!(c.max_message_size),
        "docs_max_bytes" => json!(c.docs_max_bytes),
        "request_timeout" => dur(c.request_timeout),
        "send_timeout" => dur(c.send_timeout),
        "connect_timeout" => dur(c.connect_timeout),
        "channel_queue" => json!(c.channel_queue),
        "membership.probe_period" => dur(m.probe_period),
        "membership.probe_rtt" => dur(m.probe_rtt),
        "membership.suspect_timeout" => dur(m.suspect_timeout),
        "membership.down_grace" => dur(m.down_grace),
        "membership.forget_after" => dur(m.forget_after),
        "membership.full_sync_interval" => dur(m.full_sync_interval),
        "membership.rejoin_interval" => dur(m.rejoin_interval),
        "tuning.mtu_upper_bound" => json!(t.mtu_upper_bound),
        "tuning.segmentation_offload" => json!(t.segmentation_offload),
        "tuning.stream_receive_window" => json!(t.stream_receive_window),
        "tuning.receive_window" => json!(t.receive_window),
        "tuning.send_window" => json!(t.send_window),
        "tuning.socket_buffer" => json!(t.socket_buffer),
        "tuning.max_bidi_streams" => json!(t.max_bidi_streams),
        "tuning.max_uni_streams" => json!(t.max_uni_streams),
        "tuning.keep_alive" => dur(t.keep_alive),
        "tuning.idle_timeout" => dur(t.idle_timeout),
        "tuning.congestion" => json!(t.congestion.to_string()),
        _ => Json::Null,
    }
}

/// The per-user config file: `$XDG_CONFIG_HOME/memmesh/config.toml`, else
/// `~/.config/memmesh/config.toml`.
pub fn user_config_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("memmesh").join("config.toml"))
}

/// Reads the config file: `explicit` (which must exist), else the per-user file if it
/// exists. `MEMMESH_CONFIG` names the file when no flag does.
pub fn load_file(explicit: Option<&Path>) -> Result<(Layer, Option<PathBuf>), ConfigError> {
    let env = std::env::var_os("MEMMESH_CONFIG")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    let (path, required) = match explicit.map(Path::to_path_buf).or(env) {
        Some(p) => (p, true),
        None => match user_config_path() {
            Some(p) => (p, false),
            None => return Ok((Layer::default(), None)),
        },
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok((Layer::from_toml(&path, &text)?, Some(path))),
        Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => {
            Ok((Layer::default(), None))
        }
        Err(e) => Err(ConfigError(format!(
            "cannot read the config file {}: {e}",
            path.display()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Layer {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Layer::from_env(|name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        })
        .unwrap()
    }

    fn file(text: &str) -> Layer {
        Layer::from_toml(Path::new("/etc/memmesh/test.toml"), text).unwrap()
    }

    fn file_err(text: &str) -> String {
        Layer::from_toml(Path::new("/etc/memmesh/test.toml"), text)
            .unwrap_err()
            .0
    }

    #[test]
    fn flags_beat_env_beat_file_beat_defaults() {
        let f = file("name = \"from-file\"\nlisten = \"127.0.0.1:1\"\nthreads = 3\n\n[membership]\nprobe_period = \"700ms\"\n");
        let e = env(&[("MEMMESH_LISTEN", "127.0.0.1:2"), ("MEMMESH_THREADS", "4")]);
        let mut flags = Layer::default();
        flags.set_flag("threads", "5").unwrap();
        let s = Settings::merge(flags, e, f, None);
        let c = s.node_config().unwrap();
        assert_eq!(c.name.as_deref(), Some("from-file"));
        assert_eq!(c.listen, "127.0.0.1:2");
        assert_eq!(c.threads, 5);
        assert_eq!(c.membership.probe_period, Duration::from_millis(700));
        assert!(!c.mdns, "the CLI default");
        let d = NodeConfig::default();
        assert_eq!(c.request_timeout, d.request_timeout);
        let shown = s.show().unwrap();
        let src = |k: &str| shown.iter().find(|(key, _, _)| key == k).unwrap().2.clone();
        assert_eq!(src("name"), "file:/etc/memmesh/test.toml:1");
        assert_eq!(
            src("membership.probe_period"),
            "file:/etc/memmesh/test.toml:6"
        );
        assert_eq!(src("listen"), "env:MEMMESH_LISTEN");
        assert_eq!(src("threads"), "flag");
        assert_eq!(src("mdns"), "default (cli)");
        assert_eq!(src("request_timeout"), "default");
    }

    #[test]
    fn trust_keys_take_node_ids_and_refuse_bad_ones() {
        let id = memmesh::Keypair::generate().unwrap().node_id().to_string();
        let f = file(&format!(
            "trusted_peers = [\"{id}\"]\nserve_commons = true\n"
        ));
        let e = env(&[("MEMMESH_DEVICES", "")]);
        let c = Settings::merge(Layer::default(), e, f, None)
            .node_config()
            .unwrap();
        assert_eq!(c.trusted_peers.len(), 1);
        assert_eq!(c.trusted_peers[0].to_string(), id);
        assert!(c.serve_commons && c.devices.is_empty());
        let m = file_err("devices = [\"not-an-id\"]\n");
        assert!(m.contains("devices") && m.contains("not a node id"), "{m}");
        let mut flags = Layer::default();
        assert!(flags.set_flag("trusted_peers", "nope").is_err());
    }

    #[test]
    fn redis_limits_are_keys_of_the_file_and_the_environment() {
        let f = file("redis_max_clients = 1\nredis_max_subscriber_bytes = \"1MiB\"\nredis_frame_timeout = \"2s\"\nredis_max_args = 16\n");
        let e = env(&[
            ("MEMMESH_REDIS_MAX_BULK", "4k"),
            ("MEMMESH_REDIS_ALLOW_FLUSH", "true"),
        ]);
        let s = Settings::merge(Layer::default(), e, f, None);
        let c = s.node_config().unwrap();
        assert!(c.redis_allow_flush);
        let l = c.redis_limits;
        assert_eq!(l.max_clients, 1);
        assert_eq!(l.max_output, 1 << 20);
        assert_eq!(l.frame_timeout, Duration::from_secs(2));
        assert_eq!(l.max_array, 16);
        assert_eq!(l.max_bulk, 4000);
        let d = memmesh::resp::RespLimits::default();
        assert_eq!(l.max_clients_per_ip, d.max_clients_per_ip);
        assert_eq!(l.max_pending, d.max_pending);
        let shown = s.show().unwrap();
        let get = |k: &str| shown.iter().find(|(key, _, _)| key == k).unwrap().clone();
        assert_eq!(get("redis_max_clients").1, json!(1));
        assert_eq!(get("redis_max_bulk").2, "env:MEMMESH_REDIS_MAX_BULK");
        assert_eq!(get("redis_max_inline").1, json!(d.max_inline));
    }

    #[test]
    fn durations_sizes_and_lists_parse_in_every_form() {
        let f = file("memory_quota = \"64MiB\"\nbootstrap = [\"a:1\", \"b:2\"]\n[tuning]\nkeep_alive = 1500\nidle_timeout = \"1m 30s\"\ncongestion = \"bbr\"\n");
        let s = Settings::merge(Layer::default(), Layer::default(), f, None);
        let c = s.node_config().unwrap();
        assert_eq!(c.memory_quota, 64 << 20);
        assert_eq!(c.bootstrap, vec!["a:1", "b:2"]);
        assert_eq!(c.tuning.keep_alive, Duration::from_millis(1500));
        assert_eq!(c.tuning.idle_timeout, Duration::from_secs(90));
        assert_eq!(c.tuning.congestion, CongestionControl::Bbr);
        let e = env(&[
            ("MEMMESH_BOOTSTRAP", "x:1, y:2"),
            ("MEMMESH_SECRET", "s3cret"),
        ]);
        let s = Settings::merge(Layer::default(), e, Layer::default(), None);
        let c = s.node_config().unwrap();
        assert_eq!(c.bootstrap, vec!["x:1", "y:2"]);
        assert_eq!(c.cluster_secret.as_deref(), Some(&b"s3cret"[..]));
        assert_eq!(parse_size("1.5k").unwrap(), 1500);
        assert!(parse_size("12 parsecs").is_err());
    }

    #[test]
    fn file_errors_name_the_file_the_line_and_the_key() {
        let e = file_err("name = \"a\"\nlisten_addr = \"x\"\n");
        assert!(
            e.starts_with("/etc/memmesh/test.toml:2: key listen_addr: unknown key"),
            "{e}"
        );
        let e = file_err("name = \"a\"\n\n[membership]\nprobe_period = true\n");
        assert!(
            e.starts_with(
                "/etc/memmesh/test.toml:4: key membership.probe_period: expected a duration"
            ),
            "{e}"
        );
        let e = file_err("[tuning]\nkeep_alive = \"soon\"\n");
        assert!(
            e.contains(":2: key tuning.keep_alive") && e.contains("not a duration"),
            "{e}"
        );
        let e = file_err("threads = -1\n");
        assert!(e.contains(":1: key threads: -1 is negative"), "{e}");
        let e = file_err("name = \"a\"\nthreads = \n");
        assert!(e.starts_with("/etc/memmesh/test.toml:2:"), "{e}");
        let e = file_err("[gossip]\nx = 1\n");
        assert!(e.contains(":1: key gossip: unknown key"), "{e}");
    }

    #[test]
    fn env_and_flag_errors_name_their_source() {
        let e = Layer::from_env(|n| (n == "MEMMESH_THREADS").then(|| "many".to_string()))
            .unwrap_err()
            .0;
        assert!(
            e.starts_with("environment variable MEMMESH_THREADS:"),
            "{e}"
        );
        let mut flags = Layer::default();
        let e = flags
            .set_assignment("membership.probe_period=fast")
            .unwrap_err()
            .0;
        assert!(e.starts_with("--set membership.probe_period:"), "{e}");
        let e = flags.set_assignment("nope=1").unwrap_err().0;
        assert!(e.contains("unknown key"), "{e}");
    }

    #[test]
    fn a_value_core_rejects_names_its_key_and_source() {
        let f = file("\nmax_message_size = 0\n");
        let s = Settings::merge(Layer::default(), Layer::default(), f, None);
        let e = s.node_config().unwrap_err().0;
        assert!(
            e.starts_with("max_message_size (from file:/etc/memmesh/test.toml:2)"),
            "{e}"
        );
    }

    #[test]
    fn secrets_are_redacted() {
        let e = env(&[
            ("MEMMESH_SECRET", "very-secret"),
            ("MEMMESH_REDIS_LISTEN", "127.0.0.1:0"),
            ("MEMMESH_REDIS_PASSWORD", "pw"),
        ]);
        let s = Settings::merge(Layer::default(), e, Layer::default(), None);
        let shown = format!("{:?}", s.show().unwrap());
        assert!(
            !shown.contains("very-secret") && !shown.contains("\"pw\""),
            "{shown}"
        );
        assert!(shown.contains("<redacted>"));
    }
}
