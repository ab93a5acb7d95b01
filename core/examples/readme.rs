//! The Rust snippet of the repository's README.md, compiled by `cargo test` and
//! `cargo clippy --all-targets` (examples are built, not run: it sends a file that may
//! not exist and writes into /var/lib). The lines between the `README` markers must be
//! exactly the README's ```rust block, indented by four spaces (`ci/test-packages`
//! compares them); rustfmt leaves them as written.
#![allow(unused_variables)]

#[rustfmt::skip]
#[tokio::main]
async fn main() -> memmesh::Result<()> {
    // README:begin
    use memmesh::{Node, Request};

    let a = Node::builder().name("a").listen("127.0.0.1:0").cluster_secret("s3cret").start().await?;
    let b = Node::builder().name("b").listen("127.0.0.1:0").cluster_secret("s3cret").start().await?;
    b.channel("echo")?.on_request(|req: Request| async move { Ok(req.data) });
    let b_id = a.connect(&b.addr().to_string()).await?;
    let reply = a.channel("echo")?.request(b_id, "hello", None).await?;
    a.channel("chat")?.send("hi", b_id).await?;          // b: b.channel("chat")?.recv().await?

    let id = a.blocks()?.put(vec![0u8; 4096], memmesh::Placement::Peer(b_id)).await?;
    let block = b.blocks()?.get(&id).await?;             // "blake3:…" ids, verified
    let sessions = a.cache("sessions", Some(memmesh::CacheOptions { replicas: 2, ..Default::default() })).await?;
    sessions.set("user:1", "alice", None).await?;
    assert_eq!(b.cache("sessions", None).await?.get("user:1").await?.as_deref(), Some(&b"alice"[..]));

    use memmesh::transfer::{Destination, Offer, Source};
    b.transfer()?.on_offer(|offer: Offer| async move { Destination::Path(format!("/tmp/{}", offer.name).into()) });
    let results = a.transfer()?.send(Source::Path("big.iso".into()), &[b_id]).await?;  // one per peer
    assert!(results[0].error.is_none());                 // results[0].hash = "blake3:…" (b3sum)
    let id = a.transfer()?.publish(Source::Bytes(vec![7u8; 1 << 20].into())).await?;
    let got = b.transfer()?.fetch(&id, a.id(), None).await?;   // None: into memory (got.data)
    a.shutdown().await?;

    // Files persist in the data dir, encrypted at rest.
    let c = Node::builder().data_dir("/var/lib/myapp/memmesh").start().await?;
    let file = c.files()?.put_bytes(b"kept across restarts".to_vec(), Default::default()).await?;
    assert_eq!(&c.files()?.get_bytes(file).await?[..], b"kept across restarts");
    // README:end
    Ok(())
}
