//! The replicated cache: `cache set|get|del|ttl|incr`.

use anyhow::Result;
use memmesh::Bytes;
use serde_json::{json, Value as Json};

use crate::args::{CacheCommand, Target};
use crate::client::with_conn;
use crate::config::Settings;
use crate::output::{Failed, Out};

/// Runs a cache verb on `bucket`.
pub async fn run(
    target: &Target,
    settings: &Settings,
    out: Out,
    bucket: String,
    command: CacheCommand,
) -> Result<()> {
    let (op, args, body) = match &command {
        CacheCommand::Set { key, value, ttl } => (
            "cache.set",
            json!({"key": key, "ttl_ms": ttl.map(|d| d.as_millis() as u64)}),
            Bytes::from(value.clone()),
        ),
        CacheCommand::Get { key } => ("cache.get", json!({"key": key}), Bytes::new()),
        CacheCommand::Del { key } => ("cache.del", json!({"key": key}), Bytes::new()),
        CacheCommand::Ttl { key } => ("cache.ttl", json!({"key": key}), Bytes::new()),
        CacheCommand::Incr { key, by } => {
            ("cache.incr", json!({"key": key, "by": by}), Bytes::new())
        }
    };
    let mut args = args;
    if let Some(m) = args.as_object_mut() {
        m.insert("bucket".into(), json!(bucket));
        if m.get("ttl_ms").is_some_and(Json::is_null) {
            m.remove("ttl_ms");
        }
    }
    let (h, body) = with_conn(target, settings, None, |c| async move {
        c.call(op, args, body).await
    })
    .await?;
    match command {
        CacheCommand::Set { key, .. } => out.print("OK", json!({"set": key})),
        CacheCommand::Get { key } => {
            if h["found"].as_bool() != Some(true) {
                return Err(Failed {
                    message: format!("{key}: not found"),
                    kind: "NotFound".into(),
                }
                .into());
            }
            let value = String::from_utf8_lossy(&body).into_owned();
            out.print(&value, json!({"key": key, "value": value}));
        }
        CacheCommand::Del { key } => {
            let deleted = h["deleted"].as_bool().unwrap_or(false);
            out.print(
                if deleted { "deleted" } else { "absent" },
                json!({"key": key, "deleted": deleted}),
            );
        }
        CacheCommand::Ttl { key } => {
            let ms = h["ttl_ms"].as_u64();
            let text = match ms {
                Some(ms) => {
                    humantime::format_duration(std::time::Duration::from_millis(ms)).to_string()
                }
                None => "never expires".into(),
            };
            out.print(text, json!({"key": key, "ttl_ms": ms}));
        }
        CacheCommand::Incr { key, .. } => {
            let v = h["value"].as_i64().unwrap_or(0);
            out.print(v, json!({"key": key, "value": v}));
        }
    }
    Ok(())
}
