//! Partial node options: every field optional, applied onto [`NodeConfig::default()`].
//!
//! This is what each binding converts its native options (a Python keyword argument, a
//! JS options object, a UniFFI record) into, so that defaults, overrides and validation
//! are written once, here and in [`NodeConfig::validate`], rather than once per language.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::identity::NodeId;
use crate::membership::MembershipConfig;
use crate::node::config::{ConfigError, NodeConfig, RespLimits};
use crate::peer::Role;
use crate::transport::{CongestionControl, TransportTuning};

/// Node options as given by a user: `None` keeps the default of [`NodeConfig`]. Each
/// field is documented on the [`NodeConfig`] field of the same name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeOptions {
    /// [`NodeConfig::name`].
    pub name: Option<String>,
    /// [`NodeConfig::listen`].
    pub listen: Option<String>,
    /// [`NodeConfig::cluster_secret`].
    pub cluster_secret: Option<Vec<u8>>,
    /// [`NodeConfig::open`].
    pub open: Option<bool>,
    /// [`NodeConfig::bootstrap`].
    pub bootstrap: Option<Vec<String>>,
    /// [`NodeConfig::devices`] (bindings parse them with [`node_ids`]).
    pub devices: Option<Vec<NodeId>>,
    /// [`NodeConfig::trusted_peers`] (bindings parse them with [`node_ids`]).
    pub trusted_peers: Option<Vec<NodeId>>,
    /// [`NodeConfig::serve_commons`].
    pub serve_commons: Option<bool>,
    /// [`NodeConfig::mdns`].
    pub mdns: Option<bool>,
    /// [`NodeConfig::mdns_interfaces`].
    pub mdns_interfaces: Option<Vec<String>>,
    /// [`NodeConfig::memory_quota`].
    pub memory_quota: Option<u64>,
    /// [`NodeConfig::data_dir`].
    pub data_dir: Option<PathBuf>,
    /// [`NodeConfig::inbox_dir`].
    pub inbox_dir: Option<PathBuf>,
    /// [`NodeConfig::disk_quota`].
    pub disk_quota: Option<u64>,
    /// [`NodeConfig::storage_passphrase`].
    pub storage_passphrase: Option<String>,
    /// [`NodeConfig::known_peers_ttl`].
    pub known_peers_ttl: Option<Duration>,
    /// [`NodeConfig::redis_listen`].
    pub redis_listen: Option<String>,
    /// [`NodeConfig::redis_password`].
    pub redis_password: Option<String>,
    /// [`NodeConfig::redis_allow_flush`].
    pub redis_allow_flush: Option<bool>,
    /// [`NodeConfig::role`] (bindings parse it from `"member"` or `"client"`:
    /// [`Role`]'s `FromStr`).
    pub role: Option<Role>,
    /// [`NodeConfig::http_listen`].
    pub http_listen: Option<String>,
    /// [`NodeConfig::http_token`].
    pub http_token: Option<String>,
    /// [`NodeConfig::threads`].
    pub threads: Option<usize>,
    /// [`NodeConfig::max_message_size`].
    pub max_message_size: Option<usize>,
    /// [`NodeConfig::docs_max_bytes`].
    pub docs_max_bytes: Option<u64>,
    /// [`NodeConfig::request_timeout`].
    pub request_timeout: Option<Duration>,
    /// [`NodeConfig::send_timeout`].
    pub send_timeout: Option<Duration>,
    /// [`NodeConfig::connect_timeout`].
    pub connect_timeout: Option<Duration>,
    /// [`NodeConfig::channel_queue`].
    pub channel_queue: Option<usize>,
    /// [`NodeConfig::membership`], field by field.
    pub membership: MembershipOptions,
    /// [`NodeConfig::tuning`], field by field.
    pub tuning: TuningOptions,
    /// [`NodeConfig::redis_limits`], field by field.
    pub redis_limits: RedisLimitsOptions,
}

/// Redis front limit overrides; `None` keeps the default of [`RespLimits`], whose fields
/// of the same names document each one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedisLimitsOptions {
    /// [`RespLimits::max_bulk`].
    pub max_bulk: Option<usize>,
    /// [`RespLimits::max_array`] (the most arguments of one command).
    pub max_array: Option<usize>,
    /// [`RespLimits::max_inline`].
    pub max_inline: Option<usize>,
    /// [`RespLimits::max_pending`].
    pub max_pending: Option<usize>,
    /// [`RespLimits::max_clients`].
    pub max_clients: Option<usize>,
    /// [`RespLimits::max_clients_per_ip`].
    pub max_clients_per_ip: Option<usize>,
    /// [`RespLimits::frame_timeout`].
    pub frame_timeout: Option<Duration>,
    /// [`RespLimits::max_output`] (the most bytes waiting for one subscriber).
    pub max_output: Option<usize>,
}

