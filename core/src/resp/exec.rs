//! Commands mapped onto the cache (ADR 0021): one function per command family, each
//! taking the arguments of one command and returning its reply.

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::Bytes;
use tracing::debug;

use crate::cache::client;
use crate::cache::hlc::wall_ms;
use crate::cache::validate::check_key;
use crate::channel::send_one;
use crate::error::{Error, ErrorKind};
use crate::resp::command::{self, CommandSpec, COMMANDS};
use crate::resp::front::{bucket_name, Front, DATABASES};
use crate::resp::parse::parse_int;
use crate::resp::pubsub::{self, SubKind};
use crate::resp::session::Session;
use crate::resp::value::Value;
use crate::resp::write::Protocol;

/// The Redis version the front reports (`HELLO`, `INFO`): the command set and replies it
/// follows.
pub const REDIS_VERSION: &str = "7.2.0";

/// What a command asks of the connection besides its reply.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    /// Send the reply and go on.
    Reply(Value),
    /// Send the reply and close the connection (`QUIT`).
    Close(Value),
    /// Send these replies, in order (`SUBSCRIBE a b` confirms each channel).
    Many(Vec<Value>),
}

type Reply = std::result::Result<Value, Value>;

const NOT_INTEGER: &str = "ERR value is not an integer or out of range";
const SYNTAX: &str = "ERR syntax error";

fn err(e: Error) -> Value {
    match e.kind() {
        ErrorKind::Closed => Value::err("ERR the memmesh node is shutting down"),
        ErrorKind::Timeout | ErrorKind::PeerUnavailable => {
            Value::err(format!("TRYAGAIN {}", e.message()))
        }
        _ => Value::err(format!("ERR {}", e.message())),
    }
}

/// A key: memmesh keys are UTF-8 text of 1..=MAX_KEY_LEN bytes.
fn key(b: &Bytes) -> Result<String, Value> {
    let k = std::str::from_utf8(b)
        .map_err(|_| Value::err("ERR memmesh keys must be UTF-8 text"))?
        .to_string();
    check_key(&k).map_err(err)?;
    Ok(k)
}

fn int(b: &[u8]) -> Result<i64, Value> {
    parse_int(b).ok_or_else(|| Value::err(NOT_INTEGER))
}

fn is(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

/// A positive expire time in ms from `n` units of `unit_ms`, or Redis's error.
fn expire_ms(n: i64, unit_ms: i64, cmd: &str) -> Result<Duration, Value> {
    match n.checked_mul(unit_ms) {
        Some(ms) if ms > 0 => Ok(Duration::from_millis(ms as u64)),
        _ => Err(Value::err(format!(
            "ERR invalid expire time in '{cmd}' command"
        ))),
    }
}

/// What a pipelined run of commands may be merged into: consecutive plain `GET key`s
/// become one `get_many`, consecutive plain `SET key value`s one `set_many` (one round to
/// the owners instead of one per command). The replies are those the commands would get
/// one by one: reads see the writes before them, and a key set twice ends with the later
/// value (its version is stamped later).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Batch {
    /// `GET key`.
    Get,
    /// `SET key value`, no options.
    Set,
}

/// Whether `args` may join a batch of `session`'s: a plain `GET`/`SET` with a valid key,
/// from an authenticated client with no subscriptions (whose every command is checked
/// one by one).
pub(crate) fn batchable(session: &Session, args: &[Bytes]) -> Option<Batch> {
    if !session.authed || session.in_pubsub() {
        return None;
    }
    let name = args.first()?;
    let kind = match args.len() {
        2 if is(name, "GET") => Batch::Get,
        3 if is(name, "SET") => Batch::Set,
        _ => return None,
    };
    key(&args[1]).ok().map(|_| kind)
}

