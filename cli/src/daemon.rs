//! `memmesh node`: the daemon. Runs until SIGINT/SIGTERM, then leaves the cluster and
//! shuts down ([`Node::shutdown`]: a farewell to the members, then every task ends).
//! Tells systemd it is ready (`sd_notify` READY=1) and writes the daemon file.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use memmesh::{Bytes, Message, Node, NodeConfig, Request};
use serde::{Deserialize, Serialize};

use crate::admin;

/// Prints a line on stdout, ignoring a closed stdout (a supervisor that stopped reading
/// must not make the daemon panic on its way out).
macro_rules! say {
    ($($arg:tt)*) => {{
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, $($arg)*);
        let _ = out.flush();
    }};
}

/// The daemon file's name in the data dir.
pub const DAEMON_FILE: &str = "daemon.json";

/// What the daemon file holds: how local CLI calls reach the daemon.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DaemonFile {
    /// The daemon's QUIC address.
    pub addr: String,
    /// Its node id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its process id.
    pub pid: u32,
    /// The admin token (the file is mode 0600).
    pub token: String,
}

impl DaemonFile {
    /// Reads the daemon file of `data_dir`.
    pub fn read(data_dir: &Path) -> Result<DaemonFile> {
        let path = data_dir.join(DAEMON_FILE);
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "no daemon found: cannot read {} (start one with `memmesh node --data-dir {}`, or pass --to ADDR)",
                path.display(),
                data_dir.display()
            )
        })?;
        let file: DaemonFile = serde_json::from_str(&text)
            .with_context(|| format!("{} is damaged", path.display()))?;
        if !process_exists(file.pid) {
            anyhow::bail!(
                "the daemon of {} (pid {}) is not running: {} is stale (the daemon was killed); start it again",
                data_dir.display(),
                file.pid,
                path.display()
            );
        }
        Ok(file)
    }

    /// Writes it durably (a temporary file, fsynced, renamed), readable by its owner only.
    fn write(&self, data_dir: &Path) -> Result<PathBuf> {
        let path = data_dir.join(DAEMON_FILE);
        let tmp = data_dir.join(format!(".{DAEMON_FILE}.tmp"));
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts
            .open(&tmp)
            .with_context(|| format!("writing {}", tmp.display()))?;
        f.write_all(&serde_json::to_vec_pretty(self)?)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        if let Ok(dir) = std::fs::File::open(data_dir) {
            let _ = dir.sync_all();
        }
        Ok(path)
    }
}

/// Whether a process with this id exists (always true where that cannot be asked).
fn process_exists(pid: u32) -> bool {
    #[cfg(unix)]
    {
        let Ok(pid) = libc::pid_t::try_from(pid) else {
            return false;
        };
        // Signal 0 checks existence only; EPERM means it exists (another user's).
        let r = unsafe { libc::kill(pid, 0) };
        r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        true
    }
}

/// Runs the daemon with `config` until a signal.
pub async fn run(config: NodeConfig, json: bool) -> Result<()> {
    let node = Node::start(config).await?;
    let result = serve(&node, json).await;
    node.shutdown().await?;
    result?;
    if !json {
        say!("node {} stopped", node.name());
    }
    Ok(())
}

async fn serve(node: &Node, json: bool) -> Result<()> {
    let signals = Signals::install();
    if json {
        say!(
            "{}",
            serde_json::json!({"event": "listening", "name": node.name(), "id": node.id().to_string(),
                               "addr": node.addr().to_string(),
                               "redis": node.redis_addr().map(|a| a.to_string()),
                               "http": node.http_addr().map(|a| a.to_string())})
        );
    } else {
        say!(
            "node {} ({}) listening on {}",
            node.name(),
            node.id(),
            node.addr()
        );
        if let Some(addr) = node.redis_addr() {
            say!("Redis protocol on {addr}");
        }
        if let Some(addr) = node.http_addr() {
            say!("HTTP API and dashboard on http://{addr}/");
        }
    }
    node.channel("echo")?
        .on_request(|req: Request| async move { Ok(req.data) });
    let n = node.clone();
    node.channel("peers")?.on_request(move |_req: Request| {
        let text = n
            .peers()
            .iter()
            .map(|p| {
                format!(
                    "{} {} {} {:?}",
                    p.name,
                    p.id.short(),
                    p.state.as_str(),
                    p.addrs
                )
            })
            .collect::<Vec<_>>()
            .join("\n");
        async move { Ok(Bytes::from(text)) }
    });
    node.channel("chat")?.on_message(|m: Message| async move {
        say!(
            "[chat] {}: {}",
            m.from.short(),
            String::from_utf8_lossy(&m.data)
        );
    });

    let token = memmesh::transport::auth::generate_secret()?;
    let data_dir = node.config().data_dir.clone();
    let spool = data_dir.as_ref().map(|d| d.join("cli-spool"));
    let server = admin::Server::start(node, token.clone(), spool)?;
    let file = match &data_dir {
        Some(d) => Some(
            DaemonFile {
                addr: loopback_addr(node.addr()),
                id: node.id().to_string(),
                name: node.name().to_string(),
                pid: std::process::id(),
                token,
            }
            .write(d)?,
        ),
        None => None,
    };
    notify_ready();
    signals.wait().await;
    tracing::info!("signal received: leaving the cluster");
    if let Some(f) = file {
        let _ = std::fs::remove_file(f);
    }
    server.close();
    Ok(())
}

/// The address local clients dial: loopback when the node listens on every interface.
fn loopback_addr(addr: std::net::SocketAddr) -> String {
    if addr.ip().is_unspecified() {
        let ip: std::net::IpAddr = if addr.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        };
        std::net::SocketAddr::new(ip, addr.port()).to_string()
    } else {
        addr.to_string()
    }
}

/// Tells systemd the service is ready (`READY=1` to `$NOTIFY_SOCKET`), when it asked.
fn notify_ready() {
    #[cfg(unix)]
    {
        let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
            return;
        };
        let msg = format!("READY=1\nMAINPID={}\n", std::process::id());
        if let Err(e) = send_notify(&path, msg.as_bytes()) {
            tracing::warn!("sd_notify failed: {e}");
        }
    }
}

#[cfg(unix)]
fn send_notify(path: &std::ffi::OsStr, msg: &[u8]) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::net::UnixDatagram;
    let sock = UnixDatagram::unbound()?;
    let bytes = path.as_bytes();
    if let Some(name) = bytes.strip_prefix(b"@") {
        // An abstract socket (Linux).
        #[cfg(target_os = "linux")]
        {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            sock.send_to_addr(msg, &addr)?;
            return Ok(());
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = name;
            return Err(std::io::Error::other("abstract sockets are Linux-only"));
        }
    }
    sock.send_to(msg, Path::new(path))?;
    Ok(())
}

/// SIGINT and SIGTERM handlers, installed before the daemon says it is ready (a signal
/// arriving between "ready" and the wait would otherwise kill it without a goodbye).
pub struct Signals {
    #[cfg(unix)]
    streams: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl Signals {
    /// Installs the handlers.
    pub fn install() -> Signals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let streams = match (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            ) {
                (Ok(i), Ok(t)) => Some((i, t)),
                _ => None,
            };
            Signals { streams }
        }
        #[cfg(not(unix))]
        Signals {}
    }

    /// Waits for SIGINT or SIGTERM.
    pub async fn wait(self) {
        #[cfg(unix)]
        if let Some((mut int, mut term)) = self.streams {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Waits for SIGINT or SIGTERM (handlers installed now).
pub async fn wait_for_signal() {
    Signals::install().wait().await
}
