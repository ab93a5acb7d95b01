//! Documents on one node: the path API, interop with plain Automerge bytes, restarts,
//! encryption at rest, and clear errors.

mod common;

use std::path::{Path, PathBuf};

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ReadDoc, ROOT};
use common::builder;
use memmesh::docs::Path as DocPath;
use memmesh::{ErrorKind, Node, Reach, Value};

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("memmesh-docs-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

async fn start(data: &Path) -> Node {
    builder("d")
        .data_dir(data)
        .start()
        .await
        .expect("start node")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_path_api_round_trips_every_value_type() {
    let data = dir("api");
    let node = start(&data).await;
    let docs = node.docs().unwrap();
    let id = docs.create(Reach::Cluster).await.unwrap();
    let doc = docs.open(id).await.unwrap();
    doc.put("title", "groceries").await.unwrap();
    doc.put("done", false).await.unwrap();
    doc.put("n", 3i64).await.unwrap();
    doc.put("pi", 3.5f64).await.unwrap();
    doc.put("raw", vec![0u8, 255]).await.unwrap();
    doc.put("nothing", Value::Null).await.unwrap();
    doc.put("items", Value::List(vec![])).await.unwrap();
    doc.insert("items", 0, "milk").await.unwrap();
    doc.insert("items", 1, "eggs").await.unwrap();
    doc.insert("items", 1, Value::Map(Default::default()))
        .await
        .unwrap();
    doc.put("items/1/qty", 2i64).await.unwrap();
    doc.put("notes", Value::Text("helo".into())).await.unwrap();
    doc.splice_text("notes", 3, 0, "l").await.unwrap();
    doc.splice_text("notes", 0, 1, "H").await.unwrap();
    doc.put("visits", Value::Counter(10)).await.unwrap();
    doc.increment("visits", 5).await.unwrap();
    doc.increment(DocPath::root().key("visits"), -1)
        .await
        .unwrap();
    doc.delete("items/2").await.unwrap();

    assert_eq!(
        doc.get("title").unwrap(),
        Some(Value::Str("groceries".into()))
    );
    assert_eq!(doc.get("items/1/qty").unwrap(), Some(Value::Int(2)));
    assert_eq!(doc.get("notes").unwrap(), Some(Value::Text("Hello".into())));
    assert_eq!(doc.get("visits").unwrap(), Some(Value::Counter(14)));
    assert_eq!(doc.get("raw").unwrap(), Some(Value::Bytes(vec![0, 255])));
    assert_eq!(doc.get("missing").unwrap(), None);
    assert_eq!(
        doc.to_json().unwrap(),
        r#"{"done":false,"items":["milk",{"qty":2}],"n":3,"notes":"Hello","nothing":null,"pi":3.5,"raw":"AP8=","title":"groceries","visits":14}"#
    );
    assert_eq!(doc.heads().unwrap().len(), 1);

    // Clear errors, each of its kind; a failed edit changes nothing.
    let heads = doc.heads().unwrap();
    let kind = |r: memmesh::Result<()>| r.unwrap_err().kind();
    assert_eq!(
        kind(doc.increment("title", 1).await),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        kind(doc.insert("title", 0, 1i64).await),
        ErrorKind::InvalidInput
    );
    assert_eq!(kind(doc.put("a//b", 1i64).await), ErrorKind::InvalidInput);
    assert_eq!(kind(doc.put("no/such", 1i64).await), ErrorKind::NotFound);
    assert_eq!(
        kind(doc.put("items/9", 1i64).await),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        kind(doc.splice_text("notes", 99, 0, "x").await),
        ErrorKind::InvalidInput
    );
    let e = doc.increment("title", 1).await.unwrap_err();
    assert!(e.message().contains("counter"), "{e}");
    assert_eq!(doc.heads().unwrap(), heads);

    let list = docs.list().await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].id, id);
    assert_eq!(list[0].reach, Reach::Cluster);
    assert_eq!(list[0].heads, heads);
    node.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(&data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_interoperate_with_a_plain_automerge_document() {
    let data = dir("interop");
    let node = start(&data).await;
    let docs = node.docs().unwrap();

    // Made by the library directly, imported into memmesh.
    let mut theirs = AutoCommit::new();
    theirs.put(&ROOT, "from", "automerge").unwrap();
    let text = theirs
        .put_object(&ROOT, "t", automerge::ObjType::Text)
        .unwrap();
    theirs.splice_text(&text, 0, 0, "abc").unwrap();
    let id = docs.import(&theirs.save(), Reach::Private).await.unwrap();
    let doc = docs.open(id).await.unwrap();
    assert_eq!(
        doc.get("from").unwrap(),
        Some(Value::Str("automerge".into()))
    );
    assert_eq!(doc.get("t").unwrap(), Some(Value::Text("abc".into())));
    assert_eq!(doc.reach(), Reach::Private);

    // Edited in memmesh, loaded by the library.
    doc.put("by", "memmesh").await.unwrap();
    let mut back = AutoCommit::load(&doc.save().unwrap()).unwrap();
    let (v, _) = back.get(&ROOT, "by").unwrap().unwrap();
    assert_eq!(v.as_str(), Some("memmesh"));

    // Concurrent edits on both sides merge.
    back.put(&ROOT, "side", "library").unwrap();
    doc.put("other", "memmesh").await.unwrap();
    doc.merge(&back.save()).await.unwrap();
    assert_eq!(doc.get("side").unwrap(), Some(Value::Str("library".into())));
    assert_eq!(
        doc.get("other").unwrap(),
        Some(Value::Str("memmesh".into()))
    );
    back.merge(&mut AutoCommit::load(&doc.save().unwrap()).unwrap())
        .unwrap();
    let mut ours = AutoCommit::load(&doc.save().unwrap()).unwrap();
    assert_eq!(ours.get_heads(), back.get_heads());

    // Bytes that are not Automerge: InvalidInput, and nothing changes.
    let heads = doc.heads().unwrap();
    let e = docs
        .import(b"not automerge", Reach::Cluster)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    let e = doc.merge(b"\x85\x6f\x4a\x83garbage").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert_eq!(doc.heads().unwrap(), heads);
    assert_eq!(docs.list().await.unwrap().len(), 1);
    node.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(&data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_survive_a_restart_encrypted_at_rest() {
    let data = dir("restart");
    let (a, b, c);
    {
        let node = start(&data).await;
        let docs = node.docs().unwrap();
        a = docs.create(Reach::Cluster).await.unwrap();
        b = docs.create(Reach::Private).await.unwrap();
        c = docs.create(Reach::Community).await.unwrap();
        let doc = docs.open(a).await.unwrap();
        doc.put("secret", "zebra-crossing-42").await.unwrap();
        // Enough changes to compact the log at least once.
        doc.put("n", Value::Counter(0)).await.unwrap();
        for _ in 0..300 {
            doc.increment("n", 1).await.unwrap();
        }
        docs.delete(c).await.unwrap();
        node.shutdown().await.unwrap();
    }
    // No plaintext in any file of the data dir.
    let mut files = Vec::new();
    for e in std::fs::read_dir(data.join("docs")).unwrap() {
        files.push(e.unwrap().path());
    }
    assert!(!files.is_empty());
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        assert!(
            !bytes.windows(17).any(|w| w == b"zebra-crossing-42"),
            "{} holds plaintext",
            f.display()
        );
    }
    let node = start(&data).await;
    let docs = node.docs().unwrap();
    let mut ids: Vec<_> = docs
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|i| (i.id, i.reach))
        .collect();
    ids.sort();
    let mut want = vec![(a, Reach::Cluster), (b, Reach::Private)];
    want.sort();
    assert_eq!(ids, want);
    let doc = docs.open(a).await.unwrap();
    assert_eq!(
        doc.get("secret").unwrap(),
        Some(Value::Str("zebra-crossing-42".into()))
    );
    assert_eq!(doc.get("n").unwrap(), Some(Value::Counter(300)));
    assert_eq!(docs.open(c).await.unwrap_err().kind(), ErrorKind::NotFound);
    // Edits after the restart append to the same log.
    doc.put("after", true).await.unwrap();
    node.shutdown().await.unwrap();
    let node = start(&data).await;
    let doc = node.docs().unwrap().open(a).await.unwrap();
    assert_eq!(doc.get("after").unwrap(), Some(Value::Bool(true)));
    node.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(&data);
}

// Issue 15 asks for memory-only documents without a data dir: this test replaces
// `without_a_data_dir_documents_are_unsupported` (that refusal is gone).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_data_dir_documents_live_in_memory() {
    let node = builder("nodir").start().await.unwrap();
    let docs = node.docs().unwrap();
    let empty = docs.stats().await.unwrap();
    assert_eq!(
        (empty.documents, empty.bytes, empty.persistent),
        (0, 0, false)
    );
    let id = docs.create(Reach::Cluster).await.unwrap();
    let doc = docs.open(id).await.unwrap();
    doc.put("title", "in memory").await.unwrap();
    doc.put("n", Value::Counter(1)).await.unwrap();
    doc.increment("n", 2).await.unwrap();
    assert_eq!(doc.get("n").unwrap(), Some(Value::Counter(3)));
    let copy = docs
        .import(&doc.save().unwrap(), Reach::Private)
        .await
        .unwrap();
    let list = docs.list().await.unwrap();
    assert_eq!(list.len(), 2);
    let stats = docs.stats().await.unwrap();
    assert_eq!(stats.documents, 2);
    assert!(!stats.persistent);
    assert!(stats.bytes > 0, "{stats:?}");
    // Many edits: compaction in memory keeps the size near a snapshot's.
    for i in 0..300 {
        doc.put("i", i as i64).await.unwrap();
    }
    let grown = docs.stats().await.unwrap();
    assert!(grown.bytes > stats.bytes, "{grown:?} vs {stats:?}");
    assert_eq!(docs.sync_status().await.unwrap().len(), 2);
    docs.delete(copy).await.unwrap();
    assert_eq!(
        docs.open(copy).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(docs.stats().await.unwrap().documents, 1);
    node.shutdown().await.unwrap();
    assert_eq!(node.docs().unwrap_err().kind(), ErrorKind::Closed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_say_documents_are_persistent_with_a_data_dir() {
    let data = dir("stats");
    let node = start(&data).await;
    let docs = node.docs().unwrap();
    let id = docs.create(Reach::Cluster).await.unwrap();
    docs.open(id).await.unwrap().put("k", "v").await.unwrap();
    let stats = docs.stats().await.unwrap();
    assert_eq!(stats.documents, 1);
    assert!(stats.persistent);
    assert!(stats.bytes > 0);
    node.shutdown().await.unwrap();
    // After a restart the size is what the log holds.
    let node = start(&data).await;
    let again = node.docs().unwrap().stats().await.unwrap();
    assert_eq!(again.documents, 1);
    assert_eq!(again.bytes, stats.bytes);
    node.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(&data);
}

/// `n` bytes that do not compress.
fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_over_docs_max_bytes_is_refused() {
    let cap = 64 * 1024;
    let node = builder("cap").docs_max_bytes(cap).start().await.unwrap();
    let docs = node.docs().unwrap();
    let id = docs.create(Reach::Cluster).await.unwrap();
    let doc = docs.open(id).await.unwrap();
    doc.put("a", noise(40 * 1024, 1)).await.unwrap();
    let heads = doc.heads().unwrap();
    // A local edit that would take it past the cap.
    let e = doc.put("b", noise(40 * 1024, 2)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::QuotaExceeded, "{e}");
    assert!(e.message().contains("docs_max_bytes"), "{e}");
    let e = doc
        .splice_text("nothing-yet", 0, 0, &"x".repeat(100 * 1024))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::QuotaExceeded, "{e}");
    assert_eq!(doc.heads().unwrap(), heads, "refused edits change nothing");
    // Small edits still pass.
    doc.put("small", 1i64).await.unwrap();
    let heads = doc.heads().unwrap();
    // An import or a merge that would exceed it.
    let mut big = AutoCommit::new();
    big.put(&ROOT, "blob", noise(100 * 1024, 3)).unwrap();
    let saved = big.save();
    let e = docs.import(&saved, Reach::Cluster).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::QuotaExceeded, "{e}");
    let e = doc.merge(&saved).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::QuotaExceeded, "{e}");
    assert_eq!(doc.heads().unwrap(), heads);
    assert_eq!(docs.list().await.unwrap().len(), 1);
    // A merge of what it already has adds nothing and passes.
    doc.merge(&doc.save().unwrap()).await.unwrap();
    node.shutdown().await.unwrap();
    // Zero is refused, naming the option.
    let e = builder("zero").docs_max_bytes(0).start().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(e.message().contains("docs_max_bytes"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_reach_survives_restarts_and_compaction() {
    let data = dir("reach");
    let id;
    {
        let node = start(&data).await;
        let docs = node.docs().unwrap();
        id = docs.create(Reach::Cluster).await.unwrap();
        docs.set_reach(id, Reach::Private).await.unwrap();
        assert_eq!(docs.open(id).await.unwrap().reach(), Reach::Private);
        node.shutdown().await.unwrap();
    }
    {
        let node = start(&data).await;
        let docs = node.docs().unwrap();
        let doc = docs.open(id).await.unwrap();
        assert_eq!(doc.reach(), Reach::Private);
        doc.set_reach(Reach::Commons).await.unwrap();
        // Enough changes to compact the log: the snapshot keeps the new reach.
        doc.put("n", Value::Counter(0)).await.unwrap();
        for _ in 0..260 {
            doc.increment("n", 1).await.unwrap();
        }
        node.shutdown().await.unwrap();
    }
    let node = start(&data).await;
    let docs = node.docs().unwrap();
    let doc = docs.open(id).await.unwrap();
    assert_eq!(doc.reach(), Reach::Commons);
    assert_eq!(doc.get("n").unwrap(), Some(Value::Counter(260)));
    let missing = memmesh::DocId([9u8; 16]);
    assert_eq!(
        docs.set_reach(missing, Reach::Cluster)
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );
    node.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(&data);
}