/// Runs a run of [`batchable`] commands of one `kind` as one cache operation, and
/// returns one reply per command, in order.
pub(crate) async fn execute_batch(
    front: &Front,
    session: &Session,
    kind: Batch,
    cmds: Vec<Vec<Bytes>>,
) -> Vec<Value> {
    let n = cmds.len();
    front
        .commands
        .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
    let b = match front.bucket(session.db).await {
        Ok(b) => b,
        Err(e) => return vec![err(e); n],
    };
    let mut keys = Vec::with_capacity(n);
    let mut values = Vec::with_capacity(n);
    for mut c in cmds {
        if kind == Batch::Set {
            values.push(c.pop().unwrap_or_default());
        }
        // `batchable` checked the key: a bad one cannot be here.
        match key(&c[1]) {
            Ok(k) => keys.push(k),
            Err(e) => return vec![e; n],
        }
    }
    match kind {
        Batch::Get => match client::get_many(&front.cache, &b, keys).await {
            Ok(found) => found.into_iter().map(Value::opt_bulk).collect(),
            Err(e) => vec![err(e); n],
        },
        Batch::Set => {
            let entries: Vec<(String, Bytes)> = keys.into_iter().zip(values).collect();
            match client::set_many(&front.cache, &b, entries.clone(), None).await {
                Ok(()) => vec![Value::ok(); n],
                // Refused before anything was sent (a value over the size limit): each
                // command gets its own answer, as one by one.
                Err(e) if e.kind() == ErrorKind::InvalidInput && n > 1 => {
                    let mut out = Vec::with_capacity(n);
                    for entry in entries {
                        out.push(
                            match client::set_many(&front.cache, &b, vec![entry], None).await {
                                Ok(()) => Value::ok(),
                                Err(e) => err(e),
                            },
                        );
                    }
                    out
                }
                Err(e) => vec![err(e); n],
            }
        }
    }
}

/// Runs one command (already split into arguments) for `session`.
pub async fn execute(front: &Front, session: &mut Session, args: Vec<Bytes>) -> Outcome {
    let Some(name) = args.first() else {
        return Outcome::Reply(Value::err("ERR empty command"));
    };
    let Some(spec) = command::lookup(name) else {
        return Outcome::Reply(command::unknown(&args));
    };
    if !spec.arity_ok(args.len()) {
        return Outcome::Reply(command::wrong_arity(spec.name));
    }
    if !session.authed && !spec.no_auth {
        return Outcome::Reply(Value::err("NOAUTH Authentication required."));
    }
    front
        .commands
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    if spec.name == "quit" {
        return Outcome::Close(Value::ok());
    }
    let subscribed = session.in_pubsub() && session.proto == Protocol::Resp2;
    if subscribed {
        if spec.name == "ping" {
            let msg = args.get(1).cloned().unwrap_or_default();
            return Outcome::Reply(Value::Array(vec![Value::bulk("pong"), Value::Bulk(msg)]));
        }
        if !matches!(
            spec.name,
            "subscribe"
                | "unsubscribe"
                | "psubscribe"
                | "punsubscribe"
                | "ssubscribe"
                | "sunsubscribe"
        ) {
            return Outcome::Reply(Value::err(format!(
                "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / \
                 QUIT / RESET are allowed in this context",
                spec.name
            )));
        }
    }
    match spec.name {
        "subscribe" => return Outcome::Many(subscribe(front, session, SubKind::Channel, &args)),
        "psubscribe" => return Outcome::Many(subscribe(front, session, SubKind::Pattern, &args)),
        "ssubscribe" => return Outcome::Many(subscribe(front, session, SubKind::Shard, &args)),
        "unsubscribe" => {
            return Outcome::Many(unsubscribe(front, session, SubKind::Channel, &args))
        }
        "punsubscribe" => {
            return Outcome::Many(unsubscribe(front, session, SubKind::Pattern, &args))
        }
        "sunsubscribe" => return Outcome::Many(unsubscribe(front, session, SubKind::Shard, &args)),
        _ => {}
    }
    let reply = run(front, session, spec, &args).await;
    Outcome::Reply(reply.unwrap_or_else(|e| e))
}

