//! The path-based editing API on an Automerge document: pure functions on an
//! [`AutoCommit`], no I/O (the store persists what they change).

use std::collections::BTreeMap;

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ObjId, ObjType, Prop, ReadDoc, ScalarValue, ROOT};

use super::error::DocsError;
use super::path::{Path, Seg};
use super::value::Value;

fn am(e: automerge::AutomergeError) -> DocsError {
    DocsError::Automerge(e.to_string())
}

fn wrong(path: &Path, what: impl Into<String>) -> DocsError {
    DocsError::WrongType {
        path: path.to_string(),
        what: what.into(),
    }
}

fn kind_name(t: ObjType) -> &'static str {
    match t {
        ObjType::Map | ObjType::Table => "map",
        ObjType::List => "list",
        ObjType::Text => "text",
    }
}

/// The property `seg` names in the object `obj` of type `t` (`path` for errors).
fn prop_in(t: ObjType, seg: &Seg, path: &Path) -> Result<Prop, DocsError> {
    match (t, seg) {
        (ObjType::Map | ObjType::Table, s) => Ok(Prop::Map(s.as_key())),
        (ObjType::List | ObjType::Text, Seg::Index(i)) => Ok(Prop::Seq(*i)),
        (t, Seg::Key(k)) => Err(wrong(
            path,
            format!("key {k:?} used on a {}, which needs an index", kind_name(t)),
        )),
    }
}

/// The object at `path` and its type (`NoSuchPath` if absent, `WrongType` if a scalar).
fn object_at(doc: &AutoCommit, doc_id: &str, path: &Path) -> Result<(ObjId, ObjType), DocsError> {
    let mut obj = ROOT;
    let mut t = ObjType::Map;
    for (depth, seg) in path.0.iter().enumerate() {
        let here = Path(path.0[..=depth].to_vec());
        if t == ObjType::Text {
            return Err(wrong(&here, "text holds characters, not values"));
        }
        let prop = prop_in(t, seg, &here)?;
        match doc.get(&obj, prop).map_err(am)? {
            Some((automerge::Value::Object(nt), id)) => {
                obj = id;
                t = nt;
            }
            Some((automerge::Value::Scalar(_), _)) => {
                return Err(wrong(&here, "a scalar value, not a map, list or text"));
            }
            None => {
                return Err(DocsError::NoSuchPath {
                    doc: doc_id.to_string(),
                    path: here.to_string(),
                })
            }
        }
    }
    Ok((obj, t))
}

/// The parent object of `path`, its type and the property naming `path` in it.
fn parent_of(
    doc: &AutoCommit,
    doc_id: &str,
    path: &Path,
) -> Result<(ObjId, ObjType, Prop), DocsError> {
    let Some((parent, last)) = path.split_last() else {
        return Err(DocsError::Invalid(
            "this operation needs a path below the root".into(),
        ));
    };
    let (obj, t) = object_at(doc, doc_id, &parent)?;
    if t == ObjType::Text {
        return Err(wrong(path, "text holds characters: use splice_text"));
    }
    let prop = prop_in(t, last, path)?;
    Ok((obj, t, prop))
}

fn to_scalar(v: &Value) -> Option<ScalarValue> {
    Some(match v {
        Value::Null => ScalarValue::Null,
        Value::Bool(b) => ScalarValue::Boolean(*b),
        Value::Int(n) => ScalarValue::Int(*n),
        Value::Float(f) => ScalarValue::F64(*f),
        Value::Str(s) => ScalarValue::Str(s.as_str().into()),
        Value::Bytes(b) => ScalarValue::Bytes(b.clone()),
        Value::Counter(n) => ScalarValue::counter(*n),
        Value::Map(_) | Value::List(_) | Value::Text(_) => return None,
    })
}

