//! Documents: Automerge CRDT documents on this node, synced with peers as each one's
//! reach allows (`node.docs`). Ids and heads cross as strings, reach as its name, saved
//! documents as `Buffer`s.
//!
//! Values cross as a small tagged tree, [`DocValue`], that `js/index.js` builds from and
//! turns back into plain JS values (`null`, booleans, numbers, bigints, strings,
//! `Uint8Array`s, objects, arrays, and its `Text` and `Counter` classes): one walk on each
//! side, no JSON text in between. Paths are the core's string form or an array of keys
//! (strings) and indexes (numbers).

use std::collections::BTreeMap;

use memmesh::docs::{Path, Seg};
use memmesh::{DocId, Reach, Value};
use napi::bindgen_prelude::{Buffer, Either, Env, PromiseRaw};
use napi_derive::napi;

use crate::config::{signed, whole};
use crate::docs_changes::DocChangesStream;
use crate::docs_status::DocSync;
use crate::error::{invalid, to_js};
use crate::runtime::spawn_promise;

/// Longest nesting of a value given from JS (a guard against deep recursion).
const MAX_NESTING: usize = 64;

/// One value of a document, tagged (built and read by `js/index.js`).
#[napi(object)]
pub struct DocValue {
    /// `null`, `bool`, `int`, `float`, `str`, `bytes`, `map`, `list`, `text` or `counter`.
    pub kind: String,
    /// The boolean of a `bool`.
    pub bool: Option<bool>,
    /// The number of a `float`, or of an `int` / `counter` within ±2^53.
    pub num: Option<f64>,
    /// The decimal digits of an `int` / `counter` beyond ±2^53 (a JS bigint).
    pub big: Option<String>,
    /// The characters of a `str` or `text`.
    pub str: Option<String>,
    /// The bytes of a `bytes`.
    pub bytes: Option<Buffer>,
    /// The keys of a `map` (its values are `items`, in the same order).
    pub keys: Option<Vec<String>>,
    /// The elements of a `list`, or the values of a `map`.
    pub items: Option<Vec<DocValue>>,
}

/// What is known of a document (`docs.list()`).
#[napi(object)]
pub struct DocInfo {
    /// Its id (32 hex digits).
    pub id: String,
    /// Its reach: `'private'`, `'cluster'`, `'community'` or `'commons'`.
    pub reach: String,
    /// Its heads (hex change hashes, sorted).
    pub heads: Vec<String>,
}

/// What a node holds of documents (`docs.stats()`).
#[napi(object)]
pub struct DocsStats {
    /// The documents held.
    pub documents: f64,
    /// Their size in the Automerge format.
    pub bytes: f64,
    /// Whether they are kept in the data dir (`false`: in memory only).
    pub persistent: bool,
    /// Sync exchanges with peers under way.
    pub syncing: f64,
}

fn tag(kind: &str) -> DocValue {
    DocValue {
        kind: kind.to_string(),
        bool: None,
        num: None,
        big: None,
        str: None,
        bytes: None,
        keys: None,
        items: None,
    }
}

/// Largest integer a JS number holds exactly.
const SAFE: i64 = (1 << 53) - 1;

fn int_tag(kind: &str, n: i64) -> DocValue {
    let mut v = tag(kind);
    if (-SAFE..=SAFE).contains(&n) {
        v.num = Some(n as f64);
    } else {
        v.big = Some(n.to_string());
    }
    v
}