async fn run(front: &Front, s: &mut Session, spec: &CommandSpec, a: &[Bytes]) -> Reply {
    match spec.name {
        "ping" => Ok(match a.get(1) {
            Some(m) => Value::Bulk(m.clone()),
            None => Value::Simple("PONG".into()),
        }),
        "echo" => Ok(Value::Bulk(a[1].clone())),
        "auth" => auth(front, s, a),
        "hello" => hello(front, s, a),
        "client" => client_cmd(s, a),
        "select" => {
            let db = int(&a[1])?;
            match u32::try_from(db) {
                Ok(db) if db < DATABASES => {
                    s.db = db;
                    Ok(Value::ok())
                }
                _ => Err(Value::err("ERR DB index is out of range")),
            }
        }
        "command" => command_cmd(a),
        "info" => Ok(info(front, s, a)),
        "config" => config(a),
        "dbsize" => {
            let b = front.bucket(s.db).await.map_err(err)?;
            let n = client::len(&front.cache, &b).await.map_err(err)?;
            Ok(Value::Integer(n.min(i64::MAX as u64) as i64))
        }
        "publish" => Ok(Value::Integer(
            publish(front, false, &a[1], &a[2]).await as i64,
        )),
        "spublish" => Ok(Value::Integer(
            publish(front, true, &a[1], &a[2]).await as i64,
        )),
        "pubsub" => pubsub_cmd(front, a),
        "flushdb" | "flushall" => flush(front, s, spec.name, a).await,
        _ => data(front, s, spec, a).await,
    }
}

/// `FLUSHDB [ASYNC|SYNC]` and `FLUSHALL [ASYNC|SYNC]` (both modes are synchronous):
/// refused unless `redis_allow_flush` is set; otherwise the selected database's bucket
/// (every database's that exists, for `FLUSHALL`) is cleared on every node of the cluster.
async fn flush(front: &Front, s: &Session, cmd: &str, a: &[Bytes]) -> Reply {
    match a.get(1..).unwrap_or_default() {
        [] => {}
        [mode] if is(mode, "ASYNC") || is(mode, "SYNC") => {}
        _ => return Err(Value::err(SYNTAX)),
    }
    if !front.allow_flush {
        return Err(Value::err(flush_refused(cmd)));
    }
    let dbs: Vec<u32> = if cmd == "flushdb" {
        vec![s.db]
    } else {
        (0..DATABASES)
            .filter(|&db| front.cache.cache.bucket(&bucket_name(db)).is_some())
            .collect()
    };
    for db in dbs {
        let b = front.bucket(db).await.map_err(err)?;
        crate::cache::clear::clear(&front.cache, &b)
            .await
            .map_err(err)?;
    }
    Ok(Value::ok())
}

/// The refusal of `FLUSHDB`/`FLUSHALL` on a node without `redis_allow_flush`.
fn flush_refused(cmd: &str) -> String {
    format!(
        "ERR {} is refused by this memmesh node: a database is a bucket shared by the whole \
         cluster, and a flush clears it on every node; set redis_allow_flush to allow it \
         (or delete keys with DEL)",
        cmd.to_ascii_uppercase()
    )
}

