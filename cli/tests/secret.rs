//! `memmesh secret new`, the weak-secret warning, `--open`, and deadlines the CLI refuses.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};

fn memmesh() -> Command {
    Command::new(env!("CARGO_BIN_EXE_memmesh"))
}

#[test]
fn secret_new_prints_a_fresh_high_entropy_secret() {
    let run = || {
        let out = memmesh().args(["secret", "new"]).output().unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let a = run();
    let b = run();
    assert_eq!(a.len(), 64, "{a}");
    assert!(
        a.bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()),
        "{a}"
    );
    assert_ne!(a, b);
    assert!(memmesh::transport::auth::weakness(a.as_bytes()).is_none());
}

/// Starts `memmesh node` with `args`, waits for its banner, stops it, returns its stderr.
fn node_stderr(args: &[&str]) -> String {
    let mut child = memmesh()
        .args(["node", "--listen", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut banner = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut banner)
        .unwrap();
    assert!(banner.contains("listening on"), "{banner:?}");
    child.kill().unwrap();
    child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    err
}

#[test]
fn a_weak_secret_is_warned_about_at_start() {
    let err = node_stderr(&["--secret", "hunter2"]);
    assert!(err.contains("weak") && err.contains("secret new"), "{err}");
    let strong =
        String::from_utf8(memmesh().args(["secret", "new"]).output().unwrap().stdout).unwrap();
    let err = node_stderr(&["--secret", strong.trim()]);
    assert!(!err.contains("weak"), "{err}");
    // `--open` is accepted (and warned about: no authentication at all).
    let err = node_stderr(&["--open"]);
    assert!(err.contains("open = true"), "{err}");
}

#[test]
fn absurd_request_timeouts_are_clear_errors() {
    let forms = ["-1", "0", "nan", "inf", "1e30", "abc"]
        .iter()
        .flat_map(|t| {
            [
                vec!["--timeout".to_string(), t.to_string()],
                vec![format!("--timeout={t}")],
            ]
        });
    for form in forms {
        let t = form.join(" ");
        let out = memmesh()
            .args(["request", "--to", "127.0.0.1:9"])
            .args(&form)
            .arg("hello")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "--timeout {t}: {err}");
        assert!(
            err.contains("timeout") || err.contains("seconds"),
            "--timeout {t}: {err}"
        );
        assert!(!err.contains("panicked"), "--timeout {t}: {err}");
    }
}
