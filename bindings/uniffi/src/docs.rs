//! Documents: Automerge CRDT documents on this node, kept in its data dir (encrypted) and
//! synced with peers as each one's reach allows (from `Node.docs()`).
//!
//! Ids and heads cross as strings, saved documents as bytes (the standard Automerge
//! format), reach as the [`Reach`] enum, values as the [`DocValue`] enum (maps as
//! dictionaries). Paths are the core's string form: `"items/0/title"` (slash-separated;
//! `~1` is `/` and `~0` is `~` inside a key; `""` is the root).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use memmesh::{DocId, Value};

use crate::docs_changes::DocChanges;
use crate::docs_status::DocSync;
use crate::error::MemmeshError;

/// Where a document may flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Reach {
    /// This node only.
    Private,
    /// Members of the cluster (holders of the cluster secret).
    Cluster,
    /// Also trusted outsiders (members only for now).
    Community,
    /// Anyone who asks, when the node serves commons (members only for now).
    Commons,
}

impl From<Reach> for memmesh::Reach {
    fn from(r: Reach) -> Self {
        match r {
            Reach::Private => memmesh::Reach::Private,
            Reach::Cluster => memmesh::Reach::Cluster,
            Reach::Community => memmesh::Reach::Community,
            Reach::Commons => memmesh::Reach::Commons,
        }
    }
}

impl From<memmesh::Reach> for Reach {
    fn from(r: memmesh::Reach) -> Self {
        match r {
            memmesh::Reach::Private => Reach::Private,
            memmesh::Reach::Cluster => Reach::Cluster,
            memmesh::Reach::Community => Reach::Community,
            memmesh::Reach::Commons => Reach::Commons,
        }
    }
}

/// A value in a document: JSON-like, plus bytes, collaborative text and counters.
#[derive(Debug, Clone, PartialEq, uniffi::Enum)]
pub enum DocValue {
    /// Null.
    Null,
    /// A boolean.
    Bool {
        /// The value.
        value: bool,
    },
    /// A 64-bit signed integer.
    Int {
        /// The value.
        value: i64,
    },
    /// A float.
    Float {
        /// The value.
        value: f64,
    },
    /// A string (a scalar: replaced whole on every put; see `Text`).
    Str {
        /// The value.
        value: String,
    },
    /// Bytes.
    Bytes {
        /// The value.
        value: Vec<u8>,
    },
    /// A map.
    Map {
        /// Its entries.
        entries: HashMap<String, DocValue>,
    },
    /// A list.
    List {
        /// Its elements.
        items: Vec<DocValue>,
    },
    /// Collaborative text (merged character by character; edit with `splice_text`).
    Text {
        /// The characters.
        value: String,
    },
    /// A counter (concurrent increments add up; change with `increment`).
    Counter {
        /// The value.
        value: i64,
    },
}

impl From<Value> for DocValue {
    fn from(v: Value) -> Self {
        match v {
            Value::Null => DocValue::Null,
            Value::Bool(value) => DocValue::Bool { value },
            Value::Int(value) => DocValue::Int { value },
            Value::Float(value) => DocValue::Float { value },
            Value::Str(value) => DocValue::Str { value },
            Value::Bytes(value) => DocValue::Bytes { value },
            Value::Map(m) => DocValue::Map {
                entries: m.into_iter().map(|(k, v)| (k, v.into())).collect(),
            },
            Value::List(l) => DocValue::List {
                items: l.into_iter().map(Into::into).collect(),
            },
            Value::Text(value) => DocValue::Text { value },
            Value::Counter(value) => DocValue::Counter { value },
        }
    }
}

impl From<DocValue> for Value {
    fn from(v: DocValue) -> Self {
        match v {
            DocValue::Null => Value::Null,
            DocValue::Bool { value } => Value::Bool(value),
            DocValue::Int { value } => Value::Int(value),
            DocValue::Float { value } => Value::Float(value),
            DocValue::Str { value } => Value::Str(value),
            DocValue::Bytes { value } => Value::Bytes(value),
            DocValue::Map { entries } => Value::Map(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, v.into()))
                    .collect::<BTreeMap<_, _>>(),
            ),
            DocValue::List { items } => Value::List(items.into_iter().map(Into::into).collect()),
            DocValue::Text { value } => Value::Text(value),
            DocValue::Counter { value } => Value::Counter(value),
        }
    }
}