/// The commands that read or write the selected database's bucket.
async fn data(front: &Front, s: &Session, spec: &CommandSpec, a: &[Bytes]) -> Reply {
    let cache = &front.cache;
    let b = front.bucket(s.db).await.map_err(err)?;
    match spec.name {
        "get" => {
            let k = key(&a[1])?;
            Ok(Value::opt_bulk(
                client::get(cache, &b, &k).await.map_err(err)?,
            ))
        }
        "set" => set(front, s, a).await,
        "setex" | "psetex" => {
            let k = key(&a[1])?;
            let unit = if spec.name == "setex" { 1000 } else { 1 };
            let ttl = expire_ms(int(&a[2])?, unit, spec.name)?;
            client::set_many(cache, &b, vec![(k, a[3].clone())], Some(ttl))
                .await
                .map_err(err)?;
            Ok(Value::ok())
        }
        "getdel" => {
            let k = key(&a[1])?;
            let old = client::get(cache, &b, &k).await.map_err(err)?;
            if old.is_some() {
                client::delete(cache, &b, &k).await.map_err(err)?;
            }
            Ok(Value::opt_bulk(old))
        }
        "del" | "unlink" => {
            let keys = a[1..].iter().map(key).collect::<Result<Vec<_>, _>>()?;
            let deletes = keys.iter().map(|k| client::delete(cache, &b, k));
            let mut n = 0;
            for r in futures::future::join_all(deletes).await {
                n += i64::from(r.map_err(err)?);
            }
            Ok(Value::Integer(n))
        }
        "exists" => {
            let keys = a[1..].iter().map(key).collect::<Result<Vec<_>, _>>()?;
            let found = client::get_many(cache, &b, keys).await.map_err(err)?;
            Ok(Value::Integer(
                found.iter().filter(|v| v.is_some()).count() as i64
            ))
        }
        "expire" | "pexpire" => {
            if a.len() > 3 {
                return Err(Value::err(
                    "ERR memmesh supports EXPIRE without NX, XX, GT or LT",
                ));
            }
            let k = key(&a[1])?;
            let n = int(&a[2])?;
            let unit = if spec.name == "expire" { 1000 } else { 1 };
            let Some(ms) = n.checked_mul(unit) else {
                return Err(Value::err(format!(
                    "ERR invalid expire time in '{}' command",
                    spec.name
                )));
            };
            let existed = if ms <= 0 {
                client::delete(cache, &b, &k).await.map_err(err)?
            } else {
                client::expire(cache, &b, &k, Duration::from_millis(ms as u64))
                    .await
                    .map_err(err)?
            };
            Ok(Value::Integer(i64::from(existed)))
        }
        "ttl" | "pttl" => {
            let k = key(&a[1])?;
            let left = match client::ttl(cache, &b, &k).await {
                Ok(None) => return Ok(Value::Integer(-1)),
                Ok(Some(d)) => d,
                Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Value::Integer(-2)),
                Err(e) => return Err(err(e)),
            };
            let ms = i64::try_from(left.as_millis()).unwrap_or(i64::MAX);
            Ok(Value::Integer(if spec.name == "ttl" {
                ms.saturating_add(500) / 1000
            } else {
                ms
            }))
        }
        "persist" => {
            let k = key(&a[1])?;
            match client::ttl(cache, &b, &k).await {
                Ok(Some(_)) => {}
                Ok(None) => return Ok(Value::Integer(0)),
                Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Value::Integer(0)),
                Err(e) => return Err(err(e)),
            }
            // Not atomic (ADR 0021): read the value, write it back without a TTL.
            match client::get(cache, &b, &k).await.map_err(err)? {
                Some(v) => {
                    client::set_many(cache, &b, vec![(k, v)], None)
                        .await
                        .map_err(err)?;
                    Ok(Value::Integer(1))
                }
                None => Ok(Value::Integer(0)),
            }
        }
        "incr" | "decr" | "incrby" | "decrby" => {
            let k = key(&a[1])?;
            let by = match spec.name {
                "incr" => 1,
                "decr" => -1,
                "incrby" => int(&a[2])?,
                _ => int(&a[2])?
                    .checked_neg()
                    .ok_or_else(|| Value::err("ERR decrement would overflow"))?,
            };
            match client::incr(cache, &b, &k, by).await {
                Ok(n) => Ok(Value::Integer(n)),
                Err(e) if e.kind() == ErrorKind::InvalidInput => Err(Value::err(NOT_INTEGER)),
                Err(e) => Err(err(e)),
            }
        }
        "mget" => {
            // A key that is not valid as a memmesh key cannot exist: null, as Redis.
            let keys: Vec<Option<String>> = a[1..].iter().map(|k| key(k).ok()).collect();
            let valid: Vec<String> = keys.iter().flatten().cloned().collect();
            let mut found = client::get_many(cache, &b, valid)
                .await
                .map_err(err)?
                .into_iter();
            Ok(Value::Array(
                keys.iter()
                    .map(|k| match k {
                        Some(_) => Value::opt_bulk(found.next().flatten()),
                        None => Value::Null,
                    })
                    .collect(),
            ))
        }
        "mset" => {
            if a.len() % 2 != 1 {
                return Err(command::wrong_arity("mset"));
            }
            let mut entries = Vec::with_capacity(a.len() / 2);
            for pair in a[1..].chunks(2) {
                entries.push((key(&pair[0])?, pair[1].clone()));
            }
            client::set_many(cache, &b, entries, None)
                .await
                .map_err(err)?;
            Ok(Value::ok())
        }
        _ => Err(command::unknown(a)),
    }
}

