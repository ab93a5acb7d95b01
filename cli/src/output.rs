//! Output: text or JSON, errors and exit codes, progress bars.
//!
//! Exit codes: 0 ok; 1 the operation failed (a node unreachable, a key absent, the
//! daemon refusing); 2 bad usage or configuration (flags, config file, environment).

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value as Json;

/// Exit code: the operation failed.
pub const EXIT_FAILED: i32 = 1;
/// Exit code: bad usage or configuration.
pub const EXIT_USAGE: i32 = 2;

/// A usage error (exit code 2).
#[derive(Debug)]
pub struct Usage(pub String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

/// A usage error as an `anyhow::Error`.
pub fn usage(msg: impl Into<String>) -> anyhow::Error {
    Usage(msg.into()).into()
}

/// An operation the daemon reported failed, with its error kind.
#[derive(Debug)]
pub struct Failed {
    /// The daemon's message.
    pub message: String,
    /// The [`memmesh::ErrorKind`] name.
    pub kind: String,
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failed {}

/// The exit code of an error.
pub fn exit_code(e: &anyhow::Error) -> i32 {
    if e.downcast_ref::<Usage>().is_some()
        || e.downcast_ref::<crate::config::ConfigError>().is_some()
    {
        return EXIT_USAGE;
    }
    EXIT_FAILED
}

/// The kind name of an error (for `--json` errors).
pub fn kind_of(e: &anyhow::Error) -> String {
    if let Some(f) = e.downcast_ref::<Failed>() {
        return f.kind.clone();
    }
    if let Some(m) = e.downcast_ref::<memmesh::Error>() {
        return format!("{:?}", m.kind());
    }
    if exit_code(e) == EXIT_USAGE {
        return "Usage".into();
    }
    "Other".into()
}

/// How results are printed.
#[derive(Debug, Clone, Copy)]
pub struct Out {
    /// JSON on stdout.
    pub json: bool,
}

impl Out {
    /// Prints `text`, or `value` with `--json`.
    pub fn print(&self, text: impl std::fmt::Display, value: Json) {
        if self.json {
            println!("{value}");
        } else {
            println!("{text}");
        }
    }

    /// A progress bar of `total` bytes, drawn on stderr only when it is a terminal and
    /// the output is not JSON.
    pub fn bar(&self, total: u64, what: &str) -> ProgressBar {
        let pb = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        if self.json || !std::io::stderr().is_terminal() {
            pb.set_draw_target(ProgressDrawTarget::hidden());
        }
        let style = ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        pb.set_style(style);
        pb.set_message(what.to_string());
        pb
    }
}
