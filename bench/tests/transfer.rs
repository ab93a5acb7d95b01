//! Every path transfer-bench measures, run with small payloads against real nodes over
//! real QUIC: each case must complete and be verified, a wrong source must fail the run,
//! the binary's records must print as tables, and (as root) the netns path must run its
//! two processes in two namespaces.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::process::Command;

use memmesh_bench::transfer::receiver::Receiver;
use memmesh_bench::transfer::report::{Record, Results, MEMMESH_FILE};
use memmesh_bench::transfer::sender::{prepare_source, Plan, Sender};
use memmesh_bench::transfer::{hash_label, netns, pattern, Case, System, MIB};

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const EXE: &str = env!("CARGO_BIN_EXE_transfer-bench");

fn scratch(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("transfer-bench-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn plan(size: u64) -> Plan {
    Plan {
        label: "loopback".into(),
        size,
        repeats: 1,
        warmup: MIB,
    }
}

#[test]
fn every_case_completes_verified_on_loopback() {
    let dir = scratch("loopback");
    let size = 3 * MIB + 12_345;
    let data = pattern(size as usize);
    let source = prepare_source(&dir.join("source"), &data).unwrap();
    let receiver = Receiver::start(LOCALHOST, &dir.join("inbox"), 1).unwrap();
    let sender = Sender::start(LOCALHOST, &receiver.info(), 1, false).unwrap();
    let mut seen = 0;
    let runs = sender
        .run(&plan(size), &data, &source, |_| seen += 1)
        .unwrap();
    assert_eq!(seen, 6);
    let expected = hash_label(&blake3::hash(&data));
    let mut kinds: Vec<(System, Case)> = runs.iter().map(|r| (r.system, r.case)).collect();
    kinds.sort();
    assert_eq!(
        kinds,
        vec![
            (System::Memmesh, Case::Memory),
            (System::Memmesh, Case::File),
            (System::Quinn, Case::Memory),
            (System::QuinnBlake3, Case::Memory),
            (System::QuinnDefault, Case::Memory),
            (System::QuinnKeep, Case::Memory),
        ]
    );
    for r in &runs {
        assert_eq!(r.bytes, size, "{r:?}");
        assert!(r.seconds > 0.0 && r.mb_per_s() > 0.0, "{r:?}");
        assert!(r.receiver_rss.is_none(), "one process: {r:?}");
        assert!(r.sender_rss.before > 0, "{r:?}");
        if r.system == System::Quinn || r.system == System::QuinnDefault {
            assert_eq!(r.hash, "", "plain quinn only counts: {r:?}");
        } else {
            assert_eq!(r.hash, expected, "{r:?}");
        }
        if r.system == System::Memmesh {
            assert_eq!(r.attempts, 1, "{r:?}");
        }
    }
    // Nothing is left in the inbox: the landed file was checked and deleted, and no
    // partial or chunk-list file remains.
    assert_eq!(std::fs::read_dir(dir.join("inbox")).unwrap().count(), 0);
    assert_eq!(sender.receiver_max_rss().unwrap(), None);
    sender.shutdown().unwrap();
    receiver.shutdown().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_source_file_that_is_not_the_payload_fails_the_run() {
    let dir = scratch("wrong");
    let size = MIB;
    let data = pattern(size as usize);
    let mut other = data.to_vec();
    other[size as usize / 2] ^= 1;
    let source = dir.join("source.bin");
    std::fs::write(&source, &other).unwrap();
    let receiver = Receiver::start(LOCALHOST, &dir.join("inbox"), 1).unwrap();
    let sender = Sender::start(LOCALHOST, &receiver.info(), 1, false).unwrap();
    let mut runs = Vec::new();
    let err = sender
        .run(&plan(size), &data, &source, |r| runs.push(r.clone()))
        .unwrap_err();
    assert!(
        format!("{err:#}").contains("the payload is blake3:"),
        "{err:#}"
    );
    // The memory cases before the file case passed.
    assert_eq!(runs.len(), 5, "{runs:?}");
    sender.shutdown().unwrap();
    receiver.shutdown().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_binary_writes_records_that_report_prints() {
    let dir = scratch("binary");
    let out = dir.join(MEMMESH_FILE);
    let run = Command::new(EXE)
        .args([
            "--size",
            "2M",
            "--repeats",
            "2",
            "--warmup",
            "0",
            "--threads",
            "1",
        ])
        .arg("--dir")
        .arg(dir.join("data"))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(stdout.contains("loopback memory"), "{stdout}");
    assert!(stdout.contains("loopback file"), "{stdout}");
    assert!(
        !dir.join("data").join("source").exists(),
        "source left behind"
    );

    std::fs::write(
        dir.join("iperf3-loopback.json"),
        r#"{"end":{"sum_received":{"bytes":2097152,"seconds":0.01,"bits_per_second":1677721600},
            "cpu_utilization_percent":{"host_total":40.0,"remote_total":60.0}}}"#,
    )
    .unwrap();
    let results = Results::load(&dir).unwrap();
    assert_eq!(results.runs.len(), 12);
    assert!(results.max_rss.contains_key("loopback"));
    assert!(results.iperf.contains_key("loopback"));
    let report = Command::new(EXE)
        .arg("report")
        .arg("--dir")
        .arg(&dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&report.stdout);
    assert!(report.status.success(), "{text}");
    let row = text
        .lines()
        .find(|l| l.starts_with("loopback memory"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(row.contains("209.7"), "iperf3 MB/s in the row: {text}");
    assert!(text.contains("mm/q+keep"), "the ceiling table: {text}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_netns_path_runs_two_processes_in_two_namespaces() {
    if std::env::var("MEMMESH_SKIP_NETNS").as_deref() == Ok("1") {
        eprintln!("SKIPPED: netns path: MEMMESH_SKIP_NETNS=1");
        return;
    }
    if let Err(why) = netns::available() {
        eprintln!("SKIPPED: netns path: network namespaces are unavailable ({why})");
        return;
    }
    let dir = scratch("netns");
    let out = dir.join(MEMMESH_FILE);
    let run = Command::new(EXE)
        .args(["--netns", "--no-loopback", "--size", "2M", "--repeats", "1"])
        .args(["--warmup", "1M", "--threads", "1"])
        .arg("--dir")
        .arg(dir.join("data"))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stdout}\n{stderr}");
    assert!(stderr.contains("(MTU 1500)"), "{stderr}");
    let records: Vec<Record> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let results = Results::from_records(records);
    assert_eq!(results.runs.len(), 6, "{stdout}");
    for r in &results.runs {
        assert_eq!(r.path, "netns");
        assert!(r.receiver_rss.is_some(), "two processes: {r:?}");
    }
    assert!(matches!(results.max_rss.get("netns"), Some((_, Some(_)))));
    // The namespaces were deleted.
    let listed = Command::new("ip").args(["netns", "list"]).output().unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout);
    let pid_prefix = format!("mmtb-{}-", run_pid_hint(&stderr));
    assert!(
        !listed.lines().any(|l| l.starts_with(&pid_prefix)),
        "{listed}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The pid part of the namespace names the run printed (`netns: mmtb-<pid>-a and ...`).
fn run_pid_hint(stderr: &str) -> String {
    stderr
        .split_whitespace()
        .find_map(|w| w.strip_prefix("mmtb-"))
        .and_then(|rest| rest.split('-').next())
        .unwrap_or("none")
        .to_string()
}