/// A core value as a tagged tree.
fn to_tagged(v: Value) -> DocValue {
    match v {
        Value::Null => tag("null"),
        Value::Bool(b) => DocValue {
            bool: Some(b),
            ..tag("bool")
        },
        Value::Int(n) => int_tag("int", n),
        Value::Counter(n) => int_tag("counter", n),
        Value::Float(f) => DocValue {
            num: Some(f),
            ..tag("float")
        },
        Value::Str(s) => DocValue {
            str: Some(s),
            ..tag("str")
        },
        Value::Text(s) => DocValue {
            str: Some(s),
            ..tag("text")
        },
        Value::Bytes(b) => DocValue {
            bytes: Some(Buffer::from(b)),
            ..tag("bytes")
        },
        Value::Map(m) => {
            let (keys, items): (Vec<String>, Vec<DocValue>) =
                m.into_iter().map(|(k, v)| (k, to_tagged(v))).unzip();
            DocValue {
                keys: Some(keys),
                items: Some(items),
                ..tag("map")
            }
        }
        Value::List(l) => DocValue {
            items: Some(l.into_iter().map(to_tagged).collect()),
            ..tag("list")
        },
    }
}

fn int_of(v: &DocValue) -> memmesh::Result<i64> {
    match (&v.num, &v.big) {
        (Some(n), _) => signed(&v.kind, *n),
        (None, Some(digits)) => digits.parse::<i64>().map_err(|_| {
            invalid(format!(
                "{digits} is outside the 64-bit signed range of document integers"
            ))
        }),
        (None, None) => Err(invalid(format!("a {} value without its number", v.kind))),
    }
}

/// A tagged tree as a core value.
fn from_tagged(v: DocValue, depth: usize) -> memmesh::Result<Value> {
    if depth > MAX_NESTING {
        return Err(invalid(format!(
            "a value nested more than {MAX_NESTING} levels deep"
        )));
    }
    let missing = |what: &str| invalid(format!("a {} value without its {what}", v.kind));
    Ok(match v.kind.as_str() {
        "null" => Value::Null,
        "bool" => Value::Bool(v.bool.ok_or_else(|| missing("boolean"))?),
        "int" => Value::Int(int_of(&v)?),
        "counter" => Value::Counter(int_of(&v)?),
        "float" => Value::Float(v.num.ok_or_else(|| missing("number"))?),
        "str" => Value::Str(v.str.ok_or_else(|| missing("string"))?),
        "text" => Value::Text(v.str.ok_or_else(|| missing("string"))?),
        "bytes" => Value::Bytes(v.bytes.ok_or_else(|| missing("bytes"))?.to_vec()),
        "list" => Value::List(
            v.items
                .ok_or_else(|| missing("items"))?
                .into_iter()
                .map(|i| from_tagged(i, depth + 1))
                .collect::<memmesh::Result<_>>()?,
        ),
        "map" => {
            let keys = v
                .keys
                .ok_or_else(|| invalid("a map value without its keys"))?;
            let items = v
                .items
                .ok_or_else(|| invalid("a map value without its items"))?;
            if keys.len() != items.len() {
                return Err(invalid("a map value with more keys than values"));
            }
            let mut m = BTreeMap::new();
            for (k, item) in keys.into_iter().zip(items) {
                m.insert(k, from_tagged(item, depth + 1)?);
            }
            Value::Map(m)
        }
        other => return Err(invalid(format!("unknown value kind {other:?}"))),
    })
}

/// A path: the string form, or an array of keys and indexes.
fn path(p: Either<String, Vec<Either<String, f64>>>) -> memmesh::Result<Path> {
    match p {
        Either::A(s) => Ok(Path::parse(&s)?),
        Either::B(segs) => {
            if segs.len() > memmesh::docs::path::MAX_DEPTH {
                return Err(invalid(format!(
                    "bad path: more than {} segments",
                    memmesh::docs::path::MAX_DEPTH
                )));
            }
            let segs = segs
                .into_iter()
                .map(|s| match s {
                    Either::A(k) => Ok(Seg::Key(k)),
                    Either::B(n) => {
                        let i = whole("an index", n)
                            .map_err(|e| invalid(format!("bad path: {}", e.message())))?;
                        usize::try_from(i)
                            .map(Seg::Index)
                            .map_err(|_| invalid(format!("bad path: index {i} is too large")))
                    }
                })
                .collect::<memmesh::Result<Vec<_>>>()?;
            Ok(Path(segs))
        }
    }
}

