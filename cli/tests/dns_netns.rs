//! Bootstrap by real DNS (ADR 0027), in a network namespace: Debian's dnsmasq serves A
//! and SRV records for `mesh.test` on 127.0.0.53 inside it, and `memmesh node` daemons
//! started with `ip netns exec` (which bind-mounts /etc/netns/NS/resolv.conf, pointing at
//! that dnsmasq) find each other only by those names (mDNS is off):
//! - n1 bootstraps by `srv:_memmesh._udp.mesh.test`, whose SRV records name n1 and n3 (n3
//!   has no A record yet, and n1 is itself);
//! - n2 bootstraps by `seed.mesh.test:7400`, published only after n2 has started (a name
//!   that does not resolve yet is retried, not an error) and pointing at n1;
//! - n3 has no bootstrap at all; publishing its A record makes n1's re-resolution of the
//!   SRV name find it, and the three form one cluster.
//!
//! Every packet stays on the namespace's loopback. Needs root, iproute2 and dnsmasq (ci/
//! test-netns installs them); MEMMESH_SKIP_NETNS=1 turns it into a loud SKIPPED line.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const SECRET: &str = "dns-netns-tests-secret-0123456789abcdef0123456789abcdef";
const SRV: &str = "_memmesh._udp.mesh.test";

fn say(line: impl AsRef<str>) {
    let _ = writeln!(std::io::stderr(), "{}", line.as_ref());
}

/// Why the test cannot run here, if it cannot.
fn missing() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root".into());
    }
    for tool in ["ip", "dnsmasq"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if !found {
            return Some(format!("`{tool}` is not installed"));
        }
    }
    None
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("run a command");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A namespace with its loopback up and a resolv.conf naming 127.0.0.53; removed on drop
/// with everything started in it.
struct Lab {
    ns: String,
    dir: PathBuf,
    children: Vec<Child>,
}

impl Lab {
    fn new() -> Lab {
        let ns = format!("mmd-{}", std::process::id());
        let dir = std::env::temp_dir().join(format!("memmesh-{ns}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("hosts.d")).unwrap();
        let _ = Command::new("ip").args(["netns", "del", &ns]).output();
        run(Command::new("ip").args(["netns", "add", &ns]));
        let lab = Lab {
            ns,
            dir,
            children: Vec::new(),
        };
        run(Command::new("ip").args(["-n", &lab.ns, "link", "set", "lo", "up"]));
        let etc = lab.etc();
        std::fs::create_dir_all(&etc).unwrap();
        std::fs::write(etc.join("resolv.conf"), "nameserver 127.0.0.53\n").unwrap();
        lab
    }

    fn etc(&self) -> PathBuf {
        Path::new("/etc/netns").join(&self.ns)
    }

    fn exec(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns, program]);
        c
    }

    /// Publishes `ip name` (dnsmasq reads new files in its hosts dir by itself).
    fn publish(&self, file: &str, ip: &str, name: &str) {
        let tmp = self.dir.join(format!("{file}.tmp"));
        std::fs::write(&tmp, format!("{ip} {name}\n")).unwrap();
        std::fs::rename(&tmp, self.dir.join("hosts.d").join(file)).unwrap();
    }

    fn dnsmasq(&mut self) {
        let mut c = self.exec("dnsmasq");
        c.args([
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--listen-address=127.0.0.53",
            "--bind-interfaces",
            "--no-resolv",
            "--no-hosts",
            "--local=/mesh.test/",
            "--local-ttl=0",
            "--user=root",
            "--log-queries",
        ])
        .arg(format!("--hostsdir={}", self.dir.join("hosts.d").display()))
        .arg(format!(
            "--pid-file={}",
            self.dir.join("dnsmasq.pid").display()
        ))
        .arg(format!(
            "--log-facility={}",
            self.dir.join("dnsmasq.log").display()
        ))
        .arg(format!("--srv-host={SRV},n1.mesh.test,7400,0,10"))
        .arg(format!("--srv-host={SRV},n3.mesh.test,7400,0,10"))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        self.children.push(c.spawn().expect("start dnsmasq"));
    }

