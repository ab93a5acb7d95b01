//! Paths into a document: a list of map keys and list indexes.
//!
//! The string form is slash-separated, like a JSON pointer without its leading slash
//! (ADR 0020): `"todo/0/title"`. A leading `/` is allowed and ignored; the empty string
//! (or `"/"`) is the root. In a segment, `~1` stands for `/` and `~0` for `~`. A segment
//! of decimal digits is an index when its parent is a list or text, and the key of that
//! name when its parent is a map (JSON pointer's rule), so map keys like `"2026"` work.

use std::fmt;
use std::str::FromStr;

use super::error::DocsError;

/// Longest path accepted, in segments (a guard against hostile input).
pub const MAX_DEPTH: usize = 64;

/// One step of a [`Path`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Seg {
    /// A map key.
    Key(String),
    /// A list (or text) index; under a map, the key of the same decimal digits.
    Index(usize),
}

impl Seg {
    /// The segment as a map key (an index's decimal digits).
    pub fn as_key(&self) -> String {
        match self {
            Seg::Key(k) => k.clone(),
            Seg::Index(i) => i.to_string(),
        }
    }
}

/// A path from the document's root map to a value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Path(pub Vec<Seg>);

impl Path {
    /// The root.
    pub fn root() -> Path {
        Path(Vec::new())
    }

    /// This path with a key appended.
    pub fn key(mut self, key: impl Into<String>) -> Path {
        self.0.push(Seg::Key(key.into()));
        self
    }

    /// This path with an index appended.
    pub fn index(mut self, index: usize) -> Path {
        self.0.push(Seg::Index(index));
        self
    }

    /// Whether this is the root.
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// The parent and the last segment, or `None` for the root.
    pub fn split_last(&self) -> Option<(Path, &Seg)> {
        let (last, parent) = self.0.split_last()?;
        Some((Path(parent.to_vec()), last))
    }

    /// Parses the string form (see the module docs).
    pub fn parse(s: &str) -> Result<Path, DocsError> {
        let bad = |why: &str| DocsError::BadPath {
            path: s.to_string(),
            why: why.to_string(),
        };
        let body = s.strip_prefix('/').unwrap_or(s);
        if body.is_empty() {
            return Ok(Path::root());
        }
        let mut segs = Vec::new();
        for raw in body.split('/') {
            if segs.len() == MAX_DEPTH {
                return Err(bad(&format!("more than {MAX_DEPTH} segments")));
            }
            if raw.is_empty() {
                return Err(bad("empty segment (two slashes, or a trailing slash)"));
            }
            let mut seg = String::with_capacity(raw.len());
            let mut chars = raw.chars();
            while let Some(c) = chars.next() {
                if c == '~' {
                    match chars.next() {
                        Some('0') => seg.push('~'),
                        Some('1') => seg.push('/'),
                        _ => return Err(bad("`~` must be followed by 0 or 1")),
                    }
                } else {
                    seg.push(c);
                }
            }
            let is_index =
                raw.bytes().all(|b| b.is_ascii_digit()) && (raw == "0" || !raw.starts_with('0'));
            match (is_index, raw.parse::<usize>()) {
                (true, Ok(i)) => segs.push(Seg::Index(i)),
                _ => segs.push(Seg::Key(seg)),
            }
        }
        Ok(Path(segs))
    }
}

impl FromStr for Path {
    type Err = DocsError;

    fn from_str(s: &str) -> Result<Path, DocsError> {
        Path::parse(s)
    }
}

impl TryFrom<&str> for Path {
    type Error = DocsError;

    fn try_from(s: &str) -> Result<Path, DocsError> {
        Path::parse(s)
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("/")?;
            }
            match seg {
                Seg::Key(k) => f.write_str(&k.replace('~', "~0").replace('/', "~1"))?,
                Seg::Index(n) => write!(f, "{n}")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_keys_indexes_and_escapes() {
        let p = Path::parse("a/0/b~1c/d~0e/12").unwrap();
        assert_eq!(
            p,
            Path::root()
                .key("a")
                .index(0)
                .key("b/c")
                .key("d~e")
                .index(12)
        );
        assert_eq!(p.to_string(), "a/0/b~1c/d~0e/12");
        assert_eq!(Path::parse("/x").unwrap(), Path::root().key("x"));
        assert!(Path::parse("").unwrap().is_root());
        assert!(Path::parse("/").unwrap().is_root());
        // A leading zero is a key, not an index.
        assert_eq!(Path::parse("01").unwrap(), Path::root().key("01"));
    }

    #[test]
    fn refuses_bad_paths() {
        for bad in ["a//b", "a/", "a/~2", "a/~"] {
            assert!(Path::parse(bad).is_err(), "{bad}");
        }
        let deep = vec!["a"; MAX_DEPTH + 1].join("/");
        assert!(Path::parse(&deep).is_err());
    }
}
