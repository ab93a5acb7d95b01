//! The admin channel (ADR 0023): how the CLI asks the local daemon to act.
//!
//! A request on channel [`CHANNEL`] is a JSON header (an object with `op`, `token` and
//! the operation's arguments), a newline, then the binary body (a block, a cache value,
//! a chunk of a file). The reply has the same shape; its header has `ok` and, on failure,
//! `error` (the message) and `kind` (the [`memmesh::ErrorKind`]). The token is the one in
//! the daemon file (`<data_dir>/daemon.json`, mode 0600): reading it proves the caller
//! may act as this node's operator; a member of the cluster without it is refused.
//!
//! Files cross in chunks through a *spool* (a temporary file in the daemon's data dir),
//! so neither side holds a whole file in memory and the CLI can show progress.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use memmesh::blocks::{BlockId, Placement};
use memmesh::docs::{DocId, Reach, Value};
use memmesh::files::{FileId, PutOptions};
use memmesh::{Bytes, Node, NodeId, Request};
use serde_json::{json, Value as Json};

/// The channel the daemon answers admin requests on.
pub const CHANNEL: &str = "memmesh.admin";

/// The name of the CLI's short-lived nodes.
pub const CLIENT_NAME: &str = "memmesh-cli";

/// Size of one chunk of a file crossing the admin channel.
pub const CHUNK: usize = 1 << 20;

/// At most this many spools at once.
const MAX_SPOOLS: usize = 16;

/// Splits a message into its JSON header and its body.
pub fn decode(data: &[u8]) -> Result<(Json, Bytes)> {
    let nl = data
        .iter()
        .position(|b| *b == b'\n')
        .ok_or_else(|| anyhow!("malformed admin message: no header"))?;
    let header: Json = serde_json::from_slice(&data[..nl]).context("malformed admin header")?;
    Ok((header, Bytes::copy_from_slice(&data[nl + 1..])))
}

/// Joins a JSON header and a body into a message.
pub fn encode(header: &Json, body: &[u8]) -> Bytes {
    let mut out = serde_json::to_vec(header).unwrap_or_default();
    out.push(b'\n');
    out.extend_from_slice(body);
    Bytes::from(out)
}

/// Whether two tokens are equal, in time independent of where they differ.
fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The daemon's side: answers admin requests for `node`.
pub struct Server {
    node: Node,
    token: String,
    spool_dir: Option<PathBuf>,
    spools: Mutex<HashSet<String>>,
}

impl Server {
    /// Serves admin requests on `node`, checked against `token`; spools live in
    /// `spool_dir` (emptied now and at [`Server::close`]; without one, a daemon without
    /// a data dir, files cannot cross).
    pub fn start(node: &Node, token: String, spool_dir: Option<PathBuf>) -> Result<Arc<Server>> {
        if let Some(dir) = &spool_dir {
            let _ = std::fs::remove_dir_all(dir);
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let server = Arc::new(Server {
            node: node.clone(),
            token,
            spool_dir,
            spools: Mutex::new(HashSet::new()),
        });
        let s = server.clone();
        node.channel(CHANNEL)?.on_request(move |req: Request| {
            let s = s.clone();
            async move { Ok(s.answer(req).await) }
        });
        Ok(server)
    }

    /// Removes the spools.
    pub fn close(&self) {
        if let Some(dir) = &self.spool_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }

    fn spool_dir(&self) -> Result<&PathBuf> {
        self.spool_dir.as_ref().ok_or_else(|| {
            anyhow::Error::new(memmesh::Error::new(
                memmesh::ErrorKind::Unsupported,
                "this daemon has no data dir: files need one (start it with --data-dir)",
            ))
        })
    }

    async fn answer(&self, req: Request) -> Bytes {
        let (header, body) = match decode(&req.data) {
            Ok(x) => x,
            Err(e) => return failure(&e),
        };
        let token = header.get("token").and_then(Json::as_str).unwrap_or("");
        if !same_token(token, &self.token) {
            tracing::warn!(from = %req.from.short(), "admin request with a wrong token refused");
            return encode(
                &json!({"ok": false, "kind": "Unauthorized",
                        "error": "wrong admin token: read it from the daemon file (daemon.json) of this node's data dir"}),
                b"",
            );
        }
        let op = header.get("op").and_then(Json::as_str).unwrap_or("");
        match self.run(op, &header, body, req.from).await {
            Ok((mut h, body)) => {
                if let Some(m) = h.as_object_mut() {
                    m.insert("ok".into(), json!(true));
                }
                encode(&h, &body)
            }
            Err(e) => failure(&e),
        }
    }

    fn spool_path(&self, id: &str) -> Result<PathBuf> {
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_hexdigit()) || id.len() > 64 {
            bail!("bad spool id {id:?}");
        }
        if !self.spools.lock().map(|s| s.contains(id)).unwrap_or(false) {
            bail!("no spool {id}");
        }
        Ok(self.spool_dir()?.join(id))
    }

