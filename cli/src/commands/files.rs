//! The files store: `files put|get|ls|stat|rm`. Contents cross in chunks through a spool
//! on the daemon (see [`crate::admin`]), with a progress bar.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use memmesh::Bytes;
use serde_json::{json, Value as Json};

use crate::admin::CHUNK;
use crate::args::{FilesCommand, Target};
use crate::client::{with_conn, Conn};
use crate::config::Settings;
use crate::output::Out;

/// Runs a files verb.
pub async fn run(
    target: &Target,
    settings: &Settings,
    out: Out,
    command: FilesCommand,
) -> Result<()> {
    with_conn(target, settings, None, |c| async move {
        match command {
            FilesCommand::Put { path, replicas } => put(&c, out, path, replicas).await,
            FilesCommand::Get { id, output } => get(&c, out, id, output).await,
            FilesCommand::Ls => ls(&c, out).await,
            FilesCommand::Stat { id } => {
                let (h, _) = c
                    .call("files.stat", json!({"id": id}), Bytes::new())
                    .await?;
                out.print(describe(&h), strip(h));
                Ok(())
            }
            FilesCommand::Rm { id } => {
                c.call("files.rm", json!({"id": id}), Bytes::new()).await?;
                out.print(format!("deleted {id}"), json!({"deleted": id}));
                Ok(())
            }
        }
    })
    .await
}

fn strip(mut h: Json) -> Json {
    if let Some(m) = h.as_object_mut() {
        m.remove("ok");
    }
    h
}

fn describe(f: &Json) -> String {
    let holders = f["holders"].as_array().map(|a| a.len()).unwrap_or(0);
    format!(
        "{}  {} bytes  {}  {} holder(s)",
        f["id"].as_str().unwrap_or(""),
        f["size"].as_u64().unwrap_or(0),
        f["name"].as_str().unwrap_or("-"),
        holders
    )
}

async fn put(c: &Arc<Conn>, out: Out, path: PathBuf, replicas: u32) -> Result<()> {
    let mut file =
        std::fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?;
    let total = file.metadata()?.len();
    let (h, _) = c.call("spool.create", json!({}), Bytes::new()).await?;
    let spool = h["spool"].as_str().unwrap_or("").to_string();
    let bar = out.bar(total, "put");
    let mut offset = 0u64;
    let mut buf = vec![0u8; CHUNK];
    let result = async {
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            c.call(
                "spool.write",
                json!({"spool": spool, "offset": offset}),
                Bytes::copy_from_slice(&buf[..n]),
            )
            .await?;
            offset += n as u64;
            bar.set_position(offset);
        }
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        c.call(
            "files.put",
            json!({"spool": spool, "replicas": replicas, "name": name}),
            Bytes::new(),
        )
        .await
    }
    .await;
    bar.finish_and_clear();
    let (h, _) = match result {
        Ok(x) => x,
        Err(e) => {
            let _ = c
                .call("spool.drop", json!({"spool": spool}), Bytes::new())
                .await;
            return Err(e);
        }
    };
    let id = h["id"].as_str().unwrap_or("").to_string();
    out.print(&id, json!({"id": id, "size": total, "replicas": replicas}));
    Ok(())
}

async fn get(c: &Arc<Conn>, out: Out, id: String, output: Option<PathBuf>) -> Result<()> {
    if let Some(p) = &output {
        if p.exists() {
            bail!("{} exists: files get never replaces a file", p.display());
        }
    }
    let (h, _) = c.call("files.get", json!({"id": id}), Bytes::new()).await?;
    let spool = h["spool"].as_str().unwrap_or("").to_string();
    let size = h["size"].as_u64().unwrap_or(0);
    let bar = out.bar(size, "get");
    let tmp = output.as_ref().map(|p| {
        let mut name = p.file_name().unwrap_or_default().to_os_string();
        name.push(".memmesh-partial");
        p.with_file_name(name)
    });
    let result = async {
        let mut sink: Box<dyn Write> = match &tmp {
            Some(t) => Box::new(
                std::fs::File::create(t).with_context(|| format!("creating {}", t.display()))?,
            ),
            None => Box::new(std::io::stdout().lock()),
        };
        let mut offset = 0u64;
        while offset < size {
            let (_, body) = c
                .call(
                    "spool.read",
                    json!({"spool": spool, "offset": offset, "len": CHUNK}),
                    Bytes::new(),
                )
                .await?;
            if body.is_empty() {
                bail!("the daemon's copy ended at {offset} of {size} bytes");
            }
            sink.write_all(&body)?;
            offset += body.len() as u64;
            bar.set_position(offset);
        }
        sink.flush()?;
        anyhow::Ok(())
    }
    .await;
    bar.finish_and_clear();
    let _ = c
        .call("spool.drop", json!({"spool": spool}), Bytes::new())
        .await;
    if let Err(e) = result {
        if let Some(t) = &tmp {
            let _ = std::fs::remove_file(t);
        }
        return Err(e);
    }
    if let (Some(t), Some(p)) = (&tmp, &output) {
        std::fs::rename(t, p)?;
        out.print(
            format!("{size} bytes written to {}", p.display()),
            json!({"id": id, "size": size, "path": p.display().to_string()}),
        );
    }
    Ok(())
}

async fn ls(c: &Arc<Conn>, out: Out) -> Result<()> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let args = match &cursor {
            Some(cur) => json!({"cursor": cur}),
            None => json!({}),
        };
        let (h, _) = c.call("files.ls", args, Bytes::new()).await?;
        all.extend(h["files"].as_array().cloned().unwrap_or_default());
        match h["next"].as_str() {
            Some(n) => cursor = Some(n.to_string()),
            None => break,
        }
    }
    let text = all.iter().map(describe).collect::<Vec<_>>().join("\n");
    out.print(text, json!({"files": all}));
    Ok(())
}
