//! The memmesh side: two nodes on 127.0.0.1 with an echo channel, requests from A to B,
//! and local calls (A to itself, the in-process path).

use std::future::Future;

use anyhow::{Context, Result};
use bytes::Bytes;
use futures::executor::block_on;
use memmesh::{Channel, Node, NodeId, Request};
use tokio::runtime::Handle;

use crate::load::CallFuture;

/// The channel both nodes answer on.
pub const CHANNEL: &str = "echo";

/// Two connected nodes; both answer requests on [`CHANNEL`] with the payload.
pub struct MeshPair {
    a: Node,
    b: Node,
    b_id: NodeId,
    channel: Channel,
}

async fn echo(req: Request) -> memmesh::Result<Bytes> {
    Ok(req.data)
}

fn start_node(name: &str, threads: usize) -> Result<Node> {
    Node::builder()
        .name(name)
        .listen("127.0.0.1:0")
        .mdns(false)
        .threads(threads)
        .start_blocking()
        .with_context(|| format!("starting node {name}"))
}

impl MeshPair {
    /// Starts nodes A and B (each with `threads` runtime workers), installs the echo
    /// handlers and connects A to B. Call from a thread without an async runtime.
    pub fn start(threads: usize) -> Result<Self> {
        let a = start_node("bench-a", threads)?;
        let b = start_node("bench-b", threads)?;
        b.channel(CHANNEL)?.on_request(echo);
        let channel = a.channel(CHANNEL)?;
        channel.on_request(echo);
        let b_id =
            block_on(a.connect(&b.addr().to_string())).context("connecting node A to node B")?;
        Ok(Self {
            a,
            b,
            b_id,
            channel,
        })
    }

    /// Node A's runtime, where the load tasks run (the caller's side, as in the quinn
    /// baseline).
    pub fn handle(&self) -> Handle {
        self.a.runtime_handle()
    }

    /// `Channel::request` from A to B.
    pub fn remote_call(&self) -> impl Fn(Bytes) -> CallFuture + Clone + Send + Sync + 'static {
        Self::call_to(self.channel.clone(), self.b_id)
    }

    /// `Channel::request` from A to A itself (no network: the in-process path).
    pub fn local_call(&self) -> impl Fn(Bytes) -> CallFuture + Clone + Send + Sync + 'static {
        Self::call_to(self.channel.clone(), self.a.id())
    }

    /// The local call, blocking: `futures::executor::block_on` from the calling thread
    /// (as a synchronous binding API drives it).
    pub fn local_call_blocking(&self) -> impl Fn(Bytes) -> Result<Bytes> + Clone + Send + 'static {
        let channel = self.channel.clone();
        let id = self.a.id();
        move |data| Ok(block_on(channel.request(id, data, None))?)
    }

    fn call_to(
        channel: Channel,
        peer: NodeId,
    ) -> impl Fn(Bytes) -> CallFuture + Clone + Send + Sync + 'static {
        move |data| {
            let channel = channel.clone();
            Box::pin(async move { Ok(channel.request(peer, data, None).await?) })
        }
    }

    /// Replaces B's echo handler (tests use this to check that a wrong reply is caught).
    pub fn set_remote_handler<F, Fut>(&self, handler: F) -> Result<()>
    where
        F: Fn(Request) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = memmesh::Result<Bytes>> + Send + 'static,
    {
        self.b.channel(CHANNEL)?.on_request(handler);
        Ok(())
    }

    /// Shuts both nodes down.
    pub fn shutdown(self) -> Result<()> {
        self.a.shutdown_blocking()?;
        self.b.shutdown_blocking()?;
        Ok(())
    }
}