    fn new_spool(&self) -> Result<(String, PathBuf)> {
        let mut spools = self.spools.lock().map_err(|_| anyhow!("spools poisoned"))?;
        if spools.len() >= MAX_SPOOLS {
            bail!("too many transfers in flight (at most {MAX_SPOOLS})");
        }
        let id = memmesh::transport::auth::generate_secret()?[..32].to_string();
        let path = self.spool_dir()?.join(&id);
        std::fs::File::create(&path)?;
        spools.insert(id.clone());
        Ok((id, path))
    }

    fn drop_spool(&self, id: &str) {
        if let Ok(p) = self.spool_path(id) {
            let _ = std::fs::remove_file(p);
        }
        if let Ok(mut s) = self.spools.lock() {
            s.remove(id);
        }
    }

    async fn run(&self, op: &str, h: &Json, body: Bytes, from: NodeId) -> Result<(Json, Bytes)> {
        let node = &self.node;
        let s = |k: &str| -> Result<String> {
            h.get(k)
                .and_then(Json::as_str)
                .map(str::to_string)
                .ok_or_else(|| anyhow!("missing argument {k}"))
        };
        let n = |k: &str| h.get(k).and_then(Json::as_u64);
        let none = Bytes::new();
        Ok(match op {
            "whoami" => (
                json!({"id": node.id().to_string(), "name": node.name(), "addr": node.addr().to_string()}),
                none,
            ),
            "peers" => {
                // The asking CLI node is not one of the peers the user means, nor are
                // client nodes that left (earlier CLI calls).
                let peers: Vec<Json> = node
                    .peers()
                    .iter()
                    .filter(|p| p.id != from)
                    .filter(|p| {
                        !(p.role == memmesh::Role::Client && p.state == memmesh::PeerState::Down)
                    })
                    .map(|p| {
                        json!({"id": p.id.to_string(), "name": p.name, "state": p.state.as_str(),
                               "connected": p.connected, "role": p.role.as_str(),
                               "addrs": p.addrs.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
                               "rtt_ms": p.rtt.map(|d| d.as_secs_f64() * 1000.0),
                               "quota_free": p.quota_free})
                    })
                    .collect();
                (json!({"self": node.id().to_string(), "peers": peers}), none)
            }
            "drain" => (drain_json(node.drain().await?), none),
            "drain_status" => (drain_json(node.drain_status()), none),
            "leader" => {
                let id = node.leader();
                let name = if id == node.id() {
                    node.name().to_string()
                } else {
                    node.peers()
                        .into_iter()
                        .find(|p| p.id == id)
                        .map(|p| p.name)
                        .unwrap_or_default()
                };
                (json!({"id": id.to_string(), "name": name}), none)
            }
            "blocks.store" => {
                // `auto` never picks a client node (the asking CLI node is one).
                let placement: Placement =
                    s("placement").unwrap_or_else(|_| "auto".into()).parse()?;
                let id = node.blocks()?.put(body, placement).await?;
                (json!({"id": id.to_string()}), none)
            }
            "blocks.load" => {
                let id = BlockId::parse(&s("id")?)?;
                (json!({}), node.blocks()?.get(&id).await?)
            }
            "blocks.free" => {
                let id = BlockId::parse(&s("id")?)?;
                node.blocks()?.free(&id).await?;
                (json!({}), none)
            }
            "cache.set" => {
                let c = node.cache(&s("bucket")?, None).await?;
                c.set(&s("key")?, body, n("ttl_ms").map(Duration::from_millis))
                    .await?;
                (json!({}), none)
            }
            "cache.get" => {
                let c = node.cache(&s("bucket")?, None).await?;
                match c.get(&s("key")?).await? {
                    Some(v) => (json!({"found": true}), v),
                    None => (json!({"found": false}), none),
                }
            }
            "cache.del" => {
                let c = node.cache(&s("bucket")?, None).await?;
                (json!({"deleted": c.delete(&s("key")?).await?}), none)
            }
            "cache.ttl" => {
                let c = node.cache(&s("bucket")?, None).await?;
                let ttl = c.ttl(&s("key")?).await?;
                (json!({"ttl_ms": ttl.map(|d| d.as_millis() as u64)}), none)
            }
            "cache.incr" => {
                let c = node.cache(&s("bucket")?, None).await?;
                let by = h.get("by").and_then(Json::as_i64).unwrap_or(1);
                (json!({"value": c.incr(&s("key")?, by).await?}), none)
            }
            "spool.create" => {
                let (id, _) = self.new_spool()?;
                (json!({"spool": id}), none)
            }
            "spool.write" => {
                use std::io::{Seek, SeekFrom, Write};
                let path = self.spool_path(&s("spool")?)?;
                let mut f = std::fs::OpenOptions::new().write(true).open(path)?;
                f.seek(SeekFrom::Start(n("offset").unwrap_or(0)))?;
                f.write_all(&body)?;
                (json!({}), none)
            }
            "spool.read" => {
                use std::io::{Read, Seek, SeekFrom};
                let path = self.spool_path(&s("spool")?)?;
                let mut f = std::fs::File::open(path)?;
                f.seek(SeekFrom::Start(n("offset").unwrap_or(0)))?;
                let len = n("len").unwrap_or(CHUNK as u64).min(CHUNK as u64) as usize;
                let mut buf = vec![0u8; len];
                let mut got = 0;
                while got < len {
                    let k = f.read(&mut buf[got..])?;
                    if k == 0 {
                        break;
                    }
                    got += k;
                }
                buf.truncate(got);
                (json!({}), Bytes::from(buf))
            }
            "spool.drop" => {
                self.drop_spool(&s("spool")?);
                (json!({}), none)
            }
            "files.put" => {
                let spool = s("spool")?;
                let path = self.spool_path(&spool)?;
                let options = PutOptions {
                    name: s("name").ok(),
                    content_type: None,
                    replicas: n("replicas").unwrap_or(1).min(u32::MAX as u64) as u32,
                };
                let result = node.files()?.put_path(path, options).await;
                self.drop_spool(&spool);
                (json!({"id": result?.to_string()}), none)
            }
            "files.get" => {
                let id = FileId::parse(&s("id")?)?;
                let (spool, path) = self.new_spool()?;
                let _ = std::fs::remove_file(&path);
                if let Err(e) = node.files()?.get_to_path(id, path.clone()).await {
                    self.drop_spool(&spool);
                    return Err(e.into());
                }
                let size = std::fs::metadata(&path)?.len();
                (json!({"spool": spool, "size": size}), none)
            }
            "files.ls" => {
                let cursor = match s("cursor") {
                    Ok(c) => Some(FileId::parse(&c)?),
                    Err(_) => None,
                };
                let limit = n("limit").unwrap_or(memmesh::files::MAX_PAGE as u64) as usize;
                let page = node.files()?.list(cursor, limit).await?;
                let files: Vec<Json> = page.files.iter().map(file_json).collect();
                (
                    json!({"files": files, "next": page.next.map(|n| n.to_string())}),
                    none,
                )
            }
            "files.stat" => {
                let id = FileId::parse(&s("id")?)?;
                (file_json(&node.files()?.stat(id).await?), none)
            }
            "files.rm" => {
                let id = FileId::parse(&s("id")?)?;
                node.files()?.delete(id).await?;
                (json!({}), none)
            }
            "docs.create" => {
                let reach: Reach = s("reach").unwrap_or_else(|_| "cluster".into()).parse()?;
                let id = node.docs()?.create(reach).await?;
                (json!({"id": id.to_string()}), none)
            }
            "docs.get" => {
                let id: DocId = s("id")?.parse()?;
                let doc = node.docs()?.open(id).await?;
                let text = match s("path") {
                    Ok(p) => doc.get(p.as_str())?.map(|v| v.to_json()),
                    Err(_) => Some(doc.to_json()?),
                };
                (json!({"json": text}), none)
            }
            "docs.put" => {
                let id: DocId = s("id")?.parse()?;
                let value: Json = serde_json::from_str(&s("json")?).map_err(|e| {
                    memmesh::Error::new(
                        memmesh::ErrorKind::InvalidInput,
                        format!("bad JSON value: {e}"),
                    )
                })?;
                let doc = node.docs()?.open(id).await?;
                doc.put(s("path")?.as_str(), json_to_value(value)).await?;
                (json!({}), none)
            }
            "docs.export" => {
                let id: DocId = s("id")?.parse()?;
                let doc = node.docs()?.open(id).await?;
                (json!({}), Bytes::from(doc.save()?))
            }
            "docs.import" => {
                let reach: Reach = s("reach").unwrap_or_else(|_| "cluster".into()).parse()?;
                let id = node.docs()?.import(&body, reach).await?;
                (json!({"id": id.to_string()}), none)
            }
            "docs.ls" => {
                let docs: Vec<Json> = node
                    .docs()?
                    .list()
                    .await?
                    .iter()
                    .map(|d| json!({"id": d.id.to_string(), "reach": d.reach.to_string(), "heads": d.heads}))
                    .collect();
                (json!({"docs": docs}), none)
            }
            other => {
                bail!("unknown admin operation {other:?} (is the daemon older than this CLI?)")
            }
        })
    }
}

