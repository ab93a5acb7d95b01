//! Pulling published content (or a block) from a peer: the fetcher opens the stream, the
//! source answers with what it has, the fetcher says which chunks it already verified
//! (resume), and the source streams the rest, verified chunk by chunk on arrival.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::error::{Error, ErrorKind, Result};
use crate::identity::NodeId;
use crate::node::connect::connection;
use crate::service::ChunkWriter;
use crate::transfer::error::TransferError;
use crate::transfer::limits::check_receive_chunk_size;
use crate::transfer::messages::{Answer, Found};
use crate::transfer::partials::partial_key;
use crate::transfer::progress::Reporter;
use crate::transfer::receive::{accept, check_name, take_chunks};
use crate::transfer::send::{stream, Streaming};
use crate::transfer::service::TransferService;
use crate::transfer::sink::{complete, open_sink, Sink};
use crate::transfer::source::{Prepared, Reader};
use crate::transfer::state::{usable, Checkpoint};
use crate::transfer::verify::{Verifier, DEFAULT_CHUNK_SIZE};
use crate::transfer::{Direction, Offer, Received, Source};
use crate::transport::errors::connection_error;
use crate::wire::codec::{decode_bulk, encode_bulk, FrameLimits};
use crate::wire::io::{read_frame, write_frame};
use crate::wire::{Reply, Service, StreamHeader};

/// Parses a content id: `blake3:<64 hex>` (or the bare hex).
pub(crate) fn parse_id(id: &str) -> Result<[u8; 32]> {
    let hex = id.strip_prefix("blake3:").unwrap_or(id);
    data_encoding::HEXLOWER_PERMISSIVE
        .decode(hex.as_bytes())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| TransferError::BadId(id.to_string()).into())
}

/// What this node serves under `id`: published content, else a block it holds, else a
/// file of its store.
async fn lookup(shared: &TransferService, id: &[u8; 32]) -> Result<Option<(String, Prepared)>> {
    if let Some(found) = shared.transfers.published(id) {
        return Ok(Some(found));
    }
    let Some(data) = shared.content(id) else {
        let Some(store) = shared.stored(id) else {
            return Ok(None);
        };
        let name = format!("file-{}", &data_encoding::HEXLOWER.encode(id)[..12]);
        return Ok(Some((name, Prepared::Stored { digest: *id, store })));
    };
    // A block's name: the first 12 hex digits of its id (`blake3:<hex>`).
    let name = format!("block-{}", &data_encoding::HEXLOWER.encode(id)[..12]);
    Ok(Some((name, Prepared::new(&Source::Bytes(data)).await?)))
}

/// Serves a fetch stream opened by `from` (within [`MAX_SERVED_PER_PEER`] at once per
/// peer; a fetcher that stops answering or reading is dropped after the idle timeout).
///
/// [`MAX_SERVED_PER_PEER`]: crate::transfer::limits::MAX_SERVED_PER_PEER
pub(crate) async fn serve(
    shared: Arc<TransferService>,
    from: NodeId,
    id: [u8; 32],
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
) {
    let limits = FrameLimits::with_body(DEFAULT_CHUNK_SIZE as usize);
    let idle = shared.transfers.idle();
    let outcome = async {
        let _slot = shared.transfers.served_slots.take(&from)?;
        let Some((name, source)) = lookup(&shared, &id).await? else {
            return Err(TransferError::NotPublished(data_encoding::HEXLOWER.encode(&id)).into());
        };
        let (reader, _, size) = Reader::open(&source).await?;
        let found = Found {
            name: name.clone(),
            size,
            chunk_size: DEFAULT_CHUNK_SIZE,
        };
        within(
            idle,
            write_frame(&mut send, &Reply::Ok, &encode_bulk(&found)?, limits),
        )
        .await?;
        let resume = match within(idle, read_frame::<Answer>(&mut recv, limits))
            .await?
            .header
        {
            Answer::Accept { resume } => resume,
            Answer::Reject { .. } => return Ok(()),
        };
        let mut sent = 0;
        let what = Streaming {
            peer: from,
            name: &name,
            size,
            chunk_size: DEFAULT_CHUNK_SIZE,
            resume,
            idle,
        };
        stream(&shared, reader, what, &mut send, &mut sent).await?;
        let _ = send.finish();
        // Wait for the fetcher to read everything (it closes its side when done).
        let _ = tokio::time::timeout(idle, recv.read_to_end(0)).await;
        Ok(())
    }
    .await;
    if let Err(e) = outcome {
        debug!(peer = %from.short(), error = %e, "fetch not served");
        let reply = Reply::from_error(&e);
        let _ = tokio::time::timeout(idle, write_frame(&mut send, &reply, &[], limits)).await;
        let _ = send.finish();
    }
}

/// `fut`, or `Timeout` once `idle` passes without it completing.
pub(crate) async fn within<T>(
    idle: Duration,
    fut: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    tokio::time::timeout(idle, fut)
        .await
        .map_err(|_| TransferError::Idle(idle.as_secs()))?
}

/// Where a fetch goes.
pub(crate) enum FetchInto {
    /// A file (through a partial file of its own: resumable).
    Path(PathBuf),
    /// Memory, charged to the quota.
    Memory,
    /// A writer another service lent (the files store).
    Writer(Box<dyn ChunkWriter>),
}

/// Fetches `id` from `peer` into `into` (a file path, or memory when `None`).
pub(crate) async fn fetch(
    shared: &Arc<TransferService>,
    id: [u8; 32],
    peer: NodeId,
    into: Option<PathBuf>,
) -> Result<Received> {
    let into = match into {
        Some(path) => FetchInto::Path(path),
        None => FetchInto::Memory,
    };
    fetch_to(shared, id, peer, into).await
}