/// Failure-detection and membership timing overrides; `None` keeps the default of
/// [`MembershipConfig`], whose fields of the same names document each one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MembershipOptions {
    /// [`MembershipConfig::probe_period`].
    pub probe_period: Option<Duration>,
    /// [`MembershipConfig::probe_rtt`].
    pub probe_rtt: Option<Duration>,
    /// [`MembershipConfig::suspect_timeout`].
    pub suspect_timeout: Option<Duration>,
    /// [`MembershipConfig::down_grace`].
    pub down_grace: Option<Duration>,
    /// [`MembershipConfig::forget_after`].
    pub forget_after: Option<Duration>,
    /// [`MembershipConfig::full_sync_interval`].
    pub full_sync_interval: Option<Duration>,
    /// [`MembershipConfig::rejoin_interval`].
    pub rejoin_interval: Option<Duration>,
}

/// QUIC transport tuning overrides; `None` keeps the default of [`TransportTuning`],
/// whose fields of the same names document each one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TuningOptions {
    /// [`TransportTuning::mtu_upper_bound`].
    pub mtu_upper_bound: Option<u16>,
    /// [`TransportTuning::segmentation_offload`].
    pub segmentation_offload: Option<bool>,
    /// [`TransportTuning::stream_receive_window`].
    pub stream_receive_window: Option<u32>,
    /// [`TransportTuning::receive_window`].
    pub receive_window: Option<u32>,
    /// [`TransportTuning::send_window`].
    pub send_window: Option<u64>,
    /// [`TransportTuning::socket_buffer`].
    pub socket_buffer: Option<usize>,
    /// [`TransportTuning::max_bidi_streams`].
    pub max_bidi_streams: Option<u32>,
    /// [`TransportTuning::max_uni_streams`].
    pub max_uni_streams: Option<u32>,
    /// [`TransportTuning::keep_alive`].
    pub keep_alive: Option<Duration>,
    /// [`TransportTuning::idle_timeout`].
    pub idle_timeout: Option<Duration>,
    /// [`TransportTuning::congestion`] (its text form: `"cubic"`, `"newreno"`, `"bbr"`).
    pub congestion: Option<CongestionControl>,
}

/// Parses the node ids of the option `option` (`devices`, `trusted_peers`): a bad id is
/// `InvalidInput` naming the option and the id.
pub fn node_ids<S: AsRef<str>>(option: &'static str, ids: &[S]) -> Result<Vec<NodeId>> {
    ids.iter()
        .map(|s| {
            s.as_ref().parse::<NodeId>().map_err(|e| {
                ConfigError::BadNodeId {
                    option,
                    why: format!("{:?} is not a node id ({})", s.as_ref(), e.message()),
                }
                .into()
            })
        })
        .collect()
}

/// Replaces `$dst` with the value of `$src` when it is `Some`.
macro_rules! set {
    ($dst:expr, $src:expr) => {
        if let Some(v) = $src {
            $dst = v;
        }
    };
}

/// Replaces an optional `$dst` with `$src` when it is `Some`.
macro_rules! set_some {
    ($dst:expr, $src:expr) => {
        if $src.is_some() {
            $dst = $src;
        }
    };
}

impl NodeOptions {
    /// Writes every option that is set onto `config`, keeping the others.
    pub fn apply(self, config: &mut NodeConfig) {
        set_some!(config.name, self.name);
        set!(config.listen, self.listen);
        set_some!(config.cluster_secret, self.cluster_secret);
        set!(config.open, self.open);
        set!(config.bootstrap, self.bootstrap);
        set!(config.devices, self.devices);
        set!(config.trusted_peers, self.trusted_peers);
        set!(config.serve_commons, self.serve_commons);
        set!(config.mdns, self.mdns);
        set_some!(config.mdns_interfaces, self.mdns_interfaces);
        set!(config.memory_quota, self.memory_quota);
        set_some!(config.data_dir, self.data_dir);
        set_some!(config.inbox_dir, self.inbox_dir);
        set_some!(config.disk_quota, self.disk_quota);
        set_some!(config.storage_passphrase, self.storage_passphrase);
        set!(config.known_peers_ttl, self.known_peers_ttl);
        set_some!(config.redis_listen, self.redis_listen);
        set_some!(config.redis_password, self.redis_password);
        set!(config.redis_allow_flush, self.redis_allow_flush);
        set!(config.role, self.role);
        set_some!(config.http_listen, self.http_listen);
        set_some!(config.http_token, self.http_token);
        set!(config.threads, self.threads);
        set!(config.max_message_size, self.max_message_size);
        set!(config.docs_max_bytes, self.docs_max_bytes);
        set!(config.request_timeout, self.request_timeout);
        set!(config.send_timeout, self.send_timeout);
        set!(config.connect_timeout, self.connect_timeout);
        set!(config.channel_queue, self.channel_queue);
        self.membership.apply(&mut config.membership);
        self.tuning.apply(&mut config.tuning);
        self.redis_limits.apply(&mut config.redis_limits);
    }