/// `SET key value [NX|XX] [GET] [EX s|PX ms|EXAT t|PXAT t|KEEPTTL]`. NX, XX, GET and
/// KEEPTTL read before they write: not atomic (ADR 0021).
async fn set(front: &Front, s: &Session, a: &[Bytes]) -> Reply {
    let cache = &front.cache;
    let b = front.bucket(s.db).await.map_err(err)?;
    let k = key(&a[1])?;
    let value = a[2].clone();
    let (mut nx, mut xx, mut get, mut keep) = (false, false, false, false);
    // The expiry: a TTL, or an absolute time in ms since the epoch.
    let mut ttl: Option<Duration> = None;
    let mut at: Option<i64> = None;
    let mut i = 3;
    while i < a.len() {
        let o = &a[i];
        let timed = ttl.is_some() || at.is_some() || keep;
        if is(o, "NX") && !xx {
            nx = true;
        } else if is(o, "XX") && !nx {
            xx = true;
        } else if is(o, "GET") {
            get = true;
        } else if is(o, "KEEPTTL") && !timed {
            keep = true;
        } else if ["EX", "PX", "EXAT", "PXAT"].iter().any(|w| is(o, w)) && !timed {
            let n = int(a.get(i + 1).ok_or_else(|| Value::err(SYNTAX))?)?;
            i += 1;
            if is(o, "EX") {
                ttl = Some(expire_ms(n, 1000, "set")?);
            } else if is(o, "PX") {
                ttl = Some(expire_ms(n, 1, "set")?);
            } else {
                let unit = if is(o, "EXAT") { 1000 } else { 1 };
                at = Some(expire_ms(n, unit, "set")?.as_millis() as i64);
            }
        } else {
            return Err(Value::err(SYNTAX));
        }
        i += 1;
    }
    let old = if nx || xx || get {
        client::get(cache, &b, &k).await.map_err(err)?
    } else {
        None
    };
    let skipped = if get {
        Value::opt_bulk(old.clone())
    } else {
        Value::Null
    };
    if (nx && old.is_some()) || (xx && old.is_none()) {
        return Ok(skipped);
    }
    if let Some(at) = at {
        let left = at.saturating_sub(wall_ms().min(i64::MAX as u64) as i64);
        if left <= 0 {
            // Already past: the key ends up absent, as in Redis.
            client::delete(cache, &b, &k).await.map_err(err)?;
            return Ok(if get {
                Value::opt_bulk(old)
            } else {
                Value::ok()
            });
        }
        ttl = Some(Duration::from_millis(left as u64));
    }
    if keep {
        ttl = match client::ttl(cache, &b, &k).await {
            Ok(t) => t,
            Err(e) if e.kind() == ErrorKind::NotFound => None,
            Err(e) => return Err(err(e)),
        };
        // An entry about to expire: keep at least a millisecond (zero is refused).
        ttl = ttl.map(|t| t.max(Duration::from_millis(1)));
    }
    client::set_many(cache, &b, vec![(k, value)], ttl)
        .await
        .map_err(err)?;
    Ok(if get {
        Value::opt_bulk(old)
    } else {
        Value::ok()
    })
}

/// `PUBLISH` (or `SPUBLISH` when `shard`): to this node's subscribers, then to every
/// connected peer's RESP front (over the memmesh channel [`pubsub::MESH_CHANNEL`]).
/// Returns how many clients of this node received it, as Redis Cluster does.
async fn publish(front: &Front, shard: bool, channel: &Bytes, payload: &Bytes) -> usize {
    let here = if shard {
        front.subs.deliver_shard(channel, payload)
    } else {
        front.subs.deliver(channel, payload)
    };
    let msg = pubsub::encode(shard, channel, payload);
    let channels = &front.channels;
    let sends = channels.pool.connected().into_iter().map(|peer| {
        let msg = msg.clone();
        async move {
            if let Err(e) = send_one(channels, peer, pubsub::MESH_CHANNEL, msg).await {
                // A peer without a Redis listener has not opened the channel.
                debug!(peer = %peer.short(), error = %e, "a published message did not reach a peer");
            }
        }
    });
    futures::future::join_all(sends).await;
    here
}

/// `PUBSUB CHANNELS [pattern] | NUMSUB [channel ...] | NUMPAT | SHARDCHANNELS [pattern]
/// | SHARDNUMSUB [channel ...]`: about this node's clients only, as in Redis Cluster.
fn pubsub_cmd(front: &Front, a: &[Bytes]) -> Reply {
    let sub = &a[1];
    let shard = is(sub, "SHARDCHANNELS") || is(sub, "SHARDNUMSUB");
    if (is(sub, "CHANNELS") || is(sub, "SHARDCHANNELS")) && a.len() <= 3 {
        let pattern = a.get(2).map(|p| p.as_ref());
        let found = if shard {
            front.subs.shard_channels(pattern)
        } else {
            front.subs.channels(pattern)
        };
        Ok(Value::Array(found.into_iter().map(Value::Bulk).collect()))
    } else if is(sub, "NUMSUB") || is(sub, "SHARDNUMSUB") {
        let mut out = Vec::with_capacity(2 * (a.len() - 2));
        for c in &a[2..] {
            let n = if shard {
                front.subs.shard_numsub(c)
            } else {
                front.subs.numsub(c)
            };
            out.push(Value::Bulk(c.clone()));
            out.push(Value::Integer(n as i64));
        }
        Ok(Value::Array(out))
    } else if is(sub, "NUMPAT") && a.len() == 2 {
        Ok(Value::Integer(front.subs.numpat() as i64))
    } else {
        Err(Value::err(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try PUBSUB HELP.",
            String::from_utf8_lossy(sub)
        )))
    }
}