/// Fetches `id` from `peer` into `into`.
pub(crate) async fn fetch_to(
    shared: &Arc<TransferService>,
    id: [u8; 32],
    peer: NodeId,
    into: FetchInto,
) -> Result<Received> {
    let idle = shared.transfers.idle();
    let limits = FrameLimits::with_body(DEFAULT_CHUNK_SIZE as usize);
    let conn = connection(&shared.node, peer).await?;
    let (mut send, mut recv) = conn.open_bi().await.map_err(|e| connection_error(&e))?;
    let header = StreamHeader::new(Service::Fetch { id });
    within(idle, write_frame(&mut send, &header, &[], limits)).await?;
    let first = within(idle, read_frame::<Reply>(&mut recv, limits)).await?;
    first.header.into_result()?;
    let found: Found = decode_bulk(&first.body)?;
    // What the source says is checked with the bounds of a pushed transfer.
    check_name(&found.name)?;
    check_receive_chunk_size(found.chunk_size)?;
    let limits = FrameLimits::with_body(found.chunk_size as usize);
    let mut verifier = Verifier::new(found.size, found.chunk_size)?;
    // The partial file belongs to this source: a source that sent wrong chunks cannot
    // spoil a later fetch of the same content from another one.
    let key = partial_key(peer.as_bytes(), &id);
    let stop = CancellationToken::new();
    let fetched = async {
        let target = match into {
            FetchInto::Path(path) => {
                let claims = &shared.transfers.claims;
                let target = claims
                    .open(&path, key, found.size, found.chunk_size, &stop, idle)
                    .await?;
                Ok(Some((path, target)))
            }
            FetchInto::Memory => Ok(None),
            FetchInto::Writer(w) => Err(w),
        };
        let size = found.size;
        let mut sink = match target {
            Ok(target) => open_sink(
                target,
                key,
                size,
                found.chunk_size,
                &mut verifier,
                &shared.budget,
            )
            .map_err(|e| match e.kind() {
                ErrorKind::QuotaExceeded => {
                    TransferError::FetchIntoFile(e.message().to_string()).into()
                }
                _ => e,
            })?,
            Err(writer) => {
                let (size, chunk_size) = (found.size, found.chunk_size);
                let (writer, kept) = resume_point(writer, key, size, chunk_size).await?;
                if let Some(c) = kept {
                    verifier.resume(c.tree)?;
                    debug!(
                        chunks = verifier.next(),
                        "resuming a fetch into a lent writer"
                    );
                }
                Sink::writer(writer, key, size, chunk_size)
            }
        };
        within(
            idle,
            write_frame(&mut send, &accept(&verifier), &[], limits),
        )
        .await?;
        let mut progress =
            Reporter::new(shared, peer, &found.name, found.size, Direction::Receiving);
        let hash = take_chunks(verifier, &mut sink, &mut recv, limits, &mut progress, idle).await?;
        if hash != id {
            sink.discard();
            return Err(Error::from(TransferError::FetchedHash));
        }
        let _ = send.finish();
        let (path, data) = complete(sink, &shared.transfers.claims).await?;
        Ok((hash, path, data))
    };
    let (hash, path, data) = tokio::select! {
        r = fetched => r?,
        _ = stop.cancelled() => return Err(TransferError::Superseded {
            by: "a newer fetch of the same content into the same file",
        }
        .into()),
    };
    Ok(Received {
        offer: Offer {
            from: peer,
            id: data_encoding::HEXLOWER.encode(&id),
            name: found.name,
            size: found.size,
        },
        hash: format!("blake3:{}", data_encoding::HEXLOWER.encode(&hash)),
        path,
        data,
    })
}

/// Asks a lent writer where it resumes the fetch `key` of `size` bytes in chunks of
/// `chunk_size` (on a blocking thread: it may read its partial content back); returns
/// it with the checkpoint it continues from, if any.
async fn resume_point(
    mut writer: Box<dyn ChunkWriter>,
    key: [u8; 32],
    size: u64,
    chunk_size: u32,
) -> Result<(Box<dyn ChunkWriter>, Option<Checkpoint>)> {
    tokio::task::spawn_blocking(move || {
        let fits =
            |bytes: u64, state: &[u8]| usable(state, bytes, &key, size, chunk_size).is_some();
        let kept = writer.resume_point(&fits)?;
        let checkpoint =
            match kept {
                Some(state) => {
                    let bytes = Checkpoint::decode(&state).map_or(u64::MAX, |c| c.bytes());
                    Some(usable(&state, bytes, &key, size, chunk_size).ok_or(
                        TransferError::Bug("a lent writer resumed from a state it was refused"),
                    )?)
                }
                None => None,
            };
        Ok((writer, checkpoint))
    })
    .await
    .map_err(|e| TransferError::task("resuming", e))?
}

/// The content hash of `source` (reads a file through once).
pub(crate) async fn content_hash(source: &Prepared) -> Result<[u8; 32]> {
    match source {
        Prepared::Bytes { tree, .. } => Ok(tree.root),
        Prepared::Stored { digest, .. } => Ok(*digest),
        Prepared::Path(path) => {
            let path = path.clone();
            tokio::task::spawn_blocking(move || {
                let mut hasher = blake3::Hasher::new();
                let file = std::fs::File::open(&path)
                    .map_err(|e| TransferError::file(format!("opening {}", path.display()), e))?;
                hasher.update_reader(file)?;
                Ok(*hasher.finalize().as_bytes())
            })
            .await
            .map_err(|e| TransferError::task("hashing", e))?
        }
    }
}
