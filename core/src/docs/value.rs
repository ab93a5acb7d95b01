//! The values of a document, as plain data (binding-friendly), and their JSON form.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// A value in a document: JSON-like, plus bytes, text and counters.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// JSON null.
    Null,
    /// A boolean.
    Bool(bool),
    /// A signed integer (Automerge's unsigned and timestamp values read as this too).
    Int(i64),
    /// A float.
    Float(f64),
    /// A string (a scalar: replaced whole on every put; see [`Value::Text`]).
    Str(String),
    /// Bytes.
    Bytes(Vec<u8>),
    /// A map (as a whole: putting one creates a map object and puts each entry).
    Map(BTreeMap<String, Value>),
    /// A list.
    List(Vec<Value>),
    /// Collaborative text (merged character by character; edit with `splice_text`).
    Text(String),
    /// A counter (concurrent increments add up; edit with `increment`).
    Counter(i64),
}

impl Value {
    /// About how many bytes this value adds to a document (its strings and bytes, plus
    /// a few per element): what the size cap checks an edit against before making it.
    pub fn approx_size(&self) -> u64 {
        const ELEMENT: u64 = 8;
        match self {
            Value::Null | Value::Bool(_) | Value::Int(_) | Value::Float(_) | Value::Counter(_) => {
                ELEMENT
            }
            Value::Str(s) | Value::Text(s) => ELEMENT + s.len() as u64,
            Value::Bytes(b) => ELEMENT + b.len() as u64,
            Value::Map(m) => m.iter().fold(ELEMENT, |n, (k, v)| {
                n.saturating_add(k.len() as u64)
                    .saturating_add(v.approx_size())
            }),
            Value::List(l) => l
                .iter()
                .fold(ELEMENT, |n, v| n.saturating_add(v.approx_size())),
        }
    }

    /// The name of this value's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "string",
            Value::Bytes(_) => "bytes",
            Value::Map(_) => "map",
            Value::List(_) => "list",
            Value::Text(_) => "text",
            Value::Counter(_) => "counter",
        }
    }

    /// The JSON form: text as a string, counters as numbers, bytes as a base64 string.
    /// Floats that JSON cannot hold (NaN, infinities) become `null`.
    pub fn to_json(&self) -> String {
        let mut out = String::new();
        self.write_json(&mut out);
        out
    }

    fn write_json(&self, out: &mut String) {
        match self {
            Value::Null => out.push_str("null"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Int(n) | Value::Counter(n) => {
                let _ = write!(out, "{n}");
            }
            Value::Float(f) if f.is_finite() => {
                let _ = write!(out, "{f:?}");
            }
            Value::Float(_) => out.push_str("null"),
            Value::Str(s) | Value::Text(s) => write_str(out, s),
            Value::Bytes(b) => write_str(out, &data_encoding::BASE64.encode(b)),
            Value::Map(m) => {
                out.push('{');
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_str(out, k);
                    out.push(':');
                    v.write_json(out);
                }
                out.push('}');
            }
            Value::List(l) => {
                out.push('[');
                for (i, v) in l.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    v.write_json(out);
                }
                out.push(']');
            }
        }
    }
}

fn write_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Float(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Str(v.to_string())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Str(v)
    }
}

impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Self {
        Value::Bytes(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_form() {
        let mut m = BTreeMap::new();
        m.insert(
            "a\"b".to_string(),
            Value::List(vec![Value::Int(1), Value::Null]),
        );
        m.insert("t".to_string(), Value::Text("x\ny".into()));
        m.insert("f".to_string(), Value::Float(1.5));
        m.insert("b".to_string(), Value::Bytes(vec![1, 2, 3]));
        assert_eq!(
            Value::Map(m).to_json(),
            r#"{"a\"b":[1,null],"b":"AQID","f":1.5,"t":"x\ny"}"#
        );
    }
}