fn sub_reply(kind: &str, name: Option<Bytes>, count: usize) -> Value {
    Value::Push(vec![
        Value::bulk(kind.to_string()),
        Value::opt_bulk(name),
        Value::Integer(count as i64),
    ])
}

/// The names `s` subscribes to of `kind`.
fn subscribed(s: &mut Session, kind: SubKind) -> &mut BTreeSet<Bytes> {
    match kind {
        SubKind::Channel => &mut s.channels,
        SubKind::Pattern => &mut s.patterns,
        SubKind::Shard => &mut s.shards,
    }
}

/// The count a (un)subscribe reply of `kind` carries: sharded channels are counted apart
/// from channels and patterns, as in Redis 7.
fn sub_count(s: &Session, kind: SubKind) -> usize {
    match kind {
        SubKind::Shard => s.shard_subscriptions(),
        SubKind::Channel | SubKind::Pattern => s.subscriptions(),
    }
}

fn subscribe(front: &Front, s: &mut Session, kind: SubKind, a: &[Bytes]) -> Vec<Value> {
    let word = match kind {
        SubKind::Channel => "subscribe",
        SubKind::Pattern => "psubscribe",
        SubKind::Shard => "ssubscribe",
    };
    a[1..]
        .iter()
        .map(|name| {
            if subscribed(s, kind).insert(name.clone()) {
                front.subs.add(kind, name.clone(), s.id, s.mailbox.clone());
            }
            sub_reply(word, Some(name.clone()), sub_count(s, kind))
        })
        .collect()
}

fn unsubscribe(front: &Front, s: &mut Session, kind: SubKind, a: &[Bytes]) -> Vec<Value> {
    let word = match kind {
        SubKind::Channel => "unsubscribe",
        SubKind::Pattern => "punsubscribe",
        SubKind::Shard => "sunsubscribe",
    };
    let names: Vec<Bytes> = if a.len() > 1 {
        a[1..].to_vec()
    } else {
        subscribed(s, kind).iter().cloned().collect()
    };
    if names.is_empty() {
        return vec![sub_reply(word, None, sub_count(s, kind))];
    }
    names
        .into_iter()
        .map(|name| {
            if subscribed(s, kind).remove(&name) {
                front.subs.remove(kind, &name, s.id);
            }
            sub_reply(word, Some(name), sub_count(s, kind))
        })
        .collect()
}

/// Drops every subscription of `s` (its connection ended).
pub fn forget(front: &Front, s: &Session) {
    for (kind, names) in [
        (SubKind::Channel, &s.channels),
        (SubKind::Pattern, &s.patterns),
        (SubKind::Shard, &s.shards),
    ] {
        for n in names {
            front.subs.remove(kind, n, s.id);
        }
    }
}

fn auth(front: &Front, s: &mut Session, a: &[Bytes]) -> Reply {
    if a.len() > 3 {
        return Err(command::wrong_arity("auth"));
    }
    if !front.needs_auth() {
        return Err(Value::err(
            "ERR AUTH <password> called without any password configured for the default \
             user. Are you sure your configuration is correct?",
        ));
    }
    check_auth(
        front,
        s,
        a.get(a.len() - 2).filter(|_| a.len() == 3),
        &a[a.len() - 1],
    )?;
    Ok(Value::ok())
}

fn check_auth(front: &Front, s: &mut Session, user: Option<&Bytes>, pass: &[u8]) -> Reply {
    let user_ok = user.is_none_or(|u| u.as_ref() == b"default");
    if user_ok && front.password_ok(pass) {
        s.authed = true;
        Ok(Value::ok())
    } else {
        Err(Value::err(
            "WRONGPASS invalid username-password pair or user is disabled.",
        ))
    }
}