fn reach(name: &str) -> memmesh::Result<Reach> {
    Ok(name.parse::<Reach>()?)
}

fn doc_id(id: &str) -> memmesh::Result<DocId> {
    Ok(id.parse::<DocId>()?)
}

fn count(what: &str, n: f64) -> memmesh::Result<usize> {
    let n = whole(what, n)?;
    usize::try_from(n).map_err(|_| invalid(format!("{what} is too large: {n}")))
}

/// The documents of a node (the native half of `node.docs`).
#[napi(js_name = "NativeDocs")]
pub struct Docs {
    inner: memmesh::Docs,
    node: memmesh::Node,
}

impl Docs {
    pub(crate) fn new(inner: memmesh::Docs, node: memmesh::Node) -> Self {
        Self { inner, node }
    }
}

#[napi]
impl Docs {
    /// Creates an empty document of `reach`; resolves with its id.
    #[napi(ts_return_type = "Promise<string>", catch_unwind)]
    pub fn create<'env>(
        &self,
        env: &'env Env,
        reach: String,
    ) -> napi::Result<PromiseRaw<'env, String>> {
        let reach = to_js(env, self::reach(&reach))?;
        let docs = self.inner.clone();
        spawn_promise(
            env,
            &self.node.runtime_handle(),
            async move { docs.create(reach).await },
            |id| Ok(id.to_string()),
        )
    }

    /// Imports a document saved by any Automerge implementation as a new document of
    /// `reach`; resolves with its id.
    #[napi(js_name = "import", ts_return_type = "Promise<string>", catch_unwind)]
    pub fn import_doc<'env>(
        &self,
        env: &'env Env,
        data: Buffer,
        reach: String,
    ) -> napi::Result<PromiseRaw<'env, String>> {
        let reach = to_js(env, self::reach(&reach))?;
        let data = data.to_vec();
        let docs = self.inner.clone();
        spawn_promise(
            env,
            &self.node.runtime_handle(),
            async move { docs.import(&data, reach).await },
            |id| Ok(id.to_string()),
        )
    }

    /// Resolves with the document `id`.
    #[napi(ts_return_type = "Promise<NativeDoc>", catch_unwind)]
    pub fn open<'env>(&self, env: &'env Env, id: String) -> napi::Result<PromiseRaw<'env, Doc>> {
        let id = to_js(env, doc_id(&id))?;
        let docs = self.inner.clone();
        let node = self.node.clone();
        spawn_promise(
            env,
            &self.node.runtime_handle(),
            async move { docs.open(id).await },
            move |inner| Ok(Doc { inner, node }),
        )
    }

    /// Resolves with every document on this node, in id order.
    #[napi(ts_return_type = "Promise<DocInfo[]>", catch_unwind)]
    pub fn list<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, Vec<DocInfo>>> {
        let docs = self.inner.clone();
        spawn_promise(
            env,
            &self.node.runtime_handle(),
            async move { docs.list().await },
            |list| {
                Ok(list
                    .into_iter()
                    .map(|d| DocInfo {
                        id: d.id.to_string(),
                        reach: d.reach.as_str().to_string(),
                        heads: d.heads,
                    })
                    .collect())
            },
        )
    }

    /// Resolves with what this node holds: documents, bytes, whether on disk, syncs.
    #[napi(ts_return_type = "Promise<DocsStats>", catch_unwind)]
    pub fn stats<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, DocsStats>> {
        let docs = self.inner.clone();
        spawn_promise(
            env,
            &self.node.runtime_handle(),
            async move { docs.stats().await },
            |s| {
                Ok(DocsStats {
                    documents: s.documents as f64,
                    bytes: s.bytes as f64,
                    persistent: s.persistent,
                    syncing: s.syncing as f64,
                })
            },
        )
    }

    /// Resolves with the sync state of every document with its peers, in id order.
    #[napi(ts_return_type = "Promise<DocSync[]>", catch_unwind)]
    pub fn sync_status<'env>(
        &self,
        env: &'env Env,
    ) -> napi::Result<PromiseRaw<'env, Vec<DocSync>>> {
        let docs = self.inner.clone();
        spawn_promise(
            env,
            &self.node.runtime_handle(),
            async move { docs.sync_status().await },
            |l| Ok(l.into_iter().map(DocSync::from).collect()),
        )
    }

    /// Changes the reach of the document `id`.
    #[napi(ts_return_type = "Promise<void>", catch_unwind)]
    pub fn set_reach<'env>(
        &self,
        env: &'env Env,
        id: String,
        reach: String,
    ) -> napi::Result<PromiseRaw<'env, ()>> {
        let id = to_js(env, doc_id(&id))?;
        let reach = to_js(env, self::reach(&reach))?;
        let docs = self.inner.clone();
        spawn_promise(
            env,
            &self.node.runtime_handle(),
            async move { docs.set_reach(id, reach).await },
            Ok,
        )
    }

    /// Every change of every document from now on.
    #[napi(catch_unwind)]
    pub fn changes(&self) -> DocChangesStream {
        DocChangesStream::new(self.inner.changes(), self.node.clone())
    }

    /// Deletes the document `id` from this node.
    #[napi(ts_return_type = "Promise<void>", catch_unwind)]
    pub fn delete<'env>(&self, env: &'env Env, id: String) -> napi::Result<PromiseRaw<'env, ()>> {
        let id = to_js(env, doc_id(&id))?;
        let docs = self.inner.clone();
        spawn_promise(
            env,
            &self.node.runtime_handle(),
            async move { docs.delete(id).await },
            Ok,
        )
    }
}