    /// The default configuration with these options applied, validated
    /// ([`NodeConfig::validate`]): a bad value is `InvalidInput` naming the option.
    pub fn into_config(self) -> Result<NodeConfig> {
        let mut config = NodeConfig::default();
        self.apply(&mut config);
        config.validate()?;
        Ok(config)
    }
}

impl MembershipOptions {
    /// Writes every option that is set onto `config`, keeping the others.
    pub fn apply(self, config: &mut MembershipConfig) {
        set!(config.probe_period, self.probe_period);
        set!(config.probe_rtt, self.probe_rtt);
        set!(config.suspect_timeout, self.suspect_timeout);
        set!(config.down_grace, self.down_grace);
        set!(config.forget_after, self.forget_after);
        set!(config.full_sync_interval, self.full_sync_interval);
        set!(config.rejoin_interval, self.rejoin_interval);
    }
}

impl TuningOptions {
    /// Writes every option that is set onto `tuning`, keeping the others.
    pub fn apply(self, tuning: &mut TransportTuning) {
        set!(tuning.mtu_upper_bound, self.mtu_upper_bound);
        set!(tuning.segmentation_offload, self.segmentation_offload);
        set!(tuning.stream_receive_window, self.stream_receive_window);
        set!(tuning.receive_window, self.receive_window);
        set!(tuning.send_window, self.send_window);
        set!(tuning.socket_buffer, self.socket_buffer);
        set!(tuning.max_bidi_streams, self.max_bidi_streams);
        set!(tuning.max_uni_streams, self.max_uni_streams);
        set!(tuning.keep_alive, self.keep_alive);
        set!(tuning.idle_timeout, self.idle_timeout);
        set!(tuning.congestion, self.congestion);
    }
}

impl RedisLimitsOptions {
    /// Writes every option that is set onto `limits`, keeping the others.
    pub fn apply(self, limits: &mut RespLimits) {
        set!(limits.max_bulk, self.max_bulk);
        set!(limits.max_array, self.max_array);
        set!(limits.max_inline, self.max_inline);
        set!(limits.max_pending, self.max_pending);
        set!(limits.max_clients, self.max_clients);
        set!(limits.max_clients_per_ip, self.max_clients_per_ip);
        set!(limits.frame_timeout, self.frame_timeout);
        set!(limits.max_output, self.max_output);
    }
}

impl FromStr for CongestionControl {
    type Err = Error;

    /// `"cubic"`, `"newreno"` or `"bbr"`; anything else is `InvalidInput`.
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "cubic" => Ok(CongestionControl::Cubic),
            "newreno" => Ok(CongestionControl::NewReno),
            "bbr" => Ok(CongestionControl::Bbr),
            other => Err(ConfigError::Congestion(other.to_string()).into()),
        }
    }
}

