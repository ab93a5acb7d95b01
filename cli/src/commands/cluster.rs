//! `peers`, `leader`.

use anyhow::Result;
use memmesh::Bytes;
use serde_json::{json, Value as Json};

use crate::args::Target;
use crate::client::with_conn;
use crate::config::Settings;
use crate::output::Out;

/// `memmesh peers`: the daemon's view of the membership.
pub async fn peers(target: &Target, settings: &Settings, out: Out) -> Result<()> {
    let (h, _) = with_conn(target, settings, None, |c| async move {
        c.call("peers", json!({}), Bytes::new()).await
    })
    .await?;
    let mut lines = Vec::new();
    for p in h["peers"].as_array().cloned().unwrap_or_default() {
        let addrs: Vec<String> = p["addrs"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Json::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        lines.push(format!(
            "{:<16} {} {:<8} {}",
            p["name"].as_str().unwrap_or(""),
            p["id"].as_str().unwrap_or(""),
            p["state"].as_str().unwrap_or(""),
            addrs.join(",")
        ));
    }
    out.print(
        lines.join("\n"),
        json!({"peers": h["peers"], "self": h["self"]}),
    );
    Ok(())
}

/// `memmesh leader`.
pub async fn leader(target: &Target, settings: &Settings, out: Out) -> Result<()> {
    let (h, _) = with_conn(target, settings, None, |c| async move {
        c.call("leader", json!({}), Bytes::new()).await
    })
    .await?;
    out.print(
        format!(
            "{} {}",
            h["id"].as_str().unwrap_or(""),
            h["name"].as_str().unwrap_or("")
        ),
        json!({"id": h["id"], "name": h["name"]}),
    );
    Ok(())
}
