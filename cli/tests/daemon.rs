//! The CLI against real daemons: `memmesh node` processes with data dirs on 127.0.0.1
//! (mDNS off), driven by real `memmesh` commands that find the daemon by its
//! daemon.json. Each verb group end to end; the configuration tiers with a real file, a
//! variable and a flag; SIGTERM leaves the cluster at once.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use memmesh::{Event, Node, NodeId};

const SECRET: &str = "cli-tests-secret-0123456789abcdef0123456789abcdef";

fn memmesh() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_memmesh"));
    c.env("MEMMESH_SECRET", SECRET)
        .env_remove("MEMMESH_CONFIG")
        .env("XDG_CONFIG_HOME", "/nonexistent-memmesh-test")
        .env_remove("MEMMESH_ADMIN_TOKEN");
    c
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("memmesh-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A running daemon; killed (SIGKILL) if still running when dropped.
struct Daemon {
    child: Child,
    addr: String,
    id: NodeId,
    dir: PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn daemon(name: &str, dir: &Path, bootstrap: Option<&str>) -> Daemon {
    let mut cmd = memmesh();
    cmd.args([
        "node",
        "--name",
        name,
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
    ])
    .arg(dir)
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    if let Some(b) = bootstrap {
        cmd.args(["--bootstrap", b]);
    }
    let mut child = cmd.spawn().expect("start memmesh node");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    // "node <name> (<id>) listening on <addr>"
    let id: NodeId = line
        .split(['(', ')'])
        .nth(1)
        .expect("banner")
        .parse()
        .unwrap();
    let addr = line.rsplit(' ').next().unwrap().trim().to_string();
    // The daemon file is written right after the banner.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !dir.join("daemon.json").exists() {
        assert!(
            Instant::now() < deadline,
            "no daemon.json in {}",
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Daemon {
        child,
        addr,
        id,
        dir: dir.to_path_buf(),
    }
}

/// Runs `memmesh ARGS --data-dir DIR` against a daemon.
fn on(d: &Daemon, args: &[&str]) -> Output {
    memmesh()
        .args(args)
        .arg("--data-dir")
        .arg(&d.dir)
        .output()
        .unwrap()
}

fn ok(d: &Daemon, args: &[&str]) -> String {
    let out = on(d, args);
    assert!(
        out.status.success(),
        "memmesh {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn json(d: &Daemon, args: &[&str]) -> serde_json::Value {
    let mut a = args.to_vec();
    a.push("--json");
    serde_json::from_str(&ok(d, &a)).unwrap()
}

/// Waits until `d` lists `n` peers alive.
fn wait_members(d: &Daemon, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v = json(d, &["peers"]);
        let alive = v["peers"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["state"] == "alive")
            .count();
        if alive >= n {
            return;
        }
        assert!(Instant::now() < deadline, "only {alive} peers alive: {v}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn every_verb_group_against_running_daemons() {
    let root = temp_dir("verbs");
    let a = daemon("alice", &root.join("a"), None);
    let b = daemon("bob", &root.join("b"), Some(&a.addr));
    wait_members(&a, 1);
    wait_members(&b, 1);

    // The daemon file: private to its owner, naming the daemon.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(a.dir.join("daemon.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // Cluster: peers (the asking CLI node is not listed), leader.
    let peers = json(&a, &["peers"]);
    let names: Vec<&str> = peers["peers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["bob"], "{peers}");
    // The asking CLI node is a client (ADR 0024): it is never the leader.
    let leader = json(&a, &["leader"]);
    assert!(
        leader["id"].as_str().unwrap().parse::<NodeId>().is_ok(),
        "{leader}"
    );
    assert!(
        ["alice", "bob"].contains(&leader["name"].as_str().unwrap()),
        "{leader}"
    );

    // Blocks: stored in a peer's RAM through alice, loaded through bob, freed.
    let block = root.join("block.txt");
    std::fs::write(&block, b"a block of RAM").unwrap();
    let id = ok(&a, &["store", block.to_str().unwrap()]);
    assert!(id.starts_with("blake3:"), "{id}");
    assert_eq!(ok(&b, &["load", &id]), "a block of RAM");
    ok(&a, &["free", &id]);
    assert_eq!(on(&b, &["load", &id]).status.code(), Some(1));

    // Cache.
    ok(&a, &["cache", "set", "greeting", "hello", "--ttl", "1h"]);
    assert_eq!(ok(&b, &["cache", "get", "greeting"]), "hello");
    let ttl = json(&b, &["cache", "ttl", "greeting"]);
    assert!(ttl["ttl_ms"].as_u64().unwrap() > 3_000_000, "{ttl}");
    assert_eq!(ok(&a, &["cache", "incr", "hits", "--by", "5"]), "5");
    assert_eq!(ok(&b, &["cache", "incr", "hits"]), "6");
    assert_eq!(ok(&b, &["cache", "del", "greeting"]), "deleted");
    let missing = on(&a, &["cache", "get", "greeting"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("not found"));
    let other = on(&a, &["cache", "--bucket", "sessions", "get", "hits"]);
    assert_eq!(other.status.code(), Some(1), "buckets are separate");

    // Files: 3 MiB put with two replicas on alice, fetched through bob.
    let data: Vec<u8> = (0..3 * 1024 * 1024u32)
        .map(|i| (i * 7 % 251) as u8)
        .collect();
    let src = root.join("big.bin");
    std::fs::write(&src, &data).unwrap();
    let put = json(
        &a,
        &["files", "put", src.to_str().unwrap(), "--replicas", "2"],
    );
    let fid = put["id"].as_str().unwrap().to_string();
    let stat = json(&b, &["files", "stat", &fid]);
    assert_eq!(stat["size"], data.len() as u64);
    assert_eq!(stat["holders"].as_array().unwrap().len(), 2, "{stat}");
    let dst = root.join("copy.bin");
    ok(&b, &["files", "get", &fid, "-o", dst.to_str().unwrap()]);
    assert_eq!(std::fs::read(&dst).unwrap(), data);
    let again = on(&b, &["files", "get", &fid, "-o", dst.to_str().unwrap()]);
    assert_eq!(
        again.status.code(),
        Some(1),
        "an existing file is never replaced"
    );
    let ls = json(&a, &["files", "ls"]);
    assert_eq!(ls["files"].as_array().unwrap().len(), 1);
    ok(&a, &["files", "rm", &fid]);
    assert_eq!(on(&a, &["files", "stat", &fid]).status.code(), Some(1));

    // Documents: created on alice, edited on both, converging; export and import.
    let doc = ok(&a, &["docs", "create"]);
    ok(&a, &["docs", "put", &doc, "/title", "\"shopping\""]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while on(&b, &["docs", "get", &doc, "/title"]).stdout != b"\"shopping\"\n" {
        assert!(Instant::now() < deadline, "bob never saw alice's edit");
        std::thread::sleep(Duration::from_millis(100));
    }
    ok(&b, &["docs", "put", &doc, "/count", "3"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let v = json(&a, &["docs", "get", &doc]);
        if v["value"] == serde_json::json!({"title": "shopping", "count": 3}) {
            break;
        }
        assert!(Instant::now() < deadline, "no convergence: {v}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let saved = root.join("doc.automerge");
    ok(&a, &["docs", "export", &doc, "-o", saved.to_str().unwrap()]);
    let imported = ok(&b, &["docs", "import", saved.to_str().unwrap()]);
    let v = json(&b, &["docs", "get", &imported]);
    assert_eq!(v["value"]["title"], "shopping");
    let bad = on(&a, &["docs", "put", &doc, "/x", "not json"]);
    assert_eq!(
        bad.status.code(),
        Some(2),
        "a bad argument is a usage error"
    );

    // Channels: request and send through the daemon file.
    assert_eq!(ok(&a, &["request", "ping"]), "ping");
    assert!(ok(&b, &["send", "hello"]).starts_with("sent to"));

    // Without the daemon's token, the admin channel refuses.
    let refused = memmesh()
        .args(["peers", "--to", &a.addr, "--token", "0000"])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("wrong admin token"));

    // No daemon there: a clear error.
    let none = memmesh()
        .args(["peers", "--data-dir"])
        .arg(root.join("nowhere"))
        .output()
        .unwrap();
    assert_eq!(none.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&none.stderr).contains("no daemon found"));
    // A killed daemon leaves its file behind: the CLI says so.
    let a_dir = a.dir.clone();
    drop(a); // SIGKILL
    let stale = memmesh()
        .args(["peers", "--data-dir"])
        .arg(&a_dir)
        .output()
        .unwrap();
    assert_eq!(stale.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&stale.stderr).contains("stale"),
        "{stale:?}"
    );
    drop(b);
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn flags_beat_the_environment_which_beats_the_file() {
    let root = temp_dir("tiers");
    let file = root.join("node.toml");
    std::fs::write(
        &file,
        "name = \"from-file\"\nthreads = 3\nrequest_timeout = \"20s\"\n\n[membership]\nprobe_period = 700\n",
    )
    .unwrap();
    let out = memmesh()
        .args(["config", "show", "--json", "--config"])
        .arg(&file)
        .args(["--set", "threads=5", "--name", "from-flag"])
        .env("MEMMESH_THREADS", "4")
        .env("MEMMESH_REQUEST_TIMEOUT", "15s")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let s = &v["settings"];
    let file_src = format!("file:{}", file.display());
    assert_eq!(s["name"]["value"], "from-flag");
    assert_eq!(s["name"]["source"], "flag");
    assert_eq!(s["threads"]["value"], 5);
    assert_eq!(s["request_timeout"]["value"], "15s");
    assert_eq!(
        s["request_timeout"]["source"],
        "env:MEMMESH_REQUEST_TIMEOUT"
    );
    assert_eq!(s["membership.probe_period"]["value"], "700ms");
    assert_eq!(
        s["membership.probe_period"]["source"],
        format!("{file_src}:6")
    );
    assert_eq!(s["cluster_secret"]["value"], "<redacted>");
    assert_eq!(s["send_timeout"]["source"], "default");

    // The daemon runs with it: its name comes from the flag.
    let mut child = memmesh()
        .args([
            "node",
            "--listen",
            "127.0.0.1:0",
            "--name",
            "from-flag",
            "--config",
        ])
        .arg(&file)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("node from-flag "), "{line}");
    child.kill().unwrap();
    child.wait().unwrap();

    // A bad file: exit code 2, the file, the line and the key named.
    std::fs::write(&file, "name = \"x\"\n[tuning]\nkeep_alive = \"often\"\n").unwrap();
    let out = memmesh()
        .args(["node", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{}:3: key tuning.keep_alive", file.display())),
        "{err}"
    );
    std::fs::write(&file, "nmae = \"typo\"\n").unwrap();
    let out = memmesh()
        .args(["config", "show", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains(":1: key nmae: unknown key"));
    let _ = std::fs::remove_dir_all(&root);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_leaves_the_cluster_at_once_and_removes_the_daemon_file() {
    let root = temp_dir("sigterm");
    // Failure detection so slow that only a goodbye can make the daemon down within
    // the test: seeing it down proves it left.
    let slow = memmesh::membership::MembershipConfig {
        suspect_timeout: Duration::from_secs(3600),
        down_grace: Duration::from_secs(3600),
        ..Default::default()
    };
    let watcher = Node::builder()
        .membership(slow)
        .name("watcher")
        .listen("127.0.0.1:0")
        .mdns(false)
        .cluster_secret(SECRET)
        .threads(1)
        .start()
        .await
        .unwrap();
    let mut d = daemon("leaver", &root.join("d"), Some(&watcher.addr().to_string()));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !watcher
        .peers()
        .iter()
        .any(|p| p.id == d.id && p.state == memmesh::PeerState::Alive)
    {
        assert!(Instant::now() < deadline, "the daemon never joined");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut events = watcher.events().unwrap();
    // SIGTERM: the daemon says goodbye.
    let pid = d.child.id() as i32;
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let left = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if let Event::PeerDown { id } = events.next().await.unwrap() {
                if id == d.id {
                    return;
                }
            }
        }
    })
    .await;
    assert!(left.is_ok(), "the leave was not seen");
    let status = d.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(
        !d.dir.join("daemon.json").exists(),
        "the daemon file was left"
    );
    watcher.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn the_daemon_tells_systemd_it_is_ready() {
    use std::os::unix::net::UnixDatagram;
    let root = temp_dir("notify");
    let sock_path = root.join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut child = memmesh()
        .args(["node", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(root.join("d"))
        .env("NOTIFY_SOCKET", &sock_path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut buf = [0u8; 256];
    let n = sock.recv(&mut buf).expect("no sd_notify datagram");
    let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(msg.lines().any(|l| l == "READY=1"), "{msg:?}");
    assert!(msg.contains(&format!("MAINPID={}", child.id())), "{msg:?}");
    // Ready means the daemon file is there.
    assert!(root.join("d").join("daemon.json").exists());
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert!(child.wait().unwrap().success());
    let _ = std::fs::remove_dir_all(&root);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_a_block_and_listen_on_a_channel() {
    let root = temp_dir("fetch");
    let d = daemon("holder", &root.join("d"), None);
    // A block in the daemon's own RAM, fetched from it as a verified transfer.
    let src = root.join("block.bin");
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
    std::fs::write(&src, &data).unwrap();
    let id = ok(
        &d,
        &["store", "--placement", "local", src.to_str().unwrap()],
    );
    let dst = root.join("fetched.bin");
    let out = memmesh()
        .args([
            "fetch",
            "--to",
            &d.addr,
            &id,
            "-o",
            dst.to_str().unwrap(),
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read(&dst).unwrap(), data);

    // `listen` joins a node and prints what arrives on the channel.
    let node = Node::builder()
        .name("speaker")
        .listen("127.0.0.1:0")
        .mdns(false)
        .cluster_secret(SECRET)
        .threads(1)
        .start()
        .await
        .unwrap();
    let mut listener = memmesh()
        .args([
            "listen",
            "--to",
            &node.addr().to_string(),
            "--channel",
            "news",
            "--json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let cli = loop {
        if let Some(p) = node
            .peers()
            .into_iter()
            .find(|p| p.name == "memmesh-cli" && p.connected)
        {
            break p.id;
        }
        assert!(Instant::now() < deadline, "the listener never connected");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let stdout = listener.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        line
    });
    // The handler is set right after connecting: retry until it took the message.
    let channel = node.channel("news").unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !reader.is_finished() {
        let _ = channel.send("extra extra", cli).await;
        assert!(Instant::now() < deadline, "the listener printed nothing");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let line = reader.join().unwrap();
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["data"], "extra extra");
    assert_eq!(v["from"], node.id().to_string());
    unsafe { libc::kill(listener.id() as i32, libc::SIGTERM) };
    assert!(listener.wait().unwrap().success());
    node.shutdown().await.unwrap();
    drop(d);
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn drain_hands_the_daemons_files_off_then_it_may_be_killed() {
    let root = temp_dir("drain");
    let a = daemon("alice", &root.join("a"), None);
    let b = daemon("bob", &root.join("b"), Some(&a.addr));
    wait_members(&a, 1);
    wait_members(&b, 1);
    // A file with one copy, on bob only.
    let data: Vec<u8> = (0..200_000u32).map(|i| (i * 13 % 251) as u8).collect();
    let src = root.join("one.bin");
    std::fs::write(&src, &data).unwrap();
    let put = json(
        &b,
        &["files", "put", src.to_str().unwrap(), "--replicas", "1"],
    );
    let fid = put["id"].as_str().unwrap().to_string();
    let before = json(&b, &["drain", "--no-wait"]);
    assert_eq!(before["draining"], true, "{before}");
    // Waits until nothing is left to hand off.
    let done = json(&b, &["drain"]);
    assert_eq!(done["done"], true, "{done}");
    assert_eq!(done["files"], 0, "{done}");
    assert_eq!(done["partitions"], 0, "{done}");
    // Alice sees bob as a client now.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v = json(&a, &["peers"]);
        let bob = v["peers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "bob")
            .cloned();
        if bob.as_ref().is_some_and(|p| p["role"] == "client") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "bob is not a client on alice: {v}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(b); // SIGKILL
    let dst = root.join("back.bin");
    ok(&a, &["files", "get", &fid, "-o", dst.to_str().unwrap()]);
    assert_eq!(std::fs::read(&dst).unwrap(), data);
    drop(a);
    let _ = std::fs::remove_dir_all(&root);
}
