//! The RESP2/RESP3 parser: bounded, and resumable over partial input.
//!
//! [`parse`] looks at the bytes received so far and returns either one complete value and
//! how many bytes it used, or `None` when more bytes are needed (call it again once they
//! came). Every length is checked against [`RespLimits`] when it is read, before the
//! bytes it announces are awaited, so an oversized frame fails at once. Commands come as
//! arrays of bulk strings or as inline lines (`SET k v`); [`parse_command`] reads both.

use bytes::Bytes;

use crate::resp::error::RespError;
use crate::resp::limits::RespLimits;
use crate::resp::value::Value;

/// What a step returns: `Ok(None)` means "incomplete, wait for more bytes".
type Step<T> = Result<Option<T>, RespError>;

/// Unwraps a step's value or returns "incomplete".
macro_rules! need {
    ($e:expr) => {
        match $e? {
            Some(v) => v,
            None => return Ok(None),
        }
    };
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    limits: &'a RespLimits,
}

impl<'a> Cursor<'a> {
    /// The next CRLF-terminated line (without the CRLF).
    fn line(&mut self) -> Step<&'a [u8]> {
        let rest = &self.buf[self.pos..];
        let window = &rest[..rest.len().min(self.limits.max_inline.saturating_add(2))];
        match window.windows(2).position(|w| w == b"\r\n") {
            Some(end) => {
                if end > self.limits.max_inline {
                    return Err(RespError::InlineTooLong(self.limits.max_inline));
                }
                self.pos += end + 2;
                Ok(Some(&rest[..end]))
            }
            None if rest.len() > self.limits.max_inline.saturating_add(1) => {
                Err(RespError::InlineTooLong(self.limits.max_inline))
            }
            None => Ok(None),
        }
    }

    fn int(&mut self, what: &'static str) -> Step<i64> {
        let line = need!(self.line());
        Ok(Some(parse_int(line).ok_or(RespError::BadNumber(what))?))
    }

    /// A length: -1 (null) or 0..=max.
    fn len(&mut self, what: &'static str, max: usize) -> Step<Option<usize>> {
        let n = need!(self.int(what));
        if n == -1 {
            return Ok(Some(None));
        }
        let n = u64::try_from(n).map_err(|_| RespError::BadNumber(what))?;
        if n > max as u64 {
            return Err(if what == "bulk length" {
                RespError::BulkTooLong { len: n, max }
            } else {
                RespError::ArrayTooLong { len: n, max }
            });
        }
        Ok(Some(Some(n as usize)))
    }

    /// A length-prefixed payload of `n` bytes and its CRLF.
    fn payload(&mut self, n: usize) -> Step<&'a [u8]> {
        let rest = &self.buf[self.pos..];
        if rest.len() < n + 2 {
            return Ok(None);
        }
        if &rest[n..n + 2] != b"\r\n" {
            return Err(RespError::NoCrlf);
        }
        self.pos += n + 2;
        Ok(Some(&rest[..n]))
    }

    fn blob(&mut self) -> Step<Option<Bytes>> {
        let Some(n) = need!(self.len("bulk length", self.limits.max_bulk)) else {
            return Ok(Some(None));
        };
        let p = need!(self.payload(n));
        Ok(Some(Some(Bytes::copy_from_slice(p))))
    }

    fn items(&mut self, n: usize, depth: usize) -> Step<Vec<Value>> {
        let mut out = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            out.push(need!(self.value(depth + 1)));
        }
        Ok(Some(out))
    }

    fn pairs(&mut self, depth: usize) -> Step<Vec<(Value, Value)>> {
        let n = need!(self.len("map length", self.limits.max_array / 2))
            .ok_or(RespError::BadNumber("map length"))?;
        let mut out = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            let k = need!(self.value(depth + 1));
            let v = need!(self.value(depth + 1));
            out.push((k, v));
        }
        Ok(Some(out))
    }

    fn aggregate_len(&mut self) -> Step<usize> {
        let n = need!(self.len("multibulk length", self.limits.max_array));
        Ok(Some(n.ok_or(RespError::BadNumber("multibulk length"))?))
    }

    fn value(&mut self, depth: usize) -> Step<Value> {
        let Some(&tag) = self.buf.get(self.pos) else {
            return Ok(None);
        };
        let aggregate = matches!(tag, b'*' | b'%' | b'~' | b'|' | b'>');
        if aggregate && depth >= self.limits.max_depth {
            return Err(RespError::TooDeep(self.limits.max_depth));
        }
        let start = self.pos;
        self.pos += 1;
        let v = match tag {
            b'+' => Value::Simple(text(need!(self.line()))),
            b'-' => Value::Error(text(need!(self.line()))),
            b':' => Value::Integer(need!(self.int("integer"))),
            b'$' => need!(self.blob()).map_or(Value::Null, Value::Bulk),
            b'*' => match need!(self.len("multibulk length", self.limits.max_array)) {
                None => Value::NullArray,
                Some(n) => Value::Array(need!(self.items(n, depth))),
            },
            b'_' => {
                if !need!(self.line()).is_empty() {
                    return Err(RespError::NoCrlf);
                }
                Value::Null
            }
            b'#' => match need!(self.line()) {
                b"t" => Value::Boolean(true),
                b"f" => Value::Boolean(false),
                _ => return Err(RespError::BadBoolean),
            },
            b',' => Value::Double(parse_double(need!(self.line())).ok_or(RespError::BadDouble)?),
            b'(' => {
                let line = need!(self.line());
                let digits = line.strip_prefix(b"-").unwrap_or(line);
                let digits = digits.strip_prefix(b"+").unwrap_or(digits);
                if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
                    return Err(RespError::BadNumber("big number"));
                }
                Value::BigNumber(text(line))
            }
            b'!' => {
                Value::BlobError(need!(self.blob()).ok_or(RespError::BadNumber("bulk length"))?)
            }
            b'=' => {
                let b = need!(self.blob()).ok_or(RespError::BadNumber("bulk length"))?;
                if b.len() < 4 || b[3] != b':' {
                    return Err(RespError::BadNumber("verbatim format"));
                }
                Value::Verbatim(text(&b[..3]), b.slice(4..))
            }
            b'%' => Value::Map(need!(self.pairs(depth))),
            b'|' => Value::Attribute(need!(self.pairs(depth))),
            b'~' => {
                let n = need!(self.aggregate_len());
                Value::Set(need!(self.items(n, depth)))
            }
            b'>' => {
                let n = need!(self.aggregate_len());
                Value::Push(need!(self.items(n, depth)))
            }
            other => {
                self.pos = start;
                return Err(RespError::BadType(other));
            }
        };
        Ok(Some(v))
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A decimal `i64` (optional sign, digits only).
pub(crate) fn parse_int(b: &[u8]) -> Option<i64> {
    let digits = b.strip_prefix(b"-").unwrap_or(b);
    if digits.is_empty() || digits.len() > 20 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(b).ok()?.parse().ok()
}

