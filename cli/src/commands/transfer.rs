//! Transfers: `send-file`, `fetch` (verified, resumable; with a progress bar).

use std::path::PathBuf;

use anyhow::Result;
use serde_json::json;

use crate::args::Target;
use crate::client::with_conn;
use crate::config::Settings;
use crate::output::Out;

/// Shows the transfer progress events of `node` on `bar` until dropped.
fn follow(
    node: &memmesh::Node,
    bar: indicatif::ProgressBar,
) -> Result<tokio::task::JoinHandle<()>> {
    let mut events = node.transfer()?.progress();
    Ok(tokio::spawn(async move {
        while let Ok(p) = events.next().await {
            bar.set_length(p.total);
            bar.set_position(p.done);
        }
    }))
}

/// `memmesh send-file --to ADDR [--data-dir KEYS] PATH`.
pub async fn send_file(
    settings: &Settings,
    out: Out,
    to: String,
    key_dir: Option<PathBuf>,
    path: PathBuf,
) -> Result<()> {
    let target = Target {
        to: Some(to),
        ..Target::default()
    };
    let total = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    with_conn(&target, settings, key_dir, |c| async move {
        let bar = out.bar(total, "send");
        let watcher = follow(&c.node, bar.clone())?;
        let result = c
            .node
            .transfer()?
            .send(memmesh::transfer::Source::Path(path), &[c.peer])
            .await;
        watcher.abort();
        bar.finish_and_clear();
        let result = result?.remove(0);
        if let Some(e) = result.error {
            return Err(e.into());
        }
        let hash = result.hash.unwrap_or_default();
        out.print(
            format!(
                "sent {} bytes ({} streamed) to {}: {}",
                result.bytes,
                result.sent,
                c.peer.short(),
                hash
            ),
            json!({"bytes": result.bytes, "streamed": result.sent, "to": c.peer.to_string(), "hash": hash}),
        );
        Ok(())
    })
    .await
}

/// `memmesh fetch --to ADDR ID [-o FILE]`.
pub async fn fetch(
    settings: &Settings,
    out: Out,
    to: String,
    id: String,
    output: Option<PathBuf>,
) -> Result<()> {
    let target = Target {
        to: Some(to),
        ..Target::default()
    };
    let into = output.unwrap_or_else(|| PathBuf::from(&id));
    with_conn(&target, settings, None, |c| async move {
        let bar = out.bar(0, "fetch");
        let watcher = follow(&c.node, bar.clone())?;
        let result = c.node.transfer()?.fetch(&id, c.peer, Some(into)).await;
        watcher.abort();
        bar.finish_and_clear();
        let got = result?;
        let path = got.path.map(|p| p.display().to_string());
        out.print(
            format!(
                "fetched {} to {}: {}",
                id,
                path.as_deref().unwrap_or("-"),
                got.hash
            ),
            json!({"id": id, "path": path, "hash": got.hash}),
        );
        Ok(())
    })
    .await
}
