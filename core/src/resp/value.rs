//! One RESP2/RESP3 value, as parsed or to be written.

use bytes::Bytes;

/// A RESP value of any type of RESP2 or RESP3. The writer downgrades RESP3-only types for
/// a RESP2 client (a map becomes a flat array, null becomes a null bulk string, ...).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `+OK`.
    Simple(String),
    /// `-ERR message` (the first word is the error code).
    Error(String),
    /// `:42`.
    Integer(i64),
    /// `$3\r\nfoo`.
    Bulk(Bytes),
    /// `*2\r\n...`.
    Array(Vec<Value>),
    /// RESP2's `$-1` / `*-1`, RESP3's `_`.
    Null,
    /// RESP2's null array `*-1` (RESP3: `_`).
    NullArray,
    /// RESP3 `#t` / `#f`.
    Boolean(bool),
    /// RESP3 `,3.14`.
    Double(f64),
    /// RESP3 `(12345678901234567890`, kept as its digits.
    BigNumber(String),
    /// RESP3 `!len\r\ncode message`.
    BlobError(Bytes),
    /// RESP3 `=len\r\ntxt:text` (format, then text).
    Verbatim(String, Bytes),
    /// RESP3 `%n` key/value pairs.
    Map(Vec<(Value, Value)>),
    /// RESP3 `~n`.
    Set(Vec<Value>),
    /// RESP3 `|n` attributes (pairs), which precede the value they describe.
    Attribute(Vec<(Value, Value)>),
    /// RESP3 `>n` out-of-band push (pub/sub messages).
    Push(Vec<Value>),
}

impl Value {
    /// `+OK`.
    pub fn ok() -> Value {
        Value::Simple("OK".to_string())
    }

    /// An error reply; `msg` starts with its code (`ERR ...`, `WRONGTYPE ...`).
    pub fn err(msg: impl Into<String>) -> Value {
        Value::Error(msg.into())
    }

    /// A bulk string.
    pub fn bulk(b: impl Into<Bytes>) -> Value {
        Value::Bulk(b.into())
    }

    /// A bulk string, or null for `None`.
    pub fn opt_bulk(b: Option<Bytes>) -> Value {
        b.map_or(Value::Null, Value::Bulk)
    }

    /// The bytes of a string-like value (bulk, simple, verbatim), for reading commands.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bulk(b) => Some(b),
            Value::Simple(s) => Some(s.as_bytes()),
            Value::Verbatim(_, b) => Some(b),
            _ => None,
        }
    }
}