fn parse_double(b: &[u8]) -> Option<f64> {
    match b {
        b"inf" | b"+inf" => Some(f64::INFINITY),
        b"-inf" => Some(f64::NEG_INFINITY),
        b"nan" | b"-nan" => Some(f64::NAN),
        _ => {
            let s = std::str::from_utf8(b).ok()?;
            if s.is_empty()
                || !s
                    .bytes()
                    .all(|c| c.is_ascii_digit() || b"+-.eE".contains(&c))
            {
                return None;
            }
            s.parse().ok()
        }
    }
}

/// Parses one value from the start of `buf`: `Ok(Some((value, used)))`, or `Ok(None)` if
/// `buf` holds only the beginning of one.
pub fn parse(buf: &[u8], limits: &RespLimits) -> Result<Option<(Value, usize)>, RespError> {
    let mut c = Cursor {
        buf,
        pos: 0,
        limits,
    };
    Ok(c.value(0)?.map(|v| (v, c.pos)))
}

/// Parses one command from the start of `buf`: an array of bulk strings, or an inline
/// line. Returns its arguments (empty for a blank line or `*0`, which are skipped) and the
/// bytes used, or `None` if more bytes are needed.
pub fn parse_command(
    buf: &[u8],
    limits: &RespLimits,
) -> Result<Option<(Vec<Bytes>, usize)>, RespError> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    if first != b'*' {
        return inline(buf, limits);
    }
    let mut c = Cursor {
        buf,
        pos: 1,
        limits,
    };
    let Some(n) = c.aggregate_len()? else {
        return Ok(None);
    };
    let mut args = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        match buf.get(c.pos) {
            None => return Ok(None),
            Some(b'$') => {}
            Some(_) => return Err(RespError::NotACommand),
        }
        c.pos += 1;
        match c.blob()? {
            None => return Ok(None),
            Some(None) => return Err(RespError::NotACommand),
            Some(Some(b)) => args.push(b),
        }
    }
    Ok(Some((args, c.pos)))
}