fn from_scalar(s: &ScalarValue) -> Value {
    match s {
        ScalarValue::Bytes(b) => Value::Bytes(b.clone()),
        ScalarValue::Str(s) => Value::Str(s.to_string()),
        ScalarValue::Int(n) | ScalarValue::Timestamp(n) => Value::Int(*n),
        ScalarValue::Uint(n) => match i64::try_from(*n) {
            Ok(n) => Value::Int(n),
            Err(_) => Value::Float(*n as f64),
        },
        ScalarValue::F64(f) => Value::Float(*f),
        ScalarValue::Counter(c) => Value::Counter(i64::from(c)),
        ScalarValue::Boolean(b) => Value::Bool(*b),
        ScalarValue::Unknown { bytes, .. } => Value::Bytes(bytes.clone()),
        ScalarValue::Null => Value::Null,
    }
}

fn obj_type_of(v: &Value) -> Option<ObjType> {
    match v {
        Value::Map(_) => Some(ObjType::Map),
        Value::List(_) => Some(ObjType::List),
        Value::Text(_) => Some(ObjType::Text),
        _ => None,
    }
}

/// Fills a new object `obj` with the contents of `v`.
fn fill(doc: &mut AutoCommit, obj: &ObjId, v: &Value) -> Result<(), DocsError> {
    match v {
        Value::Map(m) => {
            for (k, v) in m {
                put_value(doc, obj, Prop::Map(k.clone()), v)?;
            }
        }
        Value::List(l) => {
            for (i, v) in l.iter().enumerate() {
                insert_value(doc, obj, i, v)?;
            }
        }
        Value::Text(s) => doc.splice_text(obj, 0, 0, s).map_err(am)?,
        _ => {}
    }
    Ok(())
}

fn put_value(doc: &mut AutoCommit, obj: &ObjId, prop: Prop, v: &Value) -> Result<(), DocsError> {
    match (to_scalar(v), obj_type_of(v)) {
        (Some(s), _) => doc.put(obj, prop, s).map_err(am),
        (None, Some(t)) => {
            let id = doc.put_object(obj, prop, t).map_err(am)?;
            fill(doc, &id, v)
        }
        (None, None) => Err(DocsError::Invalid("unsupported value".into())),
    }
}

fn insert_value(doc: &mut AutoCommit, obj: &ObjId, at: usize, v: &Value) -> Result<(), DocsError> {
    match (to_scalar(v), obj_type_of(v)) {
        (Some(s), _) => doc.insert(obj, at, s).map_err(am),
        (None, Some(t)) => {
            let id = doc.insert_object(obj, at, t).map_err(am)?;
            fill(doc, &id, v)
        }
        (None, None) => Err(DocsError::Invalid("unsupported value".into())),
    }
}

/// Reads the value `v` (whose id is `id`) as plain data.
fn read(doc: &AutoCommit, v: automerge::Value<'_>, id: &ObjId) -> Result<Value, DocsError> {
    Ok(match v {
        automerge::Value::Scalar(s) => from_scalar(&s),
        automerge::Value::Object(t) => read_object(doc, id, t)?,
    })
}

fn read_object(doc: &AutoCommit, obj: &ObjId, t: ObjType) -> Result<Value, DocsError> {
    Ok(match t {
        ObjType::Map | ObjType::Table => {
            let mut m = BTreeMap::new();
            for key in doc.keys(obj) {
                if let Some((v, id)) = doc.get(obj, key.as_str()).map_err(am)? {
                    m.insert(key, read(doc, v, &id)?);
                }
            }
            Value::Map(m)
        }
        ObjType::List => {
            let mut l = Vec::new();
            for i in 0..doc.length(obj) {
                if let Some((v, id)) = doc.get(obj, i).map_err(am)? {
                    l.push(read(doc, v, &id)?);
                }
            }
            Value::List(l)
        }
        ObjType::Text => Value::Text(doc.text(obj).map_err(am)?),
    })
}

/// Runs an edit as one change: committed if it succeeds, rolled back if it fails.
fn change<T>(
    doc: &mut AutoCommit,
    f: impl FnOnce(&mut AutoCommit) -> Result<T, DocsError>,
) -> Result<T, DocsError> {
    match f(doc) {
        Ok(t) => {
            doc.commit();
            Ok(t)
        }
        Err(e) => {
            doc.rollback();
            Err(e)
        }
    }
}