/// One document (the native half of a `Doc`).
#[napi(js_name = "NativeDoc")]
pub struct Doc {
    inner: memmesh::Doc,
    node: memmesh::Node,
}

impl Doc {
    /// Runs an edit on the node runtime; resolves when it is durable.
    fn edit<'env, F>(&self, env: &'env Env, work: F) -> napi::Result<PromiseRaw<'env, ()>>
    where
        F: std::future::Future<Output = memmesh::Result<()>> + Send + 'static,
    {
        spawn_promise(env, &self.node.runtime_handle(), work, Ok)
    }
}

#[napi]
impl Doc {
    /// Its id.
    #[napi(getter, catch_unwind)]
    pub fn id(&self) -> String {
        self.inner.id().to_string()
    }

    /// Its reach.
    #[napi(getter, catch_unwind)]
    pub fn reach(&self) -> String {
        self.inner.reach().as_str().to_string()
    }

    /// The value at `path` (tagged), or `null` if nothing is there.
    #[napi(catch_unwind)]
    pub fn get(
        &self,
        env: &Env,
        path: Either<String, Vec<Either<String, f64>>>,
    ) -> napi::Result<Option<DocValue>> {
        let path = to_js(env, self::path(path))?;
        let got = to_js(env, self.inner.get(path))?;
        Ok(got.map(to_tagged))
    }

    /// The whole document as JSON text.
    #[napi(catch_unwind)]
    pub fn to_json(&self, env: &Env) -> napi::Result<String> {
        to_js(env, self.inner.to_json())
    }

    /// Its heads (hex change hashes, sorted).
    #[napi(catch_unwind)]
    pub fn heads(&self, env: &Env) -> napi::Result<Vec<String>> {
        to_js(env, self.inner.heads())
    }

    /// The whole document in the standard Automerge binary format.
    #[napi(catch_unwind)]
    pub fn save(&self, env: &Env) -> napi::Result<Buffer> {
        Ok(Buffer::from(to_js(env, self.inner.save())?))
    }

