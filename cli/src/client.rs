//! How a CLI verb reaches a node (ADR 0023): a short-lived node, configured by
//! [`client_node_config`], joins the daemon over loopback (or the node at `--to`) and
//! makes admin calls on [`admin::CHANNEL`].

use std::path::PathBuf;

use anyhow::{anyhow, bail, Context, Result};
use memmesh::{Bytes, Node, NodeConfig, NodeId};
use serde_json::{json, Value as Json};

use crate::admin;
use crate::args::Target;
use crate::config::Settings;
use crate::daemon::DaemonFile;
use crate::output::Failed;

/// The configuration of the CLI's short-lived node: the cluster secret, `open` and the
/// transport and membership tuning of `settings`; everything else its own (a loopback
/// or wildcard ephemeral port, no mDNS, no bootstrap, no inbox, no Redis front, named
/// `memmesh-cli`, and the data dir `key_dir` if given, else none).
///
/// This is the one place that decides what a CLI node is: when node roles land, it sets
/// `role = Role::Client` here (a client owns no partitions and holds no replicas).
pub fn client_node_config(
    settings: &Settings,
    to_loopback: bool,
    key_dir: Option<PathBuf>,
) -> Result<NodeConfig> {
    let mut options = settings.options();
    options.name = Some(admin::CLIENT_NAME.into());
    options.listen = Some(
        if to_loopback {
            "127.0.0.1:0"
        } else {
            "0.0.0.0:0"
        }
        .into(),
    );
    // A client: it owns no partitions, holds no replicas and is never chosen for `Auto`
    // placement, so a CLI call moves no data (ADR 0024).
    options.role = Some(memmesh::Role::Client);
    options.mdns = Some(false);
    options.mdns_interfaces = None;
    options.bootstrap = Some(Vec::new());
    options.data_dir = key_dir;
    options.inbox_dir = None;
    options.redis_listen = None;
    options.redis_password = None;
    options.disk_quota = None;
    options.storage_passphrase = None;
    Ok(options.into_config()?)
}

/// Where to go and with which token.
pub struct Resolved {
    /// The address to dial.
    pub addr: String,
    /// The node id expected there, if known.
    pub id: Option<String>,
    /// The admin token, if known.
    pub token: Option<String>,
}

/// Resolves `--to` / the daemon file.
pub fn resolve(target: &Target, settings: &Settings) -> Result<Resolved> {
    let data_dir = target.data_dir.clone().or_else(|| settings.data_dir());
    let file = data_dir.as_deref().map(DaemonFile::read);
    match &target.to {
        Some(addr) => {
            let from_file = match file {
                Some(Ok(f)) if &f.addr == addr => Some(f),
                _ => None,
            };
            Ok(Resolved {
                addr: addr.clone(),
                id: from_file.as_ref().map(|f| f.id.clone()),
                token: target
                    .token
                    .clone()
                    .or_else(|| from_file.map(|f| f.token)),
            })
        }
        None => match file {
            Some(f) => {
                let f = f?;
                Ok(Resolved {
                    addr: f.addr,
                    id: Some(f.id),
                    token: target.token.clone().or(Some(f.token)),
                })
            }
            None => Err(crate::output::usage(
                "which node? pass --to ADDR, or --data-dir DIR (or set data_dir in the config) to use the daemon there",
            )),
        },
    }
}

/// A short-lived node connected to a target.
pub struct Conn {
    /// The CLI's node.
    pub node: Node,
    /// The target's id.
    pub peer: NodeId,
    token: Option<String>,
}

impl Conn {
    /// Starts the CLI node and connects to the target.
    pub async fn open(
        target: &Target,
        settings: &Settings,
        key_dir: Option<PathBuf>,
    ) -> Result<Conn> {
        let r = resolve(target, settings)?;
        let ip = memmesh::node::parse_addr(&r.addr)?;
        let config = client_node_config(settings, ip.ip().is_loopback(), key_dir)?;
        let node = Node::start(config).await?;
        let peer = match node.connect(&r.addr).await {
            Ok(p) => p,
            Err(e) => {
                let _ = node.shutdown().await;
                return Err(anyhow::Error::new(e).context(format!("connecting to {}", r.addr)));
            }
        };
        if let Some(id) = &r.id {
            if &peer.to_string() != id {
                let _ = node.shutdown().await;
                bail!(
                    "the node at {} is {}, not the daemon {} of the daemon file (a stale daemon.json?)",
                    r.addr,
                    peer,
                    id
                );
            }
        }
        Ok(Conn {
            node,
            peer,
            token: r.token,
        })
    }

    /// An admin call: `op` with the arguments of `args` (an object) and `body`; returns
    /// the reply's header and body, or the daemon's error.
    pub async fn call(&self, op: &str, args: Json, body: Bytes) -> Result<(Json, Bytes)> {
        let token = self.token.as_deref().ok_or_else(|| {
            anyhow!("no admin token for this node: pass --token (or MEMMESH_ADMIN_TOKEN), or --data-dir of its daemon")
        })?;
        let mut header = args;
        if let Some(m) = header.as_object_mut() {
            m.insert("op".into(), json!(op));
            m.insert("token".into(), json!(token));
        }
        let reply = self
            .node
            .channel(admin::CHANNEL)?
            .request(self.peer, admin::encode(&header, &body), None)
            .await
            .with_context(|| format!("admin call {op}"))?;
        let (h, body) = admin::decode(&reply)?;
        if h.get("ok").and_then(Json::as_bool) != Some(true) {
            let msg = h
                .get("error")
                .and_then(Json::as_str)
                .unwrap_or("the daemon failed");
            let kind = h.get("kind").and_then(Json::as_str).unwrap_or("Other");
            return Err(Failed {
                message: msg.to_string(),
                kind: kind.to_string(),
            }
            .into());
        }
        Ok((h, body))
    }
}

/// Opens a connection, runs `f`, and always shuts the CLI node down.
pub async fn with_conn<F, Fut, T>(
    target: &Target,
    settings: &Settings,
    key_dir: Option<PathBuf>,
    f: F,
) -> Result<T>
where
    F: FnOnce(std::sync::Arc<Conn>) -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let conn = std::sync::Arc::new(Conn::open(target, settings, key_dir).await?);
    let result = f(conn.clone()).await;
    let _ = conn.node.shutdown().await;
    result
}