/// The value at `path` (`None` if nothing is there; the root is the whole document).
pub fn get(doc: &AutoCommit, doc_id: &str, path: &Path) -> Result<Option<Value>, DocsError> {
    if path.is_root() {
        return read_object(doc, &ROOT, ObjType::Map).map(Some);
    }
    let (obj, t, prop) = match parent_of(doc, doc_id, path) {
        Ok(p) => p,
        Err(DocsError::NoSuchPath { .. }) => return Ok(None),
        Err(e) => return Err(e),
    };
    if let Prop::Seq(i) = prop {
        if i >= doc.length(&obj) {
            return Ok(None);
        }
    }
    let _ = t;
    match doc.get(&obj, prop).map_err(am)? {
        Some((v, id)) => read(doc, v, &id).map(Some),
        None => Ok(None),
    }
}

/// Sets the value at `path` (a map key, or an existing list index). The root takes a map:
/// each of its entries is put.
pub fn put(doc: &mut AutoCommit, doc_id: &str, path: &Path, v: &Value) -> Result<(), DocsError> {
    change(doc, |doc| {
        if path.is_root() {
            return match v {
                Value::Map(m) => {
                    for (k, v) in m {
                        put_value(doc, &ROOT, Prop::Map(k.clone()), v)?;
                    }
                    Ok(())
                }
                other => Err(wrong(
                    path,
                    format!("the root is a map; cannot put a {}", other.type_name()),
                )),
            };
        }
        let (obj, _, prop) = parent_of(doc, doc_id, path)?;
        if let Prop::Seq(i) = prop {
            let len = doc.length(&obj);
            if i >= len {
                return Err(DocsError::Invalid(format!(
                    "index {i} out of range at {path:?} (length {len}): use insert to add"
                )));
            }
        }
        put_value(doc, &obj, prop, v)
    })
}

/// Inserts `v` at `index` (0..=length) in the list at `list_path`.
pub fn insert(
    doc: &mut AutoCommit,
    doc_id: &str,
    list_path: &Path,
    index: usize,
    v: &Value,
) -> Result<(), DocsError> {
    change(doc, |doc| {
        let (obj, t) = object_at(doc, doc_id, list_path)?;
        if t != ObjType::List {
            return Err(wrong(
                list_path,
                format!("insert needs a list, found a {}", kind_name(t)),
            ));
        }
        let len = doc.length(&obj);
        if index > len {
            return Err(DocsError::Invalid(format!(
                "index {index} out of range for the list at {:?} (length {len})",
                list_path.to_string()
            )));
        }
        insert_value(doc, &obj, index, v)
    })
}

/// Deletes the map key or list element at `path` (`NoSuchPath` if nothing is there).
pub fn delete(doc: &mut AutoCommit, doc_id: &str, path: &Path) -> Result<(), DocsError> {
    change(doc, |doc| {
        let (obj, _, prop) = parent_of(doc, doc_id, path)?;
        let present = match &prop {
            Prop::Seq(i) => *i < doc.length(&obj),
            Prop::Map(k) => doc.get(&obj, k.as_str()).map_err(am)?.is_some(),
        };
        if !present {
            return Err(DocsError::NoSuchPath {
                doc: doc_id.to_string(),
                path: path.to_string(),
            });
        }
        doc.delete(&obj, prop).map_err(am)
    })
}

/// In the text at `path`, deletes `del` characters at `pos` and inserts `text` there.
pub fn splice_text(
    doc: &mut AutoCommit,
    doc_id: &str,
    path: &Path,
    pos: usize,
    del: usize,
    text: &str,
) -> Result<(), DocsError> {
    change(doc, |doc| {
        let (obj, t) = object_at(doc, doc_id, path)?;
        if t != ObjType::Text {
            return Err(wrong(
                path,
                format!("splice_text needs text, found a {}", kind_name(t)),
            ));
        }
        let len = doc.length(&obj);
        if pos.checked_add(del).is_none_or(|end| end > len) {
            return Err(DocsError::Invalid(format!(
                "splice of {del} at {pos} is out of range for the text at {:?} (length {len})",
                path.to_string()
            )));
        }
        let del =
            isize::try_from(del).map_err(|_| DocsError::Invalid("delete too large".into()))?;
        doc.splice_text(&obj, pos, del, text).map_err(am)
    })
}