/// An inline command: one line (LF or CRLF), split like Redis's `sdssplitargs`.
fn inline(buf: &[u8], limits: &RespLimits) -> Result<Option<(Vec<Bytes>, usize)>, RespError> {
    let window = &buf[..buf.len().min(limits.max_inline.saturating_add(1))];
    let Some(end) = window.iter().position(|&b| b == b'\n') else {
        if buf.len() > limits.max_inline {
            return Err(RespError::InlineTooLong(limits.max_inline));
        }
        return Ok(None);
    };
    let line = &buf[..end];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    Ok(Some((split_args(line)?, end + 1)))
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// Splits an inline line into arguments: blanks separate them; `"..."` with escapes
/// (`\n`, `\r`, `\t`, `\b`, `\a`, `\\`, `\"`, `\xHH`) and `'...'` (with `\'`) quote them.
pub(crate) fn split_args(line: &[u8]) -> Result<Vec<Bytes>, RespError> {
    let mut args = Vec::new();
    let mut i = 0;
    let n = line.len();
    loop {
        while i < n && line[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= n {
            return Ok(args);
        }
        let mut cur = Vec::new();
        let (mut dq, mut sq) = (false, false);
        loop {
            if dq {
                match line.get(i) {
                    None => return Err(RespError::Quotes),
                    Some(b'\\') if i + 3 < n && line[i + 1] == b'x' => {
                        match (hex(line[i + 2]), hex(line[i + 3])) {
                            (Some(h), Some(l)) => {
                                cur.push(h * 16 + l);
                                i += 3;
                            }
                            _ => {
                                cur.push(b'x');
                                i += 1;
                            }
                        }
                    }
                    Some(b'\\') if i + 1 < n => {
                        i += 1;
                        cur.push(match line[i] {
                            b'n' => b'\n',
                            b'r' => b'\r',
                            b't' => b'\t',
                            b'b' => 8,
                            b'a' => 7,
                            c => c,
                        });
                    }
                    Some(b'"') => {
                        if i + 1 < n && !line[i + 1].is_ascii_whitespace() {
                            return Err(RespError::Quotes);
                        }
                        dq = false;
                        i += 1;
                        break;
                    }
                    Some(&c) => cur.push(c),
                }
            } else if sq {
                match line.get(i) {
                    None => return Err(RespError::Quotes),
                    Some(b'\\') if i + 1 < n && line[i + 1] == b'\'' => {
                        i += 1;
                        cur.push(b'\'');
                    }
                    Some(b'\'') => {
                        if i + 1 < n && !line[i + 1].is_ascii_whitespace() {
                            return Err(RespError::Quotes);
                        }
                        sq = false;
                        i += 1;
                        break;
                    }
                    Some(&c) => cur.push(c),
                }
            } else {
                match line.get(i) {
                    None => break,
                    Some(c) if c.is_ascii_whitespace() => break,
                    Some(b'"') => dq = true,
                    Some(b'\'') => sq = true,
                    Some(&c) => cur.push(c),
                }
            }
            i += 1;
        }
        debug_assert!(!dq && !sq);
        args.push(Bytes::from(cur));
    }
}
