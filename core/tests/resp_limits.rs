//! The Redis front's configurable limits (`NodeConfig::redis_limits`): each one, lowered,
//! refuses clearly; a subscriber that does not read its messages is disconnected once its
//! output buffer is over the limit; `PUBSUB` introspection.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use common::*;
use memmesh::resp::{parse, write, Protocol, RespLimits, Value};
use memmesh::Node;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Client {
    stream: TcpStream,
    buf: BytesMut,
}

impl Client {
    async fn connect(node: &Node) -> Client {
        let addr: SocketAddr = node.redis_addr().expect("a Redis listener");
        Client {
            stream: TcpStream::connect(addr).await.unwrap(),
            buf: BytesMut::new(),
        }
    }

    async fn send(&mut self, args: &[&[u8]]) {
        let mut out = BytesMut::new();
        let frame = Value::Array(
            args.iter()
                .map(|a| Value::Bulk(Bytes::copy_from_slice(a)))
                .collect(),
        );
        write(&mut out, &frame, Protocol::Resp2);
        self.stream.write_all(&out).await.unwrap();
    }

    /// The next reply, or `None` once the server closed the connection.
    async fn read(&mut self) -> Option<Value> {
        loop {
            if let Some((v, used)) = parse(&self.buf, &RespLimits::default()).unwrap() {
                let _ = self.buf.split_to(used);
                return Some(v);
            }
            let n =
                tokio::time::timeout(Duration::from_secs(60), self.stream.read_buf(&mut self.buf))
                    .await
                    .expect("a reply in time")
                    .unwrap_or(0);
            if n == 0 {
                return None;
            }
        }
    }

    async fn cmd(&mut self, args: &[&str]) -> Value {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.send(&args).await;
        self.read().await.expect("a reply")
    }
}

fn bulk(s: &str) -> Value {
    Value::Bulk(Bytes::copy_from_slice(s.as_bytes()))
}

fn error(v: Option<Value>) -> String {
    match v {
        Some(Value::Error(e)) => e,
        other => panic!("not an error: {other:?}"),
    }
}