/// Adds `by` to the counter at `path`.
pub fn increment(
    doc: &mut AutoCommit,
    doc_id: &str,
    path: &Path,
    by: i64,
) -> Result<(), DocsError> {
    change(doc, |doc| {
        let (obj, _, prop) = parent_of(doc, doc_id, path)?;
        match doc.get(&obj, prop.clone()).map_err(am)? {
            Some((automerge::Value::Scalar(s), _)) if matches!(*s, ScalarValue::Counter(_)) => {}
            Some((v, id)) => {
                let found = read(doc, v, &id)?;
                return Err(wrong(
                    path,
                    format!("increment needs a counter, found a {}", found.type_name()),
                ));
            }
            None => {
                return Err(DocsError::NoSuchPath {
                    doc: doc_id.to_string(),
                    path: path.to_string(),
                })
            }
        }
        doc.increment(&obj, prop, by).map_err(am)
    })
}

/// The heads of `doc`, as hex strings (sorted).
pub fn heads(doc: &mut AutoCommit) -> Vec<String> {
    let mut h: Vec<String> = doc.get_heads().iter().map(|h| h.to_string()).collect();
    h.sort();
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Path {
        Path::parse(s).unwrap()
    }

    #[test]
    fn edits_round_trip() {
        let mut d = AutoCommit::new();
        put(&mut d, "d", &p("title"), &Value::Str("x".into())).unwrap();
        put(&mut d, "d", &p("items"), &Value::List(vec![Value::Int(1)])).unwrap();
        insert(&mut d, "d", &p("items"), 1, &Value::Bool(true)).unwrap();
        put(&mut d, "d", &p("n"), &Value::Counter(1)).unwrap();
        increment(&mut d, "d", &p("n"), 4).unwrap();
        put(&mut d, "d", &p("t"), &Value::Text("helo".into())).unwrap();
        splice_text(&mut d, "d", &p("t"), 3, 0, "l").unwrap();
        assert_eq!(
            get(&d, "d", &p("t")).unwrap(),
            Some(Value::Text("hello".into()))
        );
        assert_eq!(get(&d, "d", &p("n")).unwrap(), Some(Value::Counter(5)));
        assert_eq!(
            get(&d, "d", &p("items/1")).unwrap(),
            Some(Value::Bool(true))
        );
        assert_eq!(get(&d, "d", &p("items/5")).unwrap(), None);
        assert_eq!(get(&d, "d", &p("nope/x")).unwrap(), None);
        delete(&mut d, "d", &p("items/0")).unwrap();
        assert_eq!(
            get(&d, "d", &p("")).unwrap().unwrap().to_json(),
            r#"{"items":[true],"n":5,"t":"hello","title":"x"}"#
        );
    }

    #[test]
    fn errors_are_typed_and_roll_back() {
        let mut d = AutoCommit::new();
        put(&mut d, "d", &p("s"), &Value::Str("x".into())).unwrap();
        let before = heads(&mut d);
        assert!(matches!(
            increment(&mut d, "d", &p("s"), 1),
            Err(DocsError::WrongType { .. })
        ));
        assert!(matches!(
            insert(&mut d, "d", &p("s"), 0, &Value::Null),
            Err(DocsError::WrongType { .. })
        ));
        assert!(matches!(
            put(&mut d, "d", &p("a/b"), &Value::Null),
            Err(DocsError::NoSuchPath { .. })
        ));
        assert!(matches!(
            delete(&mut d, "d", &p("zz")),
            Err(DocsError::NoSuchPath { .. })
        ));
        assert_eq!(heads(&mut d), before);
    }
}
