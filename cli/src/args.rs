//! The command line: verbs and their flags (clap).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// The whole command line.
#[derive(Parser)]
#[command(
    name = "memmesh",
    version = concat!(env!("CARGO_PKG_VERSION"), " (", env!("MEMMESH_GIT_COMMIT"), ")"),
    about = "A node of the memmesh peer-to-peer data mesh",
    after_help = "Exit codes: 0 ok, 1 the operation failed, 2 bad usage or configuration."
)]
pub struct Cli {
    /// Flags every verb takes.
    #[command(flatten)]
    pub common: Common,
    /// The verb.
    #[command(subcommand)]
    pub command: Command,
}

/// Configuration sources shared by every verb that starts a node.
#[derive(Args, Clone, Default)]
pub struct Common {
    /// Config file (TOML; default: $MEMMESH_CONFIG, else ~/.config/memmesh/config.toml
    /// if it exists).
    #[arg(long, value_name = "PATH", global = true)]
    pub config: Option<PathBuf>,
    /// Set any configuration key (repeatable): `--set membership.probe_period=500ms`.
    #[arg(long = "set", value_name = "KEY=VALUE", global = true)]
    pub set: Vec<String>,
    /// Cluster secret (or MEMMESH_SECRET, or `cluster_secret` in the config file);
    /// `memmesh secret new` makes a strong one. Without one the node is in protected
    /// mode: loopback peers only.
    #[arg(long, global = true)]
    pub secret: Option<String>,
    /// Without a secret, talk to peers beyond loopback anyway, unauthenticated.
    #[arg(long, global = true)]
    pub open: bool,
    /// Print machine-readable JSON on stdout.
    #[arg(long, global = true)]
    pub json: bool,
}

/// How a client verb reaches the daemon.
#[derive(Args, Clone, Default)]
pub struct Target {
    /// Address of the node to talk to (default: the daemon of the data dir, found by
    /// its daemon.json).
    #[arg(long, value_name = "ADDR", global = true)]
    pub to: Option<String>,
    /// The daemon's data dir (default: `data_dir` of the configuration).
    #[arg(long, value_name = "DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// The admin token of the node at `--to` (default: MEMMESH_ADMIN_TOKEN, else the
    /// daemon file's).
    #[arg(
        long,
        env = "MEMMESH_ADMIN_TOKEN",
        hide_env_values = true,
        global = true
    )]
    pub token: Option<String>,
}