/// `HELLO [protover [AUTH username password] [SETNAME clientname]]`.
fn hello(front: &Front, s: &mut Session, a: &[Bytes]) -> Reply {
    let mut proto = s.proto;
    if let Some(v) = a.get(1) {
        proto = match parse_int(v) {
            Some(2) => Protocol::Resp2,
            Some(3) => Protocol::Resp3,
            Some(_) => return Err(Value::err("NOPROTO unsupported protocol version")),
            None => {
                return Err(Value::err(
                    "ERR Protocol version is not an integer or out of range",
                ))
            }
        };
    }
    let mut name = None;
    let mut i = 2;
    while i < a.len() {
        if is(&a[i], "AUTH") && i + 2 < a.len() {
            check_auth(front, s, Some(&a[i + 1]), &a[i + 2])?;
            i += 3;
        } else if is(&a[i], "SETNAME") && i + 1 < a.len() {
            name = Some(a[i + 1].clone());
            i += 2;
        } else {
            return Err(Value::err(format!(
                "ERR Syntax error in HELLO option '{}'",
                String::from_utf8_lossy(&a[i])
            )));
        }
    }
    if !s.authed {
        return Err(Value::err(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise \
             the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the \
             client and select the RESP protocol version at the same time",
        ));
    }
    if name.is_some() {
        s.name = name;
    }
    s.proto = proto;
    let pair = |k: &str, v: Value| (Value::bulk(k.to_string()), v);
    Ok(Value::Map(vec![
        pair("server", Value::bulk("redis")),
        pair("version", Value::bulk(REDIS_VERSION)),
        pair(
            "proto",
            Value::Integer(if proto == Protocol::Resp3 { 3 } else { 2 }),
        ),
        pair("id", Value::Integer(s.id as i64)),
        pair("mode", Value::bulk("standalone")),
        pair("role", Value::bulk("master")),
        pair("modules", Value::Array(Vec::new())),
    ]))
}

fn client_cmd(s: &mut Session, a: &[Bytes]) -> Reply {
    let sub = &a[1];
    if is(sub, "SETNAME") && a.len() == 3 {
        if a[2].iter().any(|&c| c <= b' ' || c > b'~') {
            return Err(Value::err(
                "ERR Client names cannot contain spaces, newlines or special characters.",
            ));
        }
        s.name = (!a[2].is_empty()).then(|| a[2].clone());
        Ok(Value::ok())
    } else if is(sub, "GETNAME") && a.len() == 2 {
        Ok(Value::opt_bulk(s.name.clone()))
    } else if is(sub, "ID") && a.len() == 2 {
        Ok(Value::Integer(s.id as i64))
    } else if is(sub, "SETINFO") && a.len() == 4 {
        if is(&a[2], "LIB-NAME") {
            s.lib.0 = Some(a[3].clone());
        } else if is(&a[2], "LIB-VER") {
            s.lib.1 = Some(a[3].clone());
        } else {
            return Err(Value::err(format!(
                "ERR Unrecognized option '{}'",
                String::from_utf8_lossy(&a[2])
            )));
        }
        Ok(Value::ok())
    } else if is(sub, "INFO") && a.len() == 2 {
        Ok(Value::Verbatim("txt".into(), Bytes::from(client_line(s))))
    } else {
        Err(Value::err(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try CLIENT HELP.",
            String::from_utf8_lossy(sub)
        )))
    }
}

fn client_line(s: &Session) -> String {
    let text = |b: &Option<Bytes>| {
        b.as_ref()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default()
    };
    format!(
        "id={} addr={} name={} db={} resp={} lib-name={} lib-ver={}\n",
        s.id,
        s.peer,
        text(&s.name),
        s.db,
        if s.proto == Protocol::Resp3 { 3 } else { 2 },
        text(&s.lib.0),
        text(&s.lib.1),
    )
}

