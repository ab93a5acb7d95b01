//! The RESP writer: RESP3 as is, or downgraded to RESP2 for a RESP2 client.

use std::io::Write as _;

use bytes::{BufMut, BytesMut};

use crate::resp::value::Value;

/// The protocol a connection speaks (`HELLO 2|3`; RESP2 until a `HELLO 3`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// RESP2.
    #[default]
    Resp2,
    /// RESP3.
    Resp3,
}

fn line(out: &mut BytesMut, tag: u8, body: &[u8]) {
    out.reserve(body.len() + 3);
    out.put_u8(tag);
    out.put_slice(body);
    out.put_slice(b"\r\n");
}

fn head(out: &mut BytesMut, tag: u8, n: usize) {
    line(out, tag, itoa::Buffer::new().format(n).as_bytes());
}

fn blob(out: &mut BytesMut, tag: u8, b: &[u8]) {
    head(out, tag, b.len());
    out.reserve(b.len() + 2);
    out.put_slice(b);
    out.put_slice(b"\r\n");
}

/// Simple strings and errors are one line: CR and LF inside become spaces.
fn one_line(s: &str) -> Vec<u8> {
    s.bytes()
        .map(|c| if c == b'\r' || c == b'\n' { b' ' } else { c })
        .collect()
}

fn double_text(d: f64) -> String {
    if d.is_nan() {
        "nan".to_string()
    } else if d.is_infinite() {
        if d > 0.0 { "inf" } else { "-inf" }.to_string()
    } else {
        let mut s = Vec::new();
        let _ = write!(s, "{d}");
        String::from_utf8_lossy(&s).into_owned()
    }
}

/// Appends `v` to `out` in `proto`.
pub fn write(out: &mut BytesMut, v: &Value, proto: Protocol) {
    let r3 = proto == Protocol::Resp3;
    match v {
        Value::Simple(s) => line(out, b'+', &one_line(s)),
        Value::Error(s) => line(out, b'-', &one_line(s)),
        Value::Integer(n) => line(out, b':', itoa::Buffer::new().format(*n).as_bytes()),
        Value::Bulk(b) => blob(out, b'$', b),
        Value::Array(items) => {
            head(out, b'*', items.len());
            for i in items {
                write(out, i, proto);
            }
        }
        Value::Null if r3 => out.put_slice(b"_\r\n"),
        Value::Null => out.put_slice(b"$-1\r\n"),
        Value::NullArray if r3 => out.put_slice(b"_\r\n"),
        Value::NullArray => out.put_slice(b"*-1\r\n"),
        Value::Boolean(b) if r3 => out.put_slice(if *b { b"#t\r\n" } else { b"#f\r\n" }),
        Value::Boolean(b) => out.put_slice(if *b { b":1\r\n" } else { b":0\r\n" }),
        Value::Double(d) if r3 => line(out, b',', double_text(*d).as_bytes()),
        Value::Double(d) => blob(out, b'$', double_text(*d).as_bytes()),
        Value::BigNumber(s) if r3 => line(out, b'(', s.as_bytes()),
        Value::BigNumber(s) => blob(out, b'$', s.as_bytes()),
        Value::BlobError(b) if r3 => blob(out, b'!', b),
        Value::BlobError(b) => line(out, b'-', &one_line(&String::from_utf8_lossy(b))),
        Value::Verbatim(f, b) if r3 => {
            let mut body = Vec::with_capacity(b.len() + 4);
            body.extend_from_slice(f.as_bytes());
            body.push(b':');
            body.extend_from_slice(b);
            blob(out, b'=', &body);
        }
        Value::Verbatim(_, b) => blob(out, b'$', b),
        // RESP2 has no attributes: they are dropped (the value they describe follows).
        Value::Attribute(_) if !r3 => {}
        Value::Map(pairs) | Value::Attribute(pairs) => {
            let tag = if matches!(v, Value::Map(_)) {
                b'%'
            } else {
                b'|'
            };
            if r3 {
                head(out, tag, pairs.len());
            } else {
                head(out, b'*', pairs.len() * 2);
            }
            for (k, v) in pairs {
                write(out, k, proto);
                write(out, v, proto);
            }
        }
        Value::Set(items) | Value::Push(items) => {
            let tag = match (r3, v) {
                (false, _) => b'*',
                (true, Value::Set(_)) => b'~',
                (true, _) => b'>',
            };
            head(out, tag, items.len());
            for i in items {
                write(out, i, proto);
            }
        }
    }
}