/// The verbs.
#[derive(Subcommand)]
pub enum Command {
    /// Run a node until SIGINT/SIGTERM: the daemon. Answers `echo` and `peers` requests,
    /// prints messages arriving on `chat`, and serves the CLI's admin calls.
    Node(NodeArgs),
    /// The effective configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// The daemon's peers.
    Peers(Target),
    /// The cluster's leader, as the daemon sees it.
    Leader(Target),
    /// Drain the daemon: it keeps serving reads but stops being a placement target and
    /// hands its cache partitions and files off; waits until it may be stopped.
    Drain {
        #[command(flatten)]
        target: Target,
        /// Start draining and print the status without waiting.
        #[arg(long)]
        no_wait: bool,
    },
    /// Store a block (a file, or `-` for stdin) in RAM on the mesh; prints its id.
    Store {
        #[command(flatten)]
        target: Target,
        /// Where: `auto` (the peer with most free quota), `local` (the daemon) or a node id.
        #[arg(long, default_value = "auto")]
        placement: String,
        /// The file, or `-`.
        file: String,
    },
    /// Load a block by id.
    Load {
        #[command(flatten)]
        target: Target,
        /// The block id.
        id: String,
        /// Write it to this file (default: stdout).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Free a block.
    Free {
        #[command(flatten)]
        target: Target,
        /// The block id.
        id: String,
    },
    /// The replicated cache.
    Cache {
        #[command(flatten)]
        target: Target,
        /// The bucket.
        #[arg(long, default_value = "default", global = true)]
        bucket: String,
        #[command(subcommand)]
        command: CacheCommand,
    },
    /// The durable files store.
    Files {
        #[command(flatten)]
        target: Target,
        #[command(subcommand)]
        command: FilesCommand,
    },
    /// Documents (JSON CRDTs that converge across nodes).
    Docs {
        #[command(flatten)]
        target: Target,
        #[command(subcommand)]
        command: DocsCommand,
    },
    /// Send a request to a channel of a node and print the reply.
    Request {
        #[command(flatten)]
        target: Target,
        /// Channel name.
        #[arg(long, default_value = "echo")]
        channel: String,
        /// Deadline in seconds (more than 0, at most one day).
        #[arg(long, default_value = "10", value_parser = parse_timeout, allow_negative_numbers = true)]
        timeout: Duration,
        /// The request payload (UTF-8).
        message: String,
    },
    /// Send a message to a channel of a node.
    Send {
        #[command(flatten)]
        target: Target,
        /// Channel name.
        #[arg(long, default_value = "chat")]
        channel: String,
        /// The message (UTF-8).
        message: String,
    },
    /// Join a node and print the messages arriving on a channel until interrupted.
    Listen {
        #[command(flatten)]
        target: Target,
        /// Channel name.
        #[arg(long, default_value = "chat")]
        channel: String,
    },
    /// Send a file to the node at `--to` (verified; run it again after an interruption to
    /// resume: keep the same `--data-dir` so the node id, and so the transfer id, stay).
    SendFile {
        /// Address of the node to send to (it needs an inbox or an offer handler).
        #[arg(long)]
        to: String,
        /// Directory keeping this sender's key.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// The file.
        path: PathBuf,
    },
    /// Fetch content a node published, or a block it holds, into a file (verified,
    /// resumable).
    Fetch {
        /// Address of the node that has it.
        #[arg(long)]
        to: String,
        /// The published id or block id.
        id: String,
        /// The file to write (default: the id, in the current directory; an existing
        /// file is never replaced).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Install, remove or inspect memmesh as a system service.
    Service {
        #[command(subcommand)]
        command: ServiceCommand,
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
        data_dir: PathBuf,
    },
}

/// `memmesh node`.
#[derive(Args)]
pub struct NodeArgs {
    #[command(flatten)]
    pub flags: NodeFlags,
}

/// The flags of node options (each also a config key: see `memmesh config show`).
#[derive(Args, Clone, Default)]
pub struct NodeFlags {
    /// Listen address (key `listen`).
    #[arg(long)]
    pub listen: Option<String>,
    /// Node name shown to peers (key `name`).
    #[arg(long)]
    pub name: Option<String>,
    /// A node to join: IP:PORT, HOST:PORT (A/AAAA records) or srv:NAME (SRV records),
    /// DNS names re-resolved while the node runs (repeatable; key `bootstrap`).
    #[arg(long)]
    pub bootstrap: Vec<String>,
    /// Directory keeping this node's identity, files and documents (key `data_dir`).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Discover peers with multicast DNS (key `mdns`).
    #[arg(long)]
    pub mdns: bool,
    /// Restrict mDNS to this network interface (repeatable; key `mdns_interfaces`).
    #[arg(long = "mdns-interface")]
    pub mdns_interfaces: Vec<String>,
    /// Accept offered transfers into this directory (key `inbox_dir`).
    #[arg(long)]
    pub inbox: Option<PathBuf>,
    /// Serve the cache to Redis clients on this TCP address (key `redis_listen`).
    #[arg(long, value_name = "ADDR")]
    pub redis: Option<String>,
    /// Password Redis clients must AUTH with (key `redis_password`; or
    /// MEMMESH_REDIS_PASSWORD).
    #[arg(long)]
    pub redis_password: Option<String>,
    /// Serve the HTTP management API, /metrics and the dashboard on this TCP address (key
    /// `http_listen`; off loopback it needs `http_token`, or MEMMESH_HTTP_TOKEN).
    #[arg(long, value_name = "ADDR")]
    pub http: Option<String>,
}

/// `memmesh config ...`.
#[derive(Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration and where each value came from (takes the
    /// flags of `memmesh node`).
    Show(NodeFlags),
}

/// `memmesh cache ...`.
#[derive(Subcommand)]
pub enum CacheCommand {
    /// Set a key.
    Set {
        /// The key.
        key: String,
        /// The value (UTF-8).
        value: String,
        /// Time to live (e.g. "30s", "500ms"; default: the bucket's).
        #[arg(long, value_parser = crate::config::parse_duration)]
        ttl: Option<Duration>,
    },
    /// Print a key's value (exit code 1 if absent).
    Get {
        /// The key.
        key: String,
    },
    /// Delete a key.
    Del {
        /// The key.
        key: String,
    },
    /// Print a key's time to live.
    Ttl {
        /// The key.
        key: String,
    },
    /// Add to a counter; prints the new value.
    Incr {
        /// The key.
        key: String,
        /// The increment.
        #[arg(long, default_value = "1", allow_negative_numbers = true)]
        by: i64,
    },
}

/// `memmesh files ...`.
#[derive(Subcommand)]
pub enum FilesCommand {
    /// Store a file durably; prints its id.
    Put {
        /// The file.
        path: PathBuf,
        /// How many nodes must hold it before this returns.
        #[arg(long, default_value = "1")]
        replicas: u32,
    },
    /// Get a file by id.
    Get {
        /// The file id.
        id: String,
        /// Write it here (default: stdout). Never replaces an existing file.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// List the files.
    Ls,
    /// What is known of a file.
    Stat {
        /// The file id.
        id: String,
    },
    /// Delete a file (everywhere).
    Rm {
        /// The file id.
        id: String,
    },
}

/// `memmesh docs ...`.
#[derive(Subcommand)]
pub enum DocsCommand {
    /// Create a document; prints its id.
    Create {
        /// Who it syncs with: private, cluster, community, commons.
        #[arg(long, default_value = "cluster")]
        reach: String,
    },
    /// Print a document (or the value at PATH) as JSON.
    Get {
        /// The document id.
        id: String,
        /// A path in it, like `/title` or `/items/0`.
        path: Option<String>,
    },
    /// Put a JSON value at a path.
    Put {
        /// The document id.
        id: String,
        /// The path.
        path: String,
        /// The value (JSON).
        #[arg(value_name = "JSON")]
        value: String,
    },
    /// Save a document to a file (Automerge binary).
    Export {
        /// The document id.
        id: String,
        /// The file.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Import a document saved by `export`; prints its id.
    Import {
        /// The file.
        file: PathBuf,
        /// Who it syncs with.
        #[arg(long, default_value = "cluster")]
        reach: String,
    },
    /// List the documents.
    Ls,
}

/// `memmesh service ...`.
#[derive(Subcommand)]
pub enum ServiceCommand {
    /// Write the service definition (a systemd template unit, or a launchd plist).
    Install(ServiceArgs),
    /// Remove it.
    Uninstall(ServiceArgs),
    /// Whether it is installed (and, with systemd, running).
    Status(ServiceArgs),
}

/// Where and how the service is installed.
#[derive(Args, Clone)]
pub struct ServiceArgs {
    /// For the current user (systemd --user, a LaunchAgent).
    #[arg(long, conflicts_with = "system")]
    pub user: bool,
    /// For the whole system (the default).
    #[arg(long)]
    pub system: bool,
    /// The instance: its config is /etc/memmesh/<instance>.toml (user: the user config dir).
    #[arg(long, default_value = "default")]
    pub instance: String,
    /// Print what would be written instead of writing it.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the service definition only.
    #[arg(long)]
    pub print: bool,
    /// Generate for this OS: linux or macos (default: this one).
    #[arg(long)]
    pub os: Option<String>,
    /// Write under this directory instead of / (for tests and packaging).
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// The memmesh binary the service runs (default: this one).
    #[arg(long, value_name = "PATH")]
    pub bin: Option<PathBuf>,
}

/// `memmesh secret ...`.
#[derive(Subcommand)]
pub enum SecretCommand {
    /// Print a new random cluster secret (32 random bytes, hex): give it to every node
    /// of the cluster with `--secret` or MEMMESH_SECRET.
    New,
}

/// Parses a deadline in seconds: a finite number above 0 and at most one day.
pub fn parse_timeout(text: &str) -> std::result::Result<Duration, String> {
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