fn failure(e: &anyhow::Error) -> Bytes {
    let kind = e
        .downcast_ref::<memmesh::Error>()
        .map(|m| format!("{:?}", m.kind()))
        .unwrap_or_else(|| "Other".into());
    encode(
        &json!({"ok": false, "kind": kind, "error": format!("{e:#}")}),
        b"",
    )
}

/// A drain status as the admin protocol answers it.
fn drain_json(s: memmesh::DrainStatus) -> Json {
    json!({"draining": s.draining, "partitions": s.partitions, "files": s.files,
           "done": s.done()})
}

/// The JSON form of a file's info.
pub fn file_json(f: &memmesh::files::FileInfo) -> Json {
    json!({"id": f.id.to_string(), "size": f.size, "name": f.name, "content_type": f.content_type,
           "created_ms": f.created,
           "holders": f.holders.iter().map(NodeId::to_string).collect::<Vec<_>>()})
}

/// A JSON value as a document value (objects as maps, arrays as lists).
pub fn json_to_value(v: Json) -> Value {
    match v {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(s) => Value::Str(s),
        Json::Array(a) => Value::List(a.into_iter().map(json_to_value).collect()),
        Json::Object(m) => Value::Map(m.into_iter().map(|(k, v)| (k, json_to_value(v))).collect()),
    }
}
