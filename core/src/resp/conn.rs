//! One client connection: read what the client sent, run every complete command in order,
//! answer them all at once (pipelining), until the client leaves, breaks the protocol or
//! the node shuts down.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::resp::error::RespError;
use crate::resp::exec::{batchable, execute, execute_batch, forget, Outcome};
use crate::resp::front::{Admitted, Front};
use crate::resp::parse::parse_command;
use crate::resp::pubsub::{self, Delivery, SUBSCRIBER_QUEUE};
use crate::resp::session::Session;
use crate::resp::value::Value;
use crate::resp::write::write;

/// Replies are sent once this many bytes of them are waiting, even mid-batch.
const FLUSH_AT: usize = 1 << 20;

/// Why a connection ends.
enum End {
    /// The client closed it, quit, or the node is shutting down.
    Done,
    /// The client broke the protocol: answer with this error, then close.
    Protocol(String),
}

/// Serves the client at `peer` on `stream` until it leaves or `cancel` fires.
pub(crate) async fn serve(
    front: Arc<Front>,
    mut stream: TcpStream,
    peer: SocketAddr,
    cancel: CancellationToken,
    admitted: Admitted,
) {
    let _admitted = admitted;
    let _ = stream.set_nodelay(true);
    let (tx, mut rx) = mpsc::channel(SUBSCRIBER_QUEUE);
    let mut session = Session::new(front.next_id(), peer, front.needs_auth(), tx);
    let overflowed = session.mailbox.overflowed.clone();
    let end = tokio::select! {
        end = run(&front, &mut stream, &mut session, &mut rx) => end,
        _ = cancel.cancelled() => End::Done,
        // A subscriber over its output buffer limit is closed without a word, as Redis.
        _ = overflowed.cancelled() => End::Done,
    };
    forget(&front, &session);
    if let End::Protocol(msg) = end {
        debug!(%peer, error = %msg, "closing a RESP connection");
        let mut out = BytesMut::new();
        write(
            &mut out,
            &Value::err(format!("ERR Protocol error: {msg}")),
            session.proto,
        );
        let _ = tokio::time::timeout(front.limits.frame_timeout, stream.write_all(&out)).await;
    }
    let _ = stream.shutdown().await;
}

async fn flush(front: &Front, stream: &mut TcpStream, out: &mut BytesMut) -> Option<End> {
    if out.is_empty() {
        return None;
    }
    // A client that does not read its replies is dropped rather than buffered for.
    match tokio::time::timeout(front.limits.frame_timeout, stream.write_all(out)).await {
        Ok(Ok(())) => {
            out.clear();
            None
        }
        _ => Some(End::Done),
    }
}

/// Runs one command and queues its reply; `Some` when the connection must end.
async fn one(
    front: &Front,
    stream: &mut TcpStream,
    session: &mut Session,
    out: &mut BytesMut,
    args: Vec<Bytes>,
) -> Option<End> {
    let (replies, close) = match execute(front, session, args).await {
        Outcome::Reply(v) => (vec![v], false),
        Outcome::Close(v) => (vec![v], true),
        Outcome::Many(vs) => (vs, false),
    };
    for reply in &replies {
        write(out, reply, session.proto);
    }
    if close {
        let _ = flush(front, stream, out).await;
        return Some(End::Done);
    }
    if out.len() >= FLUSH_AT {
        return flush(front, stream, out).await;
    }
    None
}

async fn run(
    front: &Front,
    stream: &mut TcpStream,
    session: &mut Session,
    rx: &mut mpsc::Receiver<Delivery>,
) -> End {
    let limits = front.limits;
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let mut out = BytesMut::with_capacity(16 * 1024);
    loop {
        // Run every complete command received so far, in order; consecutive plain GETs
        // (or SETs) run as one batch.
        let mut broken = None;
        let mut cmds = VecDeque::new();
        loop {
            match parse_command(&buf, &limits) {
                Ok(Some((args, used))) => {
                    buf.advance(used);
                    if !args.is_empty() {
                        cmds.push_back(args);
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    broken = Some(e);
                    break;
                }
            }
        }
        while let Some(args) = cmds.pop_front() {
            let kind = batchable(session, &args);
            let mut batch = vec![args];
            if let Some(kind) = kind {
                while cmds
                    .front()
                    .is_some_and(|next| batchable(session, next) == Some(kind))
                {
                    batch.extend(cmds.pop_front());
                }
            }
            match kind {
                Some(kind) if batch.len() > 1 => {
                    for reply in execute_batch(front, session, kind, batch).await {
                        write(&mut out, &reply, session.proto);
                    }
                    if out.len() >= FLUSH_AT {
                        if let Some(end) = flush(front, stream, &mut out).await {
                            return end;
                        }
                    }
                }
                _ => {
                    for args in batch {
                        if let Some(end) = one(front, stream, session, &mut out, args).await {
                            return end;
                        }
                    }
                }
            }
        }
        if let Some(e) = broken {
            if let Some(end) = flush(front, stream, &mut out).await {
                return end;
            }
            return End::Protocol(e.to_string());
        }
        if let Some(end) = flush(front, stream, &mut out).await {
            return end;
        }
        if buf.len() > limits.max_pending {
            return End::Protocol(RespError::PendingTooLarge(limits.max_pending).to_string());
        }
        // A frame begun must be finished in time; between frames a client may idle.
        // Meanwhile, messages published on its subscriptions are written as they come.
        let partial = !buf.is_empty();
        buf.reserve(16 * 1024);
        let late = tokio::time::sleep(limits.frame_timeout);
        tokio::select! {
            read = stream.read_buf(&mut buf) => match read {
                Ok(0) | Err(_) => return End::Done,
                Ok(_) => {}
            },
            Some(d) = rx.recv() => {
                session.mailbox.written(&d);
                write(&mut out, &pubsub::message(d), session.proto);
                while out.len() < FLUSH_AT {
                    match rx.try_recv() {
                        Ok(d) => {
                            session.mailbox.written(&d);
                            write(&mut out, &pubsub::message(d), session.proto)
                        }
                        Err(_) => break,
                    }
                }
            }
            _ = late, if partial => {
                return End::Protocol("the client took too long to send a frame".into())
            }
        }
    }
}
