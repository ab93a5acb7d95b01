//! Documents: `docs create|get|put|export|import|ls`.

use anyhow::{Context, Result};
use memmesh::Bytes;
use serde_json::{json, Value as Json};

use crate::args::{DocsCommand, Target};
use crate::client::with_conn;
use crate::config::Settings;
use crate::output::{usage, Out};

/// Runs a docs verb.
pub async fn run(
    target: &Target,
    settings: &Settings,
    out: Out,
    command: DocsCommand,
) -> Result<()> {
    if let DocsCommand::Put { value: text, .. } = &command {
        serde_json::from_str::<Json>(text).map_err(|e| {
            usage(format!(
                "the value is not JSON ({e}): quote strings, as in '\"text\"'"
            ))
        })?;
    }
    let import = match &command {
        DocsCommand::Import { file, .. } => {
            Some(std::fs::read(file).with_context(|| format!("reading {}", file.display()))?)
        }
        _ => None,
    };
    with_conn(target, settings, None, |c| async move {
        match command {
            DocsCommand::Create { reach } => {
                let (h, _) = c
                    .call("docs.create", json!({"reach": reach}), Bytes::new())
                    .await?;
                let id = h["id"].as_str().unwrap_or("").to_string();
                out.print(&id, json!({"id": id}));
            }
            DocsCommand::Get { id, path } => {
                let (h, _) = c
                    .call("docs.get", json!({"id": id, "path": path}), Bytes::new())
                    .await?;
                let text = h["json"].as_str().unwrap_or("null").to_string();
                let value: Json = serde_json::from_str(&text).unwrap_or(Json::Null);
                out.print(text, json!({"id": id, "value": value}));
            }
            DocsCommand::Put {
                id,
                path,
                value: text,
            } => {
                c.call(
                    "docs.put",
                    json!({"id": id, "path": path, "json": text}),
                    Bytes::new(),
                )
                .await?;
                out.print("OK", json!({"id": id, "path": path}));
            }
            DocsCommand::Export { id, output } => {
                let (_, body) = c
                    .call("docs.export", json!({"id": id}), Bytes::new())
                    .await?;
                std::fs::write(&output, &body)
                    .with_context(|| format!("writing {}", output.display()))?;
                out.print(
                    format!("{} bytes written to {}", body.len(), output.display()),
                    json!({"id": id, "bytes": body.len(), "path": output.display().to_string()}),
                );
            }
            DocsCommand::Import { reach, .. } => {
                let body = Bytes::from(import.unwrap_or_default());
                let (h, _) = c.call("docs.import", json!({"reach": reach}), body).await?;
                let id = h["id"].as_str().unwrap_or("").to_string();
                out.print(&id, json!({"id": id}));
            }
            DocsCommand::Ls => {
                let (h, _) = c.call("docs.ls", json!({}), Bytes::new()).await?;
                let docs = h["docs"].as_array().cloned().unwrap_or_default();
                let text = docs
                    .iter()
                    .map(|d| {
                        format!(
                            "{} {}",
                            d["id"].as_str().unwrap_or(""),
                            d["reach"].as_str().unwrap_or("")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n");
                out.print(text, json!({"docs": docs}));
            }
        }
        Ok(())
    })
    .await
}