fn command_cmd(a: &[Bytes]) -> Reply {
    let Some(sub) = a.get(1) else {
        return Ok(Value::Array(
            COMMANDS.iter().map(CommandSpec::info).collect(),
        ));
    };
    if is(sub, "COUNT") {
        Ok(Value::Integer(COMMANDS.len() as i64))
    } else if is(sub, "DOCS") {
        // No documentation: an empty map is what redis-cli expects when there is none.
        Ok(Value::Map(Vec::new()))
    } else if is(sub, "INFO") {
        Ok(Value::Array(
            a[2..]
                .iter()
                .map(|n| command::lookup(n).map_or(Value::NullArray, CommandSpec::info))
                .collect(),
        ))
    } else if is(sub, "LIST") {
        Ok(Value::Array(
            COMMANDS.iter().map(|c| Value::bulk(c.name)).collect(),
        ))
    } else {
        Err(Value::err(format!(
            "ERR unknown subcommand '{}'. Try COMMAND HELP.",
            String::from_utf8_lossy(sub)
        )))
    }
}

/// `INFO`: Redis's `server` and `clients` sections and memmesh's own.
fn info(front: &Front, s: &Session, a: &[Bytes]) -> Value {
    let cache = &front.cache;
    let want = |section: &str| {
        a.len() < 2
            || a[1..]
                .iter()
                .any(|w| is(w, section) || is(w, "all") || is(w, "everything") || is(w, "default"))
    };
    let mut out = String::new();
    if want("server") {
        out.push_str(&format!(
            "# Server\r\nredis_version:{REDIS_VERSION}\r\nredis_mode:standalone\r\n\
             memmesh_version:{}\r\nrun_id:{}\r\ntcp_port:{}\r\nuptime_in_seconds:{}\r\n\r\n",
            env!("CARGO_PKG_VERSION"),
            cache.id,
            front.addr.port(),
            front.started.elapsed().as_secs(),
        ));
    }
    if want("clients") {
        out.push_str(&format!(
            "# Clients\r\nconnected_clients:{}\r\nmaxclients:{}\r\n\r\n",
            front.connected(),
            front.limits.max_clients
        ));
    }
    if want("stats") {
        out.push_str(&format!(
            "# Stats\r\ntotal_commands_processed:{}\r\n\r\n",
            front.commands.load(std::sync::atomic::Ordering::Relaxed)
        ));
    }
    if want("memmesh") {
        let table = cache.cache.table();
        out.push_str(&format!(
            "# memmesh\r\nnode_id:{}\r\nmembers:{}\r\nbucket:{}\r\n",
            cache.id,
            table.members.len(),
            bucket_name(s.db)
        ));
        let (requests, writes) = cache.outbox.counts();
        out.push_str(&format!(
            "cache_write_requests:{requests}\r\ncache_writes_sent:{writes}\r\n"
        ));
        let (requests, reads) = cache.readbox.counts();
        out.push_str(&format!(
            "cache_read_requests:{requests}\r\ncache_reads_sent:{reads}\r\n"
        ));
        // While writes also go to the previous owners (ADR 0010), they cost more.
        let left = cache.cache.transition_left_at(std::time::Instant::now());
        out.push_str(&format!(
            "cache_routing_epoch:{}\r\ncache_write_transition_ms:{}\r\n",
            table.epoch,
            left.as_millis()
        ));
        for (name, o) in crate::cache::known(cache) {
            out.push_str(&format!(
                "bucket_{name}:replicas={},ttl_ms={}\r\n",
                o.replicas,
                o.ttl.map_or(0, |t| t.as_millis())
            ));
        }
        out.push_str("\r\n");
    }
    Value::Verbatim("txt".into(), Bytes::from(out))
}

/// `CONFIG GET` of the few parameters clients and redis-benchmark ask for.
fn config(a: &[Bytes]) -> Reply {
    const PARAMS: &[(&str, &str)] = &[
        ("save", ""),
        ("appendonly", "no"),
        ("databases", "16"),
        ("maxmemory", "0"),
        ("maxmemory-policy", "allkeys-lru"),
    ];
    if is(&a[1], "GET") && a.len() >= 3 {
        let mut pairs = Vec::new();
        for (k, v) in PARAMS {
            if a[2..].iter().any(|p| is(p, k) || p.as_ref() == b"*") {
                pairs.push((Value::bulk(*k), Value::bulk(*v)));
            }
        }
        Ok(Value::Map(pairs))
    } else if is(&a[1], "RESETSTAT") {
        Ok(Value::ok())
    } else {
        Err(Value::err(format!(
            "ERR CONFIG {} is not supported by memmesh",
            String::from_utf8_lossy(&a[1])
        )))
    }
}
