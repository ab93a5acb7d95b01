//! Blocks: `store`, `load`, `free` (MemCloud's verbs): RAM on the mesh.

use std::io::{Read, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use memmesh::Bytes;
use serde_json::json;

use crate::args::Target;
use crate::client::with_conn;
use crate::config::Settings;
use crate::output::Out;

/// `memmesh store FILE|-`: prints the block id.
pub async fn store(
    target: &Target,
    settings: &Settings,
    out: Out,
    placement: String,
    file: String,
) -> Result<()> {
    let data = if file == "-" {
        let mut buf = Vec::new();
        std::io::stdin().read_to_end(&mut buf)?;
        buf
    } else {
        std::fs::read(&file).with_context(|| format!("reading {file}"))?
    };
    let len = data.len();
    let (h, _) = with_conn(target, settings, None, |c| async move {
        c.call(
            "blocks.store",
            json!({"placement": placement}),
            Bytes::from(data),
        )
        .await
    })
    .await?;
    let id = h["id"].as_str().unwrap_or("").to_string();
    out.print(&id, json!({"id": id, "bytes": len}));
    Ok(())
}

/// `memmesh load ID [-o FILE]`.
pub async fn load(
    target: &Target,
    settings: &Settings,
    out: Out,
    id: String,
    output: Option<PathBuf>,
) -> Result<()> {
    let (_, body) = with_conn(target, settings, None, |c| async move {
        c.call("blocks.load", json!({"id": id}), Bytes::new()).await
    })
    .await?;
    match output {
        Some(p) => {
            std::fs::write(&p, &body).with_context(|| format!("writing {}", p.display()))?;
            out.print(
                format!("{} bytes written to {}", body.len(), p.display()),
                json!({"bytes": body.len(), "path": p.display().to_string()}),
            );
        }
        None if out.json => {
            println!(
                "{}",
                json!({"bytes": body.len(), "data": String::from_utf8_lossy(&body)})
            );
        }
        None => std::io::stdout().write_all(&body)?,
    }
    Ok(())
}

/// `memmesh free ID`.
pub async fn free(target: &Target, settings: &Settings, out: Out, id: String) -> Result<()> {
    let i = id.clone();
    with_conn(target, settings, None, |c| async move {
        c.call("blocks.free", json!({"id": i}), Bytes::new()).await
    })
    .await?;
    out.print(format!("freed {id}"), json!({"freed": id}));
    Ok(())
}