    /// Starts `memmesh node` named `name` on `ip:7400`, bootstrapped by `bootstrap`.
    fn node(&mut self, name: &str, ip: &str, bootstrap: Option<&str>) -> PathBuf {
        let data = self.dir.join(name);
        std::fs::create_dir_all(&data).unwrap();
        let mut c = self.exec(env!("CARGO_BIN_EXE_memmesh"));
        c.args(["node", "--name", name, "--listen", &format!("{ip}:7400")])
            .arg("--data-dir")
            .arg(&data)
            .env("MEMMESH_SECRET", SECRET)
            .env("MEMMESH_LOG", "memmesh=info")
            .env_remove("MEMMESH_CONFIG")
            .env("XDG_CONFIG_HOME", "/nonexistent-memmesh-test")
            .env_remove("MEMMESH_ADMIN_TOKEN")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(self.dir.join(format!("{name}.log"))).unwrap());
        if let Some(b) = bootstrap {
            c.args(["--bootstrap", b]);
        }
        let mut child = c.spawn().expect("start memmesh node");
        let mut banner = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut banner)
            .unwrap();
        self.children.push(child);
        assert!(banner.contains("listening"), "{name}: {banner:?}");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !data.join("daemon.json").exists() {
            assert!(Instant::now() < deadline, "{name}: no daemon.json");
            std::thread::sleep(Duration::from_millis(20));
        }
        data
    }

    /// The names of the peers `data`'s daemon holds alive.
    fn alive(&self, data: &Path) -> Vec<String> {
        let out = self
            .exec(env!("CARGO_BIN_EXE_memmesh"))
            .args(["peers", "--json", "--data-dir"])
            .arg(data)
            .env("MEMMESH_SECRET", SECRET)
            .env_remove("MEMMESH_CONFIG")
            .env("XDG_CONFIG_HOME", "/nonexistent-memmesh-test")
            .output()
            .unwrap();
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&out.stdout) else {
            return Vec::new();
        };
        let mut names: Vec<String> = v["peers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["state"] == "alive")
            .filter_map(|p| p["name"].as_str().map(str::to_string))
            .collect();
        names.sort();
        names
    }

    /// Waits until `data`'s daemon holds exactly `want` alive; panics with the logs if not.
    fn wait_alive(&self, data: &Path, want: &[&str], within: Duration) -> Duration {
        let start = Instant::now();
        loop {
            let got = self.alive(data);
            if got == want {
                return start.elapsed();
            }
            if start.elapsed() > within {
                self.dump();
                panic!("{}: alive {got:?}, want {want:?}", data.display());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn dump(&self) {
        for log in ["dnsmasq.log", "n1.log", "n2.log", "n3.log"] {
            let text = std::fs::read_to_string(self.dir.join(log)).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(40).collect();
            say(format!("--- {log} (last lines, newest first)"));
            for l in tail {
                say(l);
            }
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in self.children.iter_mut().rev() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).output();
        let _ = std::fs::remove_dir_all(self.etc());
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn nodes_find_each_other_by_dns_names_and_by_re_resolution() {
    let test = "nodes_find_each_other_by_dns_names_and_by_re_resolution";
    if std::env::var("MEMMESH_SKIP_NETNS").as_deref() == Ok("1") {
        say(format!(
            "SKIPPED: {test}: MEMMESH_SKIP_NETNS=1 is set (ci/test-netns runs it as root)"
        ));
        return;
    }
    if let Some(why) = missing() {
        panic!(
            "{test}: needs root, iproute2 and dnsmasq ({why}); ci/test-netns installs them. \
             Set MEMMESH_SKIP_NETNS=1 to skip it explicitly."
        );
    }
    let mut lab = Lab::new();
    lab.publish("n1", "127.0.0.2", "n1.mesh.test");
    lab.dnsmasq();

    // n1: by SRV; its records name itself and n3 (no address yet): alone.
    let n1 = lab.node("n1", "127.0.0.2", Some(&format!("srv:{SRV}")));
    // n2: by a name not published yet: it starts, and retries.
    let n2 = lab.node("n2", "127.0.0.3", Some("seed.mesh.test:7400"));
    std::thread::sleep(Duration::from_secs(2));
    assert!(lab.alive(&n2).is_empty(), "n2 has no way in yet");
    lab.publish("seed", "127.0.0.2", "seed.mesh.test");
    let t = lab.wait_alive(&n2, &["n1"], Duration::from_secs(60));
    say(format!("n2 joined by a late name in {t:?}"));
    lab.wait_alive(&n1, &["n2"], Duration::from_secs(30));

    // n3: no bootstrap; only n1's re-resolution of the SRV name can find it.
    let n3 = lab.node("n3", "127.0.0.4", None);
    std::thread::sleep(Duration::from_secs(2));
    assert!(lab.alive(&n3).is_empty(), "n3 is alone until DNS names it");
    lab.publish("n3", "127.0.0.4", "n3.mesh.test");
    let t = lab.wait_alive(&n3, &["n1", "n2"], Duration::from_secs(90));
    say(format!("n3 found by re-resolution in {t:?}"));
    lab.wait_alive(&n1, &["n2", "n3"], Duration::from_secs(30));
    lab.wait_alive(&n2, &["n1", "n3"], Duration::from_secs(30));
}