/// What is known of a document (from `Docs.list()`).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct DocInfo {
    /// Its id (32 hex digits).
    pub id: String,
    /// Its reach.
    pub reach: Reach,
    /// Its heads (hex change hashes, sorted).
    pub heads: Vec<String>,
}

/// What a node holds of documents (from `Docs.stats()`).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct DocsStats {
    /// The documents held.
    pub documents: u64,
    /// Their size in the Automerge format.
    pub bytes: u64,
    /// Whether they are kept in the data dir (false: in memory only).
    pub persistent: bool,
    /// Sync exchanges with peers under way.
    pub syncing: u64,
}

/// Parses a document id (32 hex digits); `InvalidInput` if bad.
fn parse_doc_id(id: &str) -> Result<DocId, MemmeshError> {
    id.parse::<DocId>()
        .map_err(|e| MemmeshError::from(memmesh::Error::from(e)))
}

/// The documents of a node (from `Node.docs()`). Keeps its node alive. Without a data
/// dir documents live in memory only (`stats().persistent` is false).
#[derive(Debug, uniffi::Object)]
pub struct Docs {
    inner: memmesh::Docs,
}

impl Docs {
    pub(crate) fn new(inner: memmesh::Docs) -> Self {
        Self { inner }
    }
}

#[uniffi::export]
impl Docs {
    /// Creates an empty document of `reach` and returns its id.
    pub async fn create(&self, reach: Reach) -> Result<String, MemmeshError> {
        Ok(self.inner.create(reach.into()).await?.to_string())
    }

    /// Imports a document saved by any Automerge implementation as a new document of
    /// `reach` and returns its id (`InvalidInput` if the bytes are not Automerge).
    pub async fn import_doc(&self, data: Vec<u8>, reach: Reach) -> Result<String, MemmeshError> {
        Ok(self.inner.import(&data, reach.into()).await?.to_string())
    }

    /// The document `id` (`NotFound` if it is not on this node).
    pub async fn open(&self, id: String) -> Result<Arc<Doc>, MemmeshError> {
        let id = parse_doc_id(&id)?;
        Ok(Arc::new(Doc {
            inner: self.inner.open(id).await?,
        }))
    }

    /// Every document on this node, in id order.
    pub async fn list(&self) -> Result<Vec<DocInfo>, MemmeshError> {
        Ok(self
            .inner
            .list()
            .await?
            .into_iter()
            .map(|d| DocInfo {
                id: d.id.to_string(),
                reach: d.reach.into(),
                heads: d.heads,
            })
            .collect())
    }

    /// What this node holds: documents, bytes, whether on disk, syncs under way.
    pub async fn stats(&self) -> Result<DocsStats, MemmeshError> {
        let s = self.inner.stats().await?;
        Ok(DocsStats {
            documents: s.documents,
            bytes: s.bytes,
            persistent: s.persistent,
            syncing: s.syncing,
        })
    }

    /// The sync state of every document with the peers it was exchanged with since this
    /// node started, in id order.
    pub async fn sync_status(&self) -> Result<Vec<DocSync>, MemmeshError> {
        Ok(self
            .inner
            .sync_status()
            .await?
            .into_iter()
            .map(DocSync::from)
            .collect())
    }

    /// Changes the reach of the document `id` (see `Doc.set_reach`).
    pub async fn set_reach(&self, id: String, reach: Reach) -> Result<(), MemmeshError> {
        let id = parse_doc_id(&id)?;
        Ok(self.inner.set_reach(id, reach.into()).await?)
    }

    /// Every change of every document on this node from now on.
    pub fn changes(&self) -> Arc<DocChanges> {
        Arc::new(DocChanges::new(self.inner.changes()))
    }