    /// Sets the value at `path`.
    #[napi(ts_return_type = "Promise<void>", catch_unwind)]
    pub fn put<'env>(
        &self,
        env: &'env Env,
        path: Either<String, Vec<Either<String, f64>>>,
        value: DocValue,
    ) -> napi::Result<PromiseRaw<'env, ()>> {
        let path = to_js(env, self::path(path))?;
        let value = to_js(env, from_tagged(value, 0))?;
        let doc = self.inner.clone();
        self.edit(env, async move { doc.put(path, value).await })
    }

    /// Deletes the map key or list element at `path`.
    #[napi(ts_return_type = "Promise<void>", catch_unwind)]
    pub fn delete<'env>(
        &self,
        env: &'env Env,
        path: Either<String, Vec<Either<String, f64>>>,
    ) -> napi::Result<PromiseRaw<'env, ()>> {
        let path = to_js(env, self::path(path))?;
        let doc = self.inner.clone();
        self.edit(env, async move { doc.delete(path).await })
    }

    /// Inserts `value` at `index` in the list at `path`.
    #[napi(ts_return_type = "Promise<void>", catch_unwind)]
    pub fn insert<'env>(
        &self,
        env: &'env Env,
        path: Either<String, Vec<Either<String, f64>>>,
        index: f64,
        value: DocValue,
    ) -> napi::Result<PromiseRaw<'env, ()>> {
        let path = to_js(env, self::path(path))?;
        let index = to_js(env, count("index", index))?;
        let value = to_js(env, from_tagged(value, 0))?;
        let doc = self.inner.clone();
        self.edit(env, async move { doc.insert(path, index, value).await })
    }

    /// In the text at `path`, deletes `del` characters at `pos` and inserts `text`.
    #[napi(ts_return_type = "Promise<void>", catch_unwind)]
    pub fn splice_text<'env>(
        &self,
        env: &'env Env,
        path: Either<String, Vec<Either<String, f64>>>,
        pos: f64,
        del: f64,
        text: String,
    ) -> napi::Result<PromiseRaw<'env, ()>> {
        let path = to_js(env, self::path(path))?;
        let pos = to_js(env, count("pos", pos))?;
        let delete = to_js(env, count("delete", del))?;
        let doc = self.inner.clone();
        self.edit(env, async move {
            doc.splice_text(path, pos, delete, &text).await
        })
    }

    /// Adds `by` to the counter at `path`.
    #[napi(ts_return_type = "Promise<void>", catch_unwind)]
    pub fn increment<'env>(
        &self,
        env: &'env Env,
        path: Either<String, Vec<Either<String, f64>>>,
        by: f64,
    ) -> napi::Result<PromiseRaw<'env, ()>> {
        let path = to_js(env, self::path(path))?;
        let by = to_js(env, signed("by", by))?;
        let doc = self.inner.clone();
        self.edit(env, async move { doc.increment(path, by).await })
    }

    /// Changes its reach.
    #[napi(ts_return_type = "Promise<void>", catch_unwind)]
    pub fn set_reach<'env>(
        &self,
        env: &'env Env,
        reach: String,
    ) -> napi::Result<PromiseRaw<'env, ()>> {
        let reach = to_js(env, self::reach(&reach))?;
        let doc = self.inner.clone();
        self.edit(env, async move { doc.set_reach(reach).await })
    }

    /// Every change of this document from now on.
    #[napi(catch_unwind)]
    pub fn changes(&self) -> DocChangesStream {
        DocChangesStream::new(self.inner.changes(), self.node.clone())
    }

    /// Merges Automerge bytes (a saved document or changes) into this document.
    #[napi(ts_return_type = "Promise<void>", catch_unwind)]
    pub fn merge<'env>(&self, env: &'env Env, data: Buffer) -> napi::Result<PromiseRaw<'env, ()>> {
        let data = data.to_vec();
        let doc = self.inner.clone();
        self.edit(env, async move { doc.merge(&data).await })
    }
}
