//! `memmesh`: run a node (the daemon), or talk to one, from the command line.
//!
//! Modules: [`args`] (the command line), [`config`] (flags > env > file > defaults),
//! [`daemon`] (`memmesh node`), [`admin`] and [`client`] (how the CLI reaches the
//! daemon, ADR 0023), [`commands`] (the verbs, per capability), [`output`] (text/JSON,
//! exit codes, progress bars) and [`service`] (systemd / launchd).

mod admin;
mod args;
mod client;
mod commands;
mod config;
mod daemon;
mod output;
mod service;

use anyhow::Result;
use clap::Parser;

use args::{Cli, Command, Common, ConfigCommand, NodeFlags, SecretCommand, ServiceCommand};
use config::{ConfigError, Layer, Settings};
use output::Out;

/// Resolves the configuration tiers: `flags` (the dedicated flags of `node` and the
/// common ones) > `MEMMESH_*` > the config file > defaults.
fn settings(common: &Common, node: Option<&NodeFlags>) -> Result<Settings, ConfigError> {
    let (file, path) = config::load_file(common.config.as_deref())?;
    let env = Layer::from_env(|name| std::env::var(name).ok())?;
    let mut flags = Layer::default();
    for assignment in &common.set {
        flags.set_assignment(assignment)?;
    }
    if let Some(s) = &common.secret {
        flags.set_flag("cluster_secret", s)?;
    }
    if common.open {
        flags.set_flag_bool("open", true);
    }
    if let Some(n) = node {
        let path_str = |p: &std::path::PathBuf| p.display().to_string();
        if let Some(v) = &n.listen {
            flags.set_flag("listen", v)?;
        }
        if let Some(v) = &n.name {
            flags.set_flag("name", v)?;
        }
        if !n.bootstrap.is_empty() {
            flags.set_flag_list("bootstrap", n.bootstrap.clone());
        }
        if let Some(v) = &n.data_dir {
            flags.set_flag("data_dir", &path_str(v))?;
        }
        if n.mdns {
            flags.set_flag_bool("mdns", true);
        }
        if !n.mdns_interfaces.is_empty() {
            flags.set_flag_list("mdns_interfaces", n.mdns_interfaces.clone());
        }
        if let Some(v) = &n.inbox {
            flags.set_flag("inbox_dir", &path_str(v))?;
        }
        if let Some(v) = &n.redis {
            flags.set_flag("redis_listen", v)?;
        }
        if let Some(v) = &n.redis_password {
            flags.set_flag("redis_password", v)?;
        }
        if let Some(v) = &n.http {
            flags.set_flag("http_listen", v)?;
        }
    }
    Ok(Settings::merge(flags, env, file, path))
}

async fn run(cli: Cli) -> Result<()> {
    let common = cli.common;
    let out = Out { json: common.json };
    match cli.command {
        Command::Node(a) => {
            let s = settings(&common, Some(&a.flags))?;
            daemon::run(s.node_config()?, out.json).await
        }
        Command::Config {
            command: ConfigCommand::Show(node),
        } => {
            let s = settings(&common, Some(&node))?;
            let rows = s.show()?;
            if out.json {
                let map: serde_json::Map<String, serde_json::Value> = rows
                    .into_iter()
                    .map(|(k, v, src)| (k, serde_json::json!({"value": v, "source": src})))
                    .collect();
                println!(
                    "{}",
                    serde_json::json!({"file": s.file.as_ref().map(|p| p.display().to_string()), "settings": map})
                );
            } else {
                if let Some(f) = &s.file {
                    println!("# config file: {}", f.display());
                }
                for (k, v, src) in rows {
                    println!("{k} = {v}  # {src}");
                }
            }
            Ok(())
        }
        Command::Peers(t) => commands::cluster::peers(&t, &settings(&common, None)?, out).await,
        Command::Leader(t) => commands::cluster::leader(&t, &settings(&common, None)?, out).await,
        Command::Drain { target, no_wait } => {
            commands::drain::drain(&target, &settings(&common, None)?, no_wait, out).await
        }
        Command::Store {
            target,
            placement,
            file,
        } => {
            let s = settings(&common, None)?;
            commands::blocks::store(&target, &s, out, placement, file).await
        }
        Command::Load { target, id, output } => {
            let s = settings(&common, None)?;
            commands::blocks::load(&target, &s, out, id, output).await
        }
        Command::Free { target, id } => {
            let s = settings(&common, None)?;
            commands::blocks::free(&target, &s, out, id).await
        }
        Command::Cache {
            target,
            bucket,
            command,
        } => {
            let s = settings(&common, None)?;
            commands::cache::run(&target, &s, out, bucket, command).await
        }
        Command::Files { target, command } => {
            let s = settings(&common, None)?;
            commands::files::run(&target, &s, out, command).await
        }
        Command::Docs { target, command } => {
            let s = settings(&common, None)?;
            commands::docs::run(&target, &s, out, command).await
        }
        Command::Request {
            target,
            channel,
            timeout,
            message,
        } => {
            let s = settings(&common, None)?;
            commands::channels::request(&target, &s, out, channel, timeout, message).await
        }
        Command::Send {
            target,
            channel,
            message,
        } => {
            let s = settings(&common, None)?;
            commands::channels::send(&target, &s, out, channel, message).await
        }
        Command::Listen { target, channel } => {
            let s = settings(&common, None)?;
            commands::channels::listen(&target, &s, out, channel).await
        }
        Command::SendFile { to, data_dir, path } => {
            let s = settings(&common, None)?;
            commands::transfer::send_file(&s, out, to, data_dir, path).await
        }
        Command::Fetch { to, id, output } => {
            let s = settings(&common, None)?;
            commands::transfer::fetch(&s, out, to, id, output).await
        }
        Command::Service { command } => match command {
            ServiceCommand::Install(a) => service::install(&a, out),
            ServiceCommand::Uninstall(a) => service::uninstall(&a, out),
            ServiceCommand::Status(a) => service::status(&a, out),
        },
        Command::Secret {
            command: SecretCommand::New,
        } => {
            let secret = memmesh::transport::auth::generate_secret()?;
            out.print(&secret, serde_json::json!({"secret": secret}));
            Ok(())
        }
        Command::Id { data_dir } => {
            let id = memmesh::Keypair::load_or_create(&data_dir)?.node_id();
            out.print(id, serde_json::json!({"id": id.to_string()}));
            Ok(())
        }
    }
}

/// The process's allocator: mimalloc (ADR 0029). The node's hot paths allocate small,
/// short-lived buffers on every request; glibc's malloc and free were a quarter of the
/// instructions of a cache write.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("MEMMESH_LOG")
                .unwrap_or_else(|_| "memmesh=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let json = cli.common.json;
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start a runtime: {e}");
            std::process::exit(output::EXIT_FAILED);
        }
    };
    if let Err(e) = runtime.block_on(run(cli)) {
        let code = output::exit_code(&e);
        if json {
            eprintln!(
                "{}",
                serde_json::json!({"error": format!("{e:#}"), "kind": output::kind_of(&e), "exit": code})
            );
        } else {
            eprintln!("error: {e:#}");
        }
        std::process::exit(code);
    }
}