impl fmt::Display for CongestionControl {
    /// The text [`CongestionControl::from_str`] parses back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CongestionControl::Cubic => "cubic",
            CongestionControl::NewReno => "newreno",
            CongestionControl::Bbr => "bbr",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn trust_lists_are_parsed_and_validated() {
        let a = crate::identity::Keypair::generate().unwrap().node_id();
        let b = crate::identity::Keypair::generate().unwrap().node_id();
        let ids = node_ids("devices", &[a.to_string()]).unwrap();
        assert_eq!(ids, vec![a]);
        let e = node_ids("trusted_peers", &["not-an-id"]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(
            e.message().starts_with("trusted_peers: \"not-an-id\""),
            "{e}"
        );
        let c = NodeOptions {
            devices: Some(vec![a]),
            trusted_peers: Some(vec![b]),
            serve_commons: Some(true),
            ..NodeOptions::default()
        }
        .into_config()
        .unwrap();
        assert_eq!(
            (c.devices, c.trusted_peers, c.serve_commons),
            (vec![a], vec![b], true)
        );
        let e = NodeOptions {
            devices: Some(vec![a]),
            trusted_peers: Some(vec![a]),
            ..NodeOptions::default()
        }
        .into_config()
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(
            e.message().contains("both devices and trusted_peers"),
            "{e}"
        );
    }

    #[test]
    fn no_options_is_the_default_config() {
        let c = NodeOptions::default().into_config().unwrap();
        let d = NodeConfig::default();
        assert_eq!(c.listen, d.listen);
        assert_eq!(c.name, d.name);
        assert_eq!(c.threads, d.threads);
        assert_eq!(c.request_timeout, d.request_timeout);
        assert_eq!(c.membership, d.membership);
        assert_eq!(c.tuning, d.tuning);
        assert_eq!(c.open, d.open);
        assert_eq!(c.mdns, d.mdns);
        assert_eq!(c.known_peers_ttl, d.known_peers_ttl);
    }

    #[test]
    fn set_options_override_and_the_rest_keep_their_defaults() {
        let c = NodeOptions {
            name: Some("n".into()),
            cluster_secret: Some(b"s".to_vec()),
            threads: Some(1),
            inbox_dir: Some("/tmp/in".into()),
            membership: MembershipOptions {
                suspect_timeout: Some(Duration::from_secs(3)),
                ..MembershipOptions::default()
            },
            tuning: TuningOptions {
                keep_alive: Some(Duration::from_secs(1)),
                congestion: Some(CongestionControl::Bbr),
                ..TuningOptions::default()
            },
            ..NodeOptions::default()
        }
        .into_config()
        .unwrap();
        let d = NodeConfig::default();
        assert_eq!(c.name.as_deref(), Some("n"));
        assert_eq!(c.cluster_secret.as_deref(), Some(&b"s"[..]));
        assert_eq!(c.threads, 1);
        assert_eq!(c.inbox_dir, Some(PathBuf::from("/tmp/in")));
        assert_eq!(c.listen, d.listen);
        assert_eq!(c.membership.suspect_timeout, Duration::from_secs(3));
        assert_eq!(c.membership.probe_period, d.membership.probe_period);
        assert_eq!(c.tuning.keep_alive, Duration::from_secs(1));
        assert_eq!(c.tuning.congestion, CongestionControl::Bbr);
        assert_eq!(c.tuning.idle_timeout, d.tuning.idle_timeout);
    }

    #[test]
    fn redis_limits_override_field_by_field() {
        let c = NodeOptions {
            redis_limits: RedisLimitsOptions {
                max_clients: Some(1),
                max_output: Some(4096),
                frame_timeout: Some(Duration::from_secs(2)),
                ..RedisLimitsOptions::default()
            },
            ..NodeOptions::default()
        }
        .into_config()
        .unwrap();
        let d = RespLimits::default();
        assert_eq!(c.redis_limits.max_clients, 1);
        assert_eq!(c.redis_limits.max_output, 4096);
        assert_eq!(c.redis_limits.frame_timeout, Duration::from_secs(2));
        assert_eq!(c.redis_limits.max_bulk, d.max_bulk);
        assert_eq!(c.redis_limits.max_clients_per_ip, d.max_clients_per_ip);
    }

    #[test]
    fn bad_values_are_invalid_input_naming_the_option() {
        let cases = [
            NodeOptions {
                threads: Some(0),
                ..NodeOptions::default()
            },
            NodeOptions {
                membership: MembershipOptions {
                    probe_rtt: Some(Duration::ZERO),
                    ..MembershipOptions::default()
                },
                ..NodeOptions::default()
            },
            NodeOptions {
                tuning: TuningOptions {
                    idle_timeout: Some(Duration::from_secs(2 * 24 * 3600)),
                    ..TuningOptions::default()
                },
                ..NodeOptions::default()
            },
            NodeOptions {
                known_peers_ttl: Some(Duration::from_secs(400 * 24 * 3600)),
                ..NodeOptions::default()
            },
        ];
        for (o, what) in
            cases
                .into_iter()
                .zip(["threads", "probe_rtt", "idle_timeout", "known_peers_ttl"])
        {
            let e = o.into_config().unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{what}");
            assert!(e.message().contains(what), "{what}: {}", e.message());
        }
    }

    #[test]
    fn congestion_controllers_parse_and_print() {
        for c in [
            CongestionControl::Cubic,
            CongestionControl::NewReno,
            CongestionControl::Bbr,
        ] {
            assert_eq!(c.to_string().parse::<CongestionControl>().unwrap(), c);
        }
        let e = "reno".parse::<CongestionControl>().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.message().contains("congestion"));
    }
}
