//! `memmesh service`: the systemd template unit passes `systemd-analyze verify` (ci/test
//! installs systemd when missing; MEMMESH_SKIP_SYSTEMD=1 skips that check loudly), the
//! launchd plist parses with Python's plistlib, and install / status / uninstall write
//! and remove the files under `--root`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn memmesh(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_memmesh"))
        .args(args)
        .output()
        .unwrap()
}

fn ok(args: &[&str]) -> String {
    let out = memmesh(args);
    assert!(
        out.status.success(),
        "memmesh {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("memmesh-svc-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `systemd-analyze verify` on an instance of the template in `dir`.
fn verify(dir: &Path, unit: &str) {
    if std::env::var("MEMMESH_SKIP_SYSTEMD").as_deref() == Ok("1") {
        eprintln!("SKIPPED: systemd-analyze verify (MEMMESH_SKIP_SYSTEMD=1)");
        return;
    }
    let template = dir.join("memmesh@.service");
    std::fs::write(&template, unit).unwrap();
    let instance = dir.join("memmesh@lab.service");
    let _ = std::fs::remove_file(&instance);
    std::os::unix::fs::symlink(&template, &instance).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&instance)
        .output()
        .unwrap_or_else(|e| {
            panic!("systemd-analyze: {e} (install systemd, as ci/test does, or set MEMMESH_SKIP_SYSTEMD=1)")
        });
    let err = String::from_utf8_lossy(&out.stderr);
    // Only complaints about this unit count (the host's own units may warn).
    let ours: Vec<&str> = err.lines().filter(|l| l.contains("memmesh@")).collect();
    assert!(out.status.success() && ours.is_empty(), "{unit}\n{err}");
}

#[test]
fn the_systemd_units_pass_systemd_analyze_verify() {
    let dir = temp_dir("unit");
    // ExecStart must name an executable that exists for verify: use this test's binary.
    let bin = env!("CARGO_BIN_EXE_memmesh");
    let system = ok(&[
        "service", "install", "--print", "--os", "linux", "--bin", bin,
    ]);
    for line in [
        "Type=notify",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "StateDirectory=memmesh/%i",
        "Restart=on-failure",
        "LoadCredential=config.toml:/etc/memmesh/%i.toml",
    ] {
        assert!(system.lines().any(|l| l == line), "no {line}:\n{system}");
    }
    assert!(system.contains(&format!("ExecStart={bin} node --config")));
    verify(&dir, &system);
    let user = ok(&[
        "service", "install", "--print", "--os", "linux", "--user", "--bin", bin,
    ]);
    assert!(user.contains("--config %E/memmesh/%i.toml"), "{user}");
    verify(&dir, &user);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_launchd_plist_parses_with_plistlib() {
    for scope in ["--system", "--user"] {
        let plist = ok(&[
            "service",
            "install",
            "--print",
            "--os",
            "macos",
            scope,
            "--instance",
            "lab",
            "--bin",
            "/usr/local/bin/memmesh",
        ]);
        let out = Command::new("python3")
            .args([
                "-c",
                "import plistlib,sys,json; p=plistlib.loads(sys.stdin.buffer.read()); print(json.dumps(p))",
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write;
                c.stdin.take().unwrap().write_all(plist.as_bytes())?;
                c.wait_with_output()
            })
            .unwrap();
        assert!(out.status.success(), "{plist}");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["Label"], "org.memmesh.node.lab");
        assert_eq!(v["ProgramArguments"][0], "/usr/local/bin/memmesh");
        assert_eq!(v["ProgramArguments"][1], "node");
        assert_eq!(v["KeepAlive"]["SuccessfulExit"], false);
    }
}

#[test]
fn install_status_uninstall_under_a_root() {
    let root = temp_dir("root");
    let r = root.to_str().unwrap();
    let status = memmesh(&["service", "status", "--os", "linux", "--root", r]);
    assert_eq!(status.status.code(), Some(1), "not installed yet");
    let dry = ok(&[
        "service",
        "install",
        "--os",
        "linux",
        "--root",
        r,
        "--dry-run",
    ]);
    assert!(dry.starts_with("would write"), "{dry}");
    let unit = root.join("etc/systemd/system/memmesh@.service");
    assert!(!unit.exists(), "a dry run writes nothing");
    ok(&["service", "install", "--os", "linux", "--root", r]);
    assert!(std::fs::read_to_string(&unit)
        .unwrap()
        .contains("Type=notify"));
    assert!(ok(&["service", "status", "--os", "linux", "--root", r]).contains("installed"));
    ok(&["service", "uninstall", "--os", "linux", "--root", r]);
    assert!(!unit.exists());
    let plist = root.join("Library/LaunchDaemons/org.memmesh.node.lab.plist");
    ok(&[
        "service",
        "install",
        "--os",
        "macos",
        "--instance",
        "lab",
        "--root",
        r,
    ]);
    assert!(plist.exists());
    ok(&[
        "service",
        "uninstall",
        "--os",
        "macos",
        "--instance",
        "lab",
        "--root",
        r,
    ]);
    assert!(!plist.exists());
    let bad = memmesh(&["service", "install", "--instance", "../etc", "--root", r]);
    assert_eq!(bad.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(&root);
}
