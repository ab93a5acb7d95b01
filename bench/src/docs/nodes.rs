//! Real nodes on 127.0.0.1 (mDNS off) and the documents the benchmark edits on them
//! through the path API ([`memmesh::docs::Doc`]).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use memmesh::docs::Doc;
use memmesh::{DocId, Node, Value};

/// How often the benchmark looks at heads while it waits for a sync (the figures'
/// resolution).
pub const POLL: Duration = Duration::from_millis(1);

/// Starts a node on 127.0.0.1 with `threads` runtime workers, keeping its documents in
/// `data_dir` (in memory only without one).
pub async fn start(name: &str, threads: usize, data_dir: Option<&Path>) -> Result<Node> {
    let mut b = Node::builder()
        .name(name)
        .listen("127.0.0.1:0")
        .mdns(false)
        .threads(threads);
    if let Some(dir) = data_dir {
        b = b.data_dir(dir);
    }
    b.start()
        .await
        .with_context(|| format!("starting node {name}"))
}

/// Connects `from` to `to`.
pub async fn connect(from: &Node, to: &Node) -> Result<()> {
    from.connect(&to.addr().to_string())
        .await
        .with_context(|| format!("connecting {} to {}", from.name(), to.name()))?;
    Ok(())
}

/// The `i`-th edit of the history part (a) syncs: a mix of a map put, typing one
/// character at the end of a text and appending to a list (one Automerge change each).
/// `i` counts from 0; the first two changes create the text and the list.
pub async fn history_edit(doc: &Doc, i: usize) -> Result<()> {
    match i {
        0 => doc.put("text", Value::Text(String::new())).await?,
        1 => doc.put("items", Value::List(Vec::new())).await?,
        i => {
            let n = (i - 2) / 3;
            match (i - 2) % 3 {
                0 => doc.put(format!("k{}", n % 100).as_str(), n as i64).await?,
                1 => doc.splice_text("text", n, 0, "a").await?,
                _ => doc.insert("items", n, n as i64).await?,
            }
        }
    }
    Ok(())
}

/// Makes `changes` changes to `doc` with [`history_edit`].
pub async fn build_history(doc: &Doc, changes: usize) -> Result<()> {
    for i in 0..changes {
        history_edit(doc, i)
            .await
            .with_context(|| format!("edit {i} of the history"))?;
    }
    Ok(())
}

/// The edit of part (c), the same in Rust, Python and Node.js: put the integer `i` at
/// the key `k{i % 100}` of the root map.
pub async fn rate_edit(doc: &Doc, i: u64) -> Result<()> {
    doc.put(format!("k{}", i % 100).as_str(), i as i64).await?;
    Ok(())
}

/// The heads of `id` on `node`, `None` while it does not hold the document.
pub async fn heads_on(node: &Node, id: DocId) -> Option<Vec<String>> {
    let doc = node.docs().ok()?.open(id).await.ok()?;
    doc.heads().ok()
}

/// Waits until `node` holds `id` with `heads`; returns when it saw them. Fails after
/// `deadline`.
pub async fn wait_for_heads(
    node: &Node,
    id: DocId,
    heads: &[String],
    deadline: Duration,
) -> Result<Instant> {
    let end = Instant::now() + deadline;
    loop {
        if heads_on(node, id).await.as_deref() == Some(heads) {
            return Ok(Instant::now());
        }
        if Instant::now() > end {
            bail!(
                "{} did not reach the heads of {id} within {deadline:?}",
                node.name()
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Whether every node's copy of every document (`docs[node][doc]`) has the same heads.
pub fn all_same_heads(docs: &[Vec<Doc>]) -> Result<bool> {
    let Some((first, rest)) = docs.split_first() else {
        return Ok(true);
    };
    for (i, doc) in first.iter().enumerate() {
        let heads = doc.heads()?;
        for other in rest {
            let d = other.get(i).context("a node lacks a document")?;
            if d.heads()? != heads {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

/// Waits until [`all_same_heads`] holds; returns when it saw it. Fails after `deadline`.
pub async fn wait_converged(docs: &[Vec<Doc>], deadline: Duration) -> Result<Instant> {
    let end = Instant::now() + deadline;
    loop {
        if all_same_heads(docs)? {
            return Ok(Instant::now());
        }
        if Instant::now() > end {
            bail!("the nodes did not converge within {deadline:?}");
        }
        tokio::time::sleep(POLL).await;
    }
}