async fn node_with(limits: RespLimits) -> Node {
    builder("limits")
        .redis_listen("127.0.0.1:0")
        .redis_limits(limits)
        .start()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_lowered_limit_refuses_clearly() {
    let node = node_with(RespLimits {
        max_bulk: 10,
        max_array: 4,
        max_clients: 2,
        ..RespLimits::default()
    })
    .await;
    // A bulk string over max_bulk: the protocol error, then the connection is closed.
    let mut c = Client::connect(&node).await;
    assert_eq!(
        c.cmd(&["SET", "k", "0123456789"]).await,
        Value::Simple("OK".into())
    );
    c.send(&[b"SET", b"k", b"0123456789a"]).await;
    assert_eq!(
        error(c.read().await),
        "ERR Protocol error: invalid bulk length (11 > 10)"
    );
    assert_eq!(c.read().await, None);
    // More arguments than max_array.
    let mut c = Client::connect(&node).await;
    assert_eq!(
        c.cmd(&["MGET", "a", "b", "k"]).await,
        Value::Array(vec![Value::Null, Value::Null, bulk("0123456789")])
    );
    c.send(&[b"MGET", b"a", b"b", b"c", b"k"]).await;
    assert_eq!(
        error(c.read().await),
        "ERR Protocol error: invalid multibulk length (5 > 4)"
    );
    assert_eq!(c.read().await, None);
    // More clients than max_clients: the third is refused and closed.
    let mut one = Client::connect(&node).await;
    let mut two = Client::connect(&node).await;
    assert_eq!(one.cmd(&["PING"]).await, Value::Simple("PONG".into()));
    assert_eq!(two.cmd(&["PING"]).await, Value::Simple("PONG".into()));
    let mut three = Client::connect(&node).await;
    assert_eq!(
        error(three.read().await),
        "ERR max number of clients reached"
    );
    assert_eq!(three.read().await, None);
    // Once one leaves, a new client is served again.
    drop(one);
    let mut again = false;
    for _ in 0..200 {
        let mut c = Client::connect(&node).await;
        c.send(&[b"PING"]).await;
        if c.read().await == Some(Value::Simple("PONG".into())) {
            again = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(again, "a client was admitted after one left");
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_does_not_read_is_disconnected_over_its_output_limit() {
    let node = node_with(RespLimits {
        max_output: 64 * 1024,
        ..RespLimits::default()
    })
    .await;
    let mut slow = Client::connect(&node).await;
    let mut reader = Client::connect(&node).await;
    let mut publisher = Client::connect(&node).await;
    for c in [&mut slow, &mut reader] {
        assert_eq!(
            c.cmd(&["SUBSCRIBE", "feed"]).await,
            Value::Array(vec![bulk("subscribe"), bulk("feed"), Value::Integer(1)])
        );
    }
    assert_eq!(
        publisher.cmd(&["PUBSUB", "CHANNELS"]).await,
        Value::Array(vec![bulk("feed")])
    );
    assert_eq!(
        publisher.cmd(&["PUBSUB", "NUMSUB", "feed", "other"]).await,
        Value::Array(vec![
            bulk("feed"),
            Value::Integer(2),
            bulk("other"),
            Value::Integer(0)
        ])
    );
    assert_eq!(
        publisher.cmd(&["PUBSUB", "NUMPAT"]).await,
        Value::Integer(0)
    );
    // `slow` never reads: once the socket's buffers are full, its queue grows past 64 KiB
    // and it is closed. `reader` reads every message and stays.
    let payload = "x".repeat(16 * 1024);
    let mut dropped = false;
    for i in 0..4000 {
        let n = publisher.cmd(&["PUBLISH", "feed", &payload]).await;
        let msg = reader.read().await.expect("a message for the reader");
        assert_eq!(
            msg,
            Value::Array(vec![bulk("message"), bulk("feed"), bulk(&payload)]),
            "message {i}"
        );
        if n == Value::Integer(1) {
            dropped = true;
            break;
        }
    }
    assert!(dropped, "the slow subscriber was disconnected");
    // What was written before is still readable, then the connection ends.
    let mut ended = false;
    for _ in 0..10_000 {
        if slow.read().await.is_none() {
            ended = true;
            break;
        }
    }
    assert!(ended, "the slow subscriber's connection was closed");
    let mut numsub = Value::Null;
    for _ in 0..500 {
        numsub = publisher.cmd(&["PUBSUB", "NUMSUB", "feed"]).await;
        if numsub == Value::Array(vec![bulk("feed"), Value::Integer(1)]) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(numsub, Value::Array(vec![bulk("feed"), Value::Integer(1)]));
    assert!(error(Some(publisher.cmd(&["PUBSUB", "NOSUCH"]).await)).contains("PUBSUB HELP"));
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_gets_and_sets_answer_as_one_by_one() {
    let node = builder("batches")
        .redis_listen("127.0.0.1:0")
        .max_message_size(64 * 1024)
        .start()
        .await
        .unwrap();
    let mut c = Client::connect(&node).await;
    let big = vec![b'v'; 128 * 1024];
    // One write: the runs of SETs and of GETs are each served as one batch.
    let mut frames = BytesMut::new();
    for cmd in [
        &[&b"SET"[..], b"k", b"1"][..],
        &[b"SET", b"k", b"2"],
        &[b"SET", b"big", &big],
        &[b"SET", b"j", b"x"],
        &[b"GET", b"k"],
        &[b"GET", b"j"],
        &[b"GET", b"nope"],
        &[b"GET", b"big"],
        &[b"INCR", b"n"],
        &[b"GET", b"n"],
        &[b"SET", b"\xff", b"binary key"],
        &[b"GET", b"k"],
    ] {
        let frame = Value::Array(
            cmd.iter()
                .map(|a| Value::Bulk(Bytes::copy_from_slice(a)))
                .collect(),
        );
        write(&mut frames, &frame, Protocol::Resp2);
    }
    c.stream.write_all(&frames).await.unwrap();
    let ok = || Value::Simple("OK".into());
    assert_eq!(c.read().await, Some(ok()));
    assert_eq!(c.read().await, Some(ok()));
    // The value over max_message_size is refused alone; the SETs around it succeed.
    assert!(error(c.read().await).starts_with("ERR "));
    assert_eq!(c.read().await, Some(ok()));
    assert_eq!(c.read().await, Some(bulk("2")));
    assert_eq!(c.read().await, Some(bulk("x")));
    assert_eq!(c.read().await, Some(Value::Null));
    assert_eq!(c.read().await, Some(Value::Null));
    assert_eq!(c.read().await, Some(Value::Integer(1)));
    assert_eq!(c.read().await, Some(bulk("1")));
    assert_eq!(error(c.read().await), "ERR memmesh keys must be UTF-8 text");
    assert_eq!(c.read().await, Some(bulk("2")));
    node.shutdown().await.unwrap();
}
