//! Channels: `request`, `send`, `listen` (the CLI node itself talks; no admin token).

use std::time::Duration;

use anyhow::Result;
use memmesh::Message;
use serde_json::json;

use crate::args::Target;
use crate::client::with_conn;
use crate::config::Settings;
use crate::output::Out;

/// `memmesh request`: prints the reply.
pub async fn request(
    target: &Target,
    settings: &Settings,
    out: Out,
    channel: String,
    timeout: Duration,
    message: String,
) -> Result<()> {
    let reply = with_conn(target, settings, None, |c| async move {
        Ok(c.node
            .channel(&channel)?
            .request(c.peer, message, Some(timeout))
            .await?)
    })
    .await?;
    let text = String::from_utf8_lossy(&reply).into_owned();
    out.print(&text, json!({"reply": text}));
    Ok(())
}

/// `memmesh send`.
pub async fn send(
    target: &Target,
    settings: &Settings,
    out: Out,
    channel: String,
    message: String,
) -> Result<()> {
    let peer = with_conn(target, settings, None, |c| async move {
        c.node.channel(&channel)?.send(message, c.peer).await?;
        Ok(c.peer)
    })
    .await?;
    out.print(
        format!("sent to {}", peer.short()),
        json!({"to": peer.to_string()}),
    );
    Ok(())
}

/// `memmesh listen`: prints messages arriving on `channel` until SIGINT/SIGTERM.
pub async fn listen(target: &Target, settings: &Settings, out: Out, channel: String) -> Result<()> {
    with_conn(target, settings, None, |c| async move {
        c.node
            .channel(&channel)?
            .on_message(move |m: Message| async move {
                let text = String::from_utf8_lossy(&m.data).into_owned();
                out.print(
                    format!("{}: {}", m.from.short(), text),
                    json!({"from": m.from.to_string(), "data": text}),
                );
            });
        if !out.json {
            eprintln!(
                "listening on channel {channel:?} of {} (Ctrl-C to stop)",
                c.peer.short()
            );
        }
        crate::daemon::wait_for_signal().await;
        Ok(())
    })
    .await
}
