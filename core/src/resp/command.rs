//! The command table: names (case-insensitive), arities and flags, and what `COMMAND`
//! tells clients about them.

use crate::resp::value::Value;

/// What the front knows of one command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandSpec {
    /// Lower-case name.
    pub name: &'static str,
    /// Redis's arity: `n` exactly `n` arguments (the name included), `-n` at least `n`.
    pub arity: i32,
    /// Redis's flags (`write`, `readonly`, `fast`, ...).
    pub flags: &'static [&'static str],
    /// Position of the first key (0: none), of the last (-1: the last argument), and the
    /// step between keys.
    pub keys: (i32, i32, i32),
    /// Whether it runs before `AUTH` when a password is set.
    pub no_auth: bool,
}

const fn c(
    name: &'static str,
    arity: i32,
    flags: &'static [&'static str],
    keys: (i32, i32, i32),
) -> CommandSpec {
    CommandSpec {
        name,
        arity,
        flags,
        keys,
        no_auth: false,
    }
}

const W: &[&str] = &["write"];
const WF: &[&str] = &["write", "fast"];
const RF: &[&str] = &["readonly", "fast"];
const R: &[&str] = &["readonly"];
const F: &[&str] = &["fast"];
const LOADING: &[&str] = &["loading", "stale", "fast"];
const NONE: (i32, i32, i32) = (0, 0, 0);
const ONE: (i32, i32, i32) = (1, 1, 1);
const ALL: (i32, i32, i32) = (1, -1, 1);

/// Every command the front serves, by name.
pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        no_auth: true,
        ..c("auth", -2, LOADING, NONE)
    },
    CommandSpec {
        no_auth: true,
        ..c("hello", -1, LOADING, NONE)
    },
    CommandSpec {
        no_auth: true,
        ..c("quit", -1, LOADING, NONE)
    },
    c("ping", -1, F, NONE),
    c("echo", 2, F, NONE),
    c("client", -2, LOADING, NONE),
    c("select", 2, LOADING, NONE),
    c("command", -1, LOADING, NONE),
    c("info", -1, LOADING, NONE),
    c("config", -2, LOADING, NONE),
    c("dbsize", 1, R, NONE),
    c("flushdb", -1, W, NONE),
    c("flushall", -1, W, NONE),
    c("get", 2, RF, ONE),
    c("set", -3, W, ONE),
    c("setex", 4, W, ONE),
    c("psetex", 4, W, ONE),
    c("getdel", 2, WF, ONE),
    c("del", -2, W, ALL),
    c("unlink", -2, WF, ALL),
    c("exists", -2, RF, ALL),
    c("expire", -3, WF, ONE),
    c("pexpire", -3, WF, ONE),
    c("persist", 2, WF, ONE),
    c("ttl", 2, RF, ONE),
    c("pttl", 2, RF, ONE),
    c("incr", 2, WF, ONE),
    c("incrby", 3, WF, ONE),
    c("decr", 2, WF, ONE),
    c("decrby", 3, WF, ONE),
    c("mget", -2, RF, ALL),
    c("mset", -3, W, (1, -1, 2)),
    c("publish", 3, &["pubsub", "loading", "stale", "fast"], NONE),
    c("pubsub", -2, &["pubsub", "loading", "stale"], NONE),
    c(
        "subscribe",
        -2,
        &["pubsub", "noscript", "loading", "stale"],
        NONE,
    ),
    c(
        "unsubscribe",
        -1,
        &["pubsub", "noscript", "loading", "stale"],
        NONE,
    ),
    c(
        "psubscribe",
        -2,
        &["pubsub", "noscript", "loading", "stale"],
        NONE,
    ),
    c(
        "punsubscribe",
        -1,
        &["pubsub", "noscript", "loading", "stale"],
        NONE,
    ),
    c("spublish", 3, &["pubsub", "loading", "stale", "fast"], ONE),
    c(
        "ssubscribe",
        -2,
        &["pubsub", "noscript", "loading", "stale"],
        ALL,
    ),
    c(
        "sunsubscribe",
        -1,
        &["pubsub", "noscript", "loading", "stale"],
        ALL,
    ),
];

/// The command named `name` (any case).
pub fn lookup(name: &[u8]) -> Option<&'static CommandSpec> {
    COMMANDS
        .iter()
        .find(|c| c.name.as_bytes().eq_ignore_ascii_case(name))
}

impl CommandSpec {
    /// Whether `argc` arguments (the name included) fit the arity.
    pub fn arity_ok(&self, argc: usize) -> bool {
        let argc = argc as i64;
        let a = i64::from(self.arity);
        if a >= 0 {
            argc == a
        } else {
            argc >= -a
        }
    }

    /// The `COMMAND INFO` entry (Redis 7's ten fields).
    pub fn info(&self) -> Value {
        Value::Array(vec![
            Value::bulk(self.name),
            Value::Integer(i64::from(self.arity)),
            Value::Set(
                self.flags
                    .iter()
                    .map(|f| Value::Simple(f.to_string()))
                    .collect(),
            ),
            Value::Integer(i64::from(self.keys.0)),
            Value::Integer(i64::from(self.keys.1)),
            Value::Integer(i64::from(self.keys.2)),
            Value::Set(Vec::new()),
            Value::Set(Vec::new()),
            Value::Array(Vec::new()),
            Value::Array(Vec::new()),
        ])
    }
}

/// The standard reply to an unknown command.
pub fn unknown(args: &[bytes::Bytes]) -> Value {
    let name = args
        .first()
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .unwrap_or_default();
    let mut msg = format!("ERR unknown command '{name}', with args beginning with: ");
    for a in args.iter().skip(1).take(16) {
        msg.push('\'');
        msg.push_str(&String::from_utf8_lossy(&a[..a.len().min(128)]));
        msg.push_str("' ");
    }
    Value::Error(msg)
}

/// The standard reply to a wrong number of arguments.
pub fn wrong_arity(name: &str) -> Value {
    Value::Error(format!(
        "ERR wrong number of arguments for '{name}' command"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_case_insensitive_and_arity_is_redis_s() {
        assert_eq!(lookup(b"GeT").map(|c| c.name), Some("get"));
        assert!(lookup(b"nosuch").is_none());
        let get = lookup(b"get").unwrap();
        assert!(get.arity_ok(2) && !get.arity_ok(1) && !get.arity_ok(3));
        let del = lookup(b"DEL").unwrap();
        assert!(del.arity_ok(2) && del.arity_ok(9) && !del.arity_ok(1));
        let Value::Error(e) = unknown(&[bytes::Bytes::from("foo"), bytes::Bytes::from("a")]) else {
            panic!("not an error")
        };
        assert_eq!(
            e,
            "ERR unknown command 'foo', with args beginning with: 'a' "
        );
    }
}
