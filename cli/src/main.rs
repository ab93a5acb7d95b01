//! `memmesh`: run a node, or talk to one, from the command line.

use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use memmesh::{Bytes, Message, Node, NodeBuilder, Request};

#[derive(Parser)]
#[command(
    name = "memmesh",
    version,
    about = "A node of the memmesh peer-to-peer data mesh"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a node until interrupted: answers requests on `echo` and `peers`, and prints
    /// messages that arrive on `chat`.
    Node {
        #[command(flatten)]
        common: Common,
        /// Listen address.
        #[arg(long, default_value = "0.0.0.0:0")]
        listen: String,
        /// Node name shown to peers.
        #[arg(long)]
        name: Option<String>,
        /// Address of a node to join (repeatable).
        #[arg(long)]
        bootstrap: Vec<String>,
        /// Directory that keeps this node's identity across restarts.
        #[arg(long)]
        data_dir: Option<std::path::PathBuf>,
        /// Discover peers with multicast DNS.
        #[arg(long)]
        mdns: bool,
        /// Restrict mDNS to this network interface (repeatable; default: all).
        #[arg(long = "mdns-interface")]
        mdns_interfaces: Vec<String>,
        /// Accept offered transfers into this directory.
        #[arg(long)]
        inbox: Option<std::path::PathBuf>,
        /// Serve the cache to Redis clients on this TCP address (e.g. 127.0.0.1:6379).
        #[arg(long, value_name = "ADDR")]
        redis: Option<String>,
        /// Password Redis clients must AUTH with (needed off loopback; default: the
        /// MEMMESH_REDIS_PASSWORD environment variable).
        #[arg(long)]
        redis_password: Option<String>,
        /// Serve the HTTP API, /metrics and the dashboard on this TCP address (bearer
        /// token, needed off loopback: the MEMMESH_HTTP_TOKEN environment variable).
        #[arg(long, value_name = "ADDR")]
        http: Option<String>,
    },
    /// Send a request to a channel of the node at `--to` and print the reply.
    Request {
        #[command(flatten)]
        common: Common,
        /// Address of the node to ask.
        #[arg(long)]
        to: String,
        /// Channel name.
        #[arg(long, default_value = "echo")]
        channel: String,
        /// Deadline in seconds (more than 0, at most one day).
        #[arg(long, default_value = "10", value_parser = parse_timeout, allow_negative_numbers = true)]
        timeout: Duration,
        /// The request payload (UTF-8).
        message: String,
    },
    /// Send a message to a channel of the node at `--to`.
    Send {
        #[command(flatten)]
        common: Common,
        /// Address of the node to send to.
        #[arg(long)]
        to: String,
        /// Channel name.
        #[arg(long, default_value = "chat")]
        channel: String,
        /// The message (UTF-8).
        message: String,
    },
    /// Send a file to the node at `--to` (verified; run it again after an interruption to
    /// resume: keep the same `--data-dir` so the node id, and so the transfer id, stay).
    SendFile {
        #[command(flatten)]
        common: Common,
        /// Address of the node to send to (it needs an inbox or an offer handler).
        #[arg(long)]
        to: String,
        /// Directory keeping this sender's key.
        #[arg(long)]
        data_dir: Option<std::path::PathBuf>,
        /// The file.
        path: std::path::PathBuf,
    },
    /// Cluster secrets.
    Secret {
        #[command(subcommand)]
        command: SecretCommand,
    },
    /// Print the node id kept in a data directory (creating it if needed).
    Id {
        /// The data directory.
        #[arg(long)]
        data_dir: std::path::PathBuf,
    },
}

#[derive(Subcommand)]
enum SecretCommand {
    /// Print a new random cluster secret (32 random bytes, hex): give it to every node
    /// of the cluster with `--secret` or MEMMESH_SECRET.
    New,
}

#[derive(Args)]
struct Common {
    /// Cluster secret (or set MEMMESH_SECRET); `memmesh secret new` makes a strong one.
    /// Without one the node is in protected mode: loopback peers only.
    #[arg(long, env = "MEMMESH_SECRET", hide_env_values = true)]
    secret: Option<String>,
    /// Without a secret, talk to peers beyond loopback anyway, unauthenticated (anyone
    /// who can reach the node is a member).
    #[arg(long)]
    open: bool,
}

impl Common {
    fn builder(&self) -> NodeBuilder {
        let b = Node::builder().mdns(false).open(self.open);
        match &self.secret {
            Some(s) => b.cluster_secret(s),
            None => b,
        }
    }
}

