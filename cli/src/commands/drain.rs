//! `drain`: the daemon stops being a placement target and hands its data off (ADR 0025).

use std::time::Duration;

use anyhow::Result;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use memmesh::Bytes;
use serde_json::{json, Value as Json};

use crate::args::Target;
use crate::client::with_conn;
use crate::config::Settings;
use crate::output::Out;
use std::io::IsTerminal;

/// How often the status is asked for while waiting.
const POLL: Duration = Duration::from_millis(500);

/// What is left in a status: partitions plus files.
fn left(h: &Json) -> u64 {
    h["partitions"].as_u64().unwrap_or(0) + h["files"].as_u64().unwrap_or(0)
}

fn summary(h: &Json) -> String {
    format!(
        "draining: {}, partitions left: {}, files left: {}{}",
        h["draining"].as_bool().unwrap_or(false),
        h["partitions"].as_u64().unwrap_or(0),
        h["files"].as_u64().unwrap_or(0),
        if h["done"].as_bool().unwrap_or(false) {
            " (done: the node may be stopped)"
        } else {
            ""
        }
    )
}

/// The status as printed with `--json`.
fn status_json(h: &Json) -> Json {
    json!({
        "draining": h["draining"],
        "partitions": h["partitions"],
        "files": h["files"],
        "done": h["done"],
    })
}

/// `memmesh drain [--no-wait]`: starts draining the daemon, then (unless `no_wait`)
/// waits with a progress bar until nothing is left to hand off.
pub async fn drain(target: &Target, settings: &Settings, no_wait: bool, out: Out) -> Result<()> {
    let h = with_conn(target, settings, None, |c| async move {
        let (mut h, _) = c.call("drain", json!({}), Bytes::new()).await?;
        if no_wait {
            return Ok(h);
        }
        let total = left(&h);
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        if out.json || !std::io::stderr().is_terminal() {
            bar.set_draw_target(ProgressDrawTarget::hidden());
        }
        bar.set_style(
            ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_message("handing off");
        while !h["done"].as_bool().unwrap_or(false) {
            tokio::time::sleep(POLL).await;
            h = c.call("drain_status", json!({}), Bytes::new()).await?.0;
            let now = left(&h);
            if now > bar.length().unwrap_or(0) {
                bar.set_length(now);
            }
            bar.set_position(bar.length().unwrap_or(0).saturating_sub(now));
        }
        bar.finish_and_clear();
        Ok(h)
    })
    .await?;
    out.print(summary(&h), status_json(&h));
    Ok(())
}