    /// Deletes the document `id` from this node (`NotFound` if it is not here).
    pub async fn delete(&self, id: String) -> Result<(), MemmeshError> {
        let id = parse_doc_id(&id)?;
        Ok(self.inner.delete(id).await?)
    }
}

/// One document (from `Docs.open()`). Edits are durable when they return and offered to
/// peers at once; a failed edit changes nothing. Reads are immediate (in memory).
#[derive(Debug, uniffi::Object)]
pub struct Doc {
    inner: memmesh::Doc,
}

#[uniffi::export]
impl Doc {
    /// Its id.
    pub fn id(&self) -> String {
        self.inner.id().to_string()
    }

    /// Its reach.
    pub fn reach(&self) -> Reach {
        self.inner.reach().into()
    }

    /// The value at `path` (`None` if nothing is there; `""` is the whole document).
    pub fn get(&self, path: String) -> Result<Option<DocValue>, MemmeshError> {
        Ok(self.inner.get(&path)?.map(Into::into))
    }

    /// The whole document as JSON (text as strings, counters as numbers, bytes as base64).
    pub fn to_json(&self) -> Result<String, MemmeshError> {
        Ok(self.inner.to_json()?)
    }

    /// Its heads (hex change hashes, sorted).
    pub fn heads(&self) -> Result<Vec<String>, MemmeshError> {
        Ok(self.inner.heads()?)
    }

    /// The whole document in the standard Automerge binary format.
    pub fn save(&self) -> Result<Vec<u8>, MemmeshError> {
        Ok(self.inner.save()?)
    }

    /// Sets the value at `path` (a map key, or an existing list index).
    pub async fn put(&self, path: String, value: DocValue) -> Result<(), MemmeshError> {
        Ok(self.inner.put(&path, Value::from(value)).await?)
    }

    /// Deletes the map key or list element at `path`.
    pub async fn delete(&self, path: String) -> Result<(), MemmeshError> {
        Ok(self.inner.delete(&path).await?)
    }

    /// Inserts `value` at `index` in the list at `path`.
    pub async fn insert(
        &self,
        path: String,
        index: u64,
        value: DocValue,
    ) -> Result<(), MemmeshError> {
        let index = usize::try_from(index).map_err(|_| MemmeshError::InvalidInput {
            message: format!("index {index} is too large"),
        })?;
        Ok(self.inner.insert(&path, index, Value::from(value)).await?)
    }

    /// In the text at `path`, deletes `delete` characters at `pos` and inserts `text`.
    pub async fn splice_text(
        &self,
        path: String,
        pos: u64,
        delete: u64,
        text: String,
    ) -> Result<(), MemmeshError> {
        let big = |what: &str, n: u64| MemmeshError::InvalidInput {
            message: format!("{what} {n} is too large"),
        };
        let pos = usize::try_from(pos).map_err(|_| big("pos", pos))?;
        let delete = usize::try_from(delete).map_err(|_| big("delete", delete))?;
        Ok(self.inner.splice_text(&path, pos, delete, &text).await?)
    }

    /// Adds `by` to the counter at `path`.
    pub async fn increment(&self, path: String, by: i64) -> Result<(), MemmeshError> {
        Ok(self.inner.increment(&path, by).await?)
    }

    /// Changes its reach, durably. Narrowing takes effect at once: from when this
    /// returns the document is no longer offered to, served to or accepted from the
    /// peers the new reach excludes (copies they hold stay theirs); widening offers it
    /// to the peers it now reaches at once.
    pub async fn set_reach(&self, reach: Reach) -> Result<(), MemmeshError> {
        Ok(self.inner.set_reach(reach.into()).await?)
    }

    /// Every change of this document from now on (`Lagged` counts the events dropped
    /// for every document).
    pub fn changes(&self) -> Arc<DocChanges> {
        Arc::new(DocChanges::new(self.inner.changes()))
    }

    /// Merges Automerge bytes (a saved document or changes) into this document.
    pub async fn merge(&self, data: Vec<u8>) -> Result<(), MemmeshError> {
        Ok(self.inner.merge(&data).await?)
    }
}