/// Parses a deadline in seconds: a finite number above 0 and at most one day.
fn parse_timeout(text: &str) -> std::result::Result<Duration, String> {
    let secs: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    let max = memmesh::node::config::MAX_TIMEOUT;
    if !secs.is_finite() || secs <= 0.0 || secs > max.as_secs_f64() {
        return Err(format!(
            "the timeout must be more than 0 and at most {} seconds, got {text}",
            max.as_secs()
        ));
    }
    Duration::try_from_secs_f64(secs).map_err(|e| format!("{text}: {e}"))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("MEMMESH_LOG")
                .unwrap_or_else(|_| "memmesh=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Node {
            common,
            listen,
            name,
            bootstrap,
            data_dir,
            mdns,
            mdns_interfaces,
            inbox,
            redis,
            redis_password,
            http,
        } => {
            let mut b = common
                .builder()
                .listen(listen)
                .bootstrap(bootstrap)
                .mdns(mdns);
            if !mdns_interfaces.is_empty() {
                b = b.mdns_interfaces(mdns_interfaces);
            }
            if let Some(n) = name {
                b = b.name(n);
            }
            if let Some(d) = data_dir {
                b = b.data_dir(d);
            }
            if let Some(dir) = inbox {
                b = b.inbox_dir(dir);
            }
            if let Some(addr) = redis {
                b = b.redis_listen(addr);
                let env = std::env::var("MEMMESH_REDIS_PASSWORD").ok();
                if let Some(p) = redis_password.or(env.filter(|p| !p.is_empty())) {
                    b = b.redis_password(p);
                }
            }
            if let Some(addr) = http {
                b = b.http_listen(addr);
                if let Some(t) = std::env::var("MEMMESH_HTTP_TOKEN")
                    .ok()
                    .filter(|t| !t.is_empty())
                {
                    b = b.http_token(t);
                }
            }
            run_node(b.start().await?).await
        }
        Command::SendFile {
            common,
            to,
            data_dir,
            path,
        } => {
            let builder = |b: memmesh::NodeBuilder| match &data_dir {
                Some(d) => b.data_dir(d),
                None => b,
            };
            with_peer_using(&common, &to, builder, |node, peer| async move {
                let result = node
                    .transfer()?
                    .send(memmesh::transfer::Source::Path(path), &[peer])
                    .await?
                    .remove(0);
                if let Some(e) = result.error {
                    return Err(e.into());
                }
                println!(
                    "sent {} bytes ({} streamed) to {}: {}",
                    result.bytes,
                    result.sent,
                    peer.short(),
                    result.hash.unwrap_or_default()
                );
                Ok(())
            })
            .await
        }
        Command::Request {
            common,
            to,
            channel,
            timeout,
            message,
        } => {
            with_peer(&common, &to, |node, peer| async move {
                let reply = node
                    .channel(&channel)?
                    .request(peer, message, Some(timeout))
                    .await?;
                println!("{}", String::from_utf8_lossy(&reply));
                Ok(())
            })
            .await
        }
        Command::Send {
            common,
            to,
            channel,
            message,
        } => {
            with_peer(&common, &to, |node, peer| async move {
                node.channel(&channel)?.send(message, peer).await?;
                println!("sent to {}", peer.short());
                Ok(())
            })
            .await
        }
        Command::Secret {
            command: SecretCommand::New,
        } => {
            println!("{}", memmesh::transport::auth::generate_secret()?);
            Ok(())
        }
        Command::Id { data_dir } => {
            println!("{}", memmesh::Keypair::load_or_create(&data_dir)?.node_id());
            Ok(())
        }
    }
}

/// Starts a short-lived node, connects to `to`, runs `f`, and always shuts the node down.
async fn with_peer<F, Fut>(common: &Common, to: &str, f: F) -> Result<()>
where
    F: FnOnce(Node, memmesh::NodeId) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    with_peer_using(common, to, |b| b, f).await
}

/// [`with_peer`], the node's builder adjusted by `configure` first.
async fn with_peer_using<F, Fut>(
    common: &Common,
    to: &str,
    configure: impl FnOnce(memmesh::NodeBuilder) -> memmesh::NodeBuilder,
    f: F,
) -> Result<()>
where
    F: FnOnce(Node, memmesh::NodeId) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    // Reach a loopback peer from loopback, so nothing goes through another interface.
    let target = memmesh::node::parse_addr(to)?;
    let listen = if target.ip().is_loopback() {
        "127.0.0.1:0"
    } else {
        "0.0.0.0:0"
    };
    let node = configure(common.builder().name("memmesh-cli").listen(listen))
        .start()
        .await?;
    let result = async {
        let peer = node.connect(to).await.context("connecting")?;
        f(node.clone(), peer).await
    }
    .await;
    node.shutdown().await?;
    result
}

async fn run_node(node: Node) -> Result<()> {
    println!(
        "node {} ({}) listening on {}",
        node.name(),
        node.id(),
        node.addr()
    );
    if let Some(addr) = node.redis_addr() {
        println!("Redis protocol on {addr}");
    }
    if let Some(addr) = node.http_addr() {
        println!("HTTP API and dashboard on http://{addr}/");
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
        println!(
            "[chat] {}: {}",
            m.from.short(),
            String::from_utf8_lossy(&m.data)
        );
    });
    wait_for_signal().await;
    node.shutdown().await?;
    println!("node {} stopped", node.name());
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
