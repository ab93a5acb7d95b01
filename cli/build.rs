//! Sets `MEMMESH_GIT_COMMIT` for `memmesh --version`: the commit `cargo package` recorded
//! in `.cargo_vcs_info.json` (a crate from a registry), else the short commit of the
//! checkout being built (`git rev-parse --short HEAD`; uncommitted changes are not
//! marked), else `unknown` (a source tree without git).

use std::path::Path;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    if text.is_empty() {
        None
    } else {
        Some(text.to_owned())
    }
}

/// The commit of a packaged crate: `"sha1": "<40 hex>"` in `.cargo_vcs_info.json`.
fn packaged_commit() -> Option<String> {
    let info = std::fs::read_to_string(".cargo_vcs_info.json").ok()?;
    let start = info.find("\"sha1\"")? + "\"sha1\"".len();
    let rest = &info[start..];
    let open = rest.find('"')? + 1;
    let len = rest[open..].find('"')?;
    let sha = &rest[open..open + len];
    if sha.len() >= 9 && sha.chars().all(|c| c.is_ascii_hexdigit()) {
        Some(sha[..9].to_owned())
    } else {
        None
    }
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=.cargo_vcs_info.json");
    if let Some(commit) = packaged_commit() {
        println!("cargo:rustc-env=MEMMESH_GIT_COMMIT={commit}");
        return;
    }
    let commit = match git(&["rev-parse", "--short=9", "HEAD"]) {
        Some(short) => {
            // Rebuild when HEAD moves: HEAD itself, the branch it points to, packed refs.
            for path in [
                git(&["rev-parse", "--git-path", "HEAD"]),
                git(&["symbolic-ref", "-q", "HEAD"])
                    .and_then(|branch| git(&["rev-parse", "--git-path", &branch])),
                git(&["rev-parse", "--git-path", "packed-refs"]),
            ]
            .into_iter()
            .flatten()
            {
                if Path::new(&path).exists() {
                    println!("cargo:rerun-if-changed={path}");
                }
            }
            short
        }
        None => "unknown".to_owned(),
    };
    println!("cargo:rustc-env=MEMMESH_GIT_COMMIT={commit}");
}
