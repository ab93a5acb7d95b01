#!/usr/bin/env python3
"""Time to discover: two fresh memmesh nodes in network namespaces find each other by mDNS.

Driven by mdns-discovery.sh (which builds the CLI). Needs root. Creates two namespaces
joined by a veth pair (10.77.0.1/24 <-> 10.77.0.2/24 on `mm0`), and for each run:

  1. starts node `a` in the first namespace (`memmesh node --mdns --mdns-interface mm0`),
     waits until it prints its address, then lets it run for SETTLE seconds;
  2. starts node `b` in the second namespace: t0 is just before the process is spawned;
  3. discovery time = when the later of the two "peer connected" log events (a about b,
     b about a) is read, minus t0. A node logs that event right after putting the peer in
     its pool, i.e. the moment `peers` lists it as connected. Both nodes run with
     MEMMESH_LOG=memmesh=info and their stderr is read as it comes;
  4. confirms through the `peers` channel (`memmesh request --channel peers`, from inside
     each namespace) that each node lists the other, alive;
  5. stops both nodes (fresh identities every run).

Two scenarios by default (--settle 0 4):
  * settle 0 ("cold start"): b starts right after a, both fresh. Each node's mDNS daemon
    first probes its names for 750 ms (RFC 6762 section 8.1, done by mdns-sd) and cannot
    answer or announce before that, so this measures probing + announcement + QUIC.
  * settle 4 ("join"): b joins a node that has finished probing and announcing; b's
    first query is answered at once (unless it falls inside the 1 s window after one of
    a's own multicasts, RFC 6762 section 6, which is why settle 4 and not 1 or 2).

Prints one line per run and min / median / max per scenario, beside the DESIGN target
(<= 500 ms). Every mDNS packet stays on the veth between the two namespaces.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

PREFIX = "mmb"
VETH = "mm0"
IPS = ("10.77.0.1", "10.77.0.2")
TARGET_MS = 500.0
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, stdin=subprocess.DEVNULL)


def reap_stale() -> None:
    """Deletes namespaces of this benchmark whose process is gone (a killed run)."""
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        name = line.split()[0] if line.split() else ""
        parts = name.split("-")
        if len(parts) >= 2 and parts[0] == PREFIX and parts[1].isdigit():
            pid = int(parts[1])
            if pid != os.getpid() and not Path(f"/proc/{pid}").exists():
                subprocess.run(["ip", "netns", "del", name], check=False)


class Link:
    """Two namespaces joined by a veth pair; deleted by close()."""

    def __init__(self) -> None:
        base = f"{PREFIX}-{os.getpid()}"
        self.ns = (f"{base}-a", f"{base}-b")
        self.created: list[str] = []
        for ns in self.ns:
            ip("netns", "add", ns)
            self.created.append(ns)
            ip("-n", ns, "link", "set", "lo", "up")
        # Both ends are created inside the namespaces: nothing appears in the host's.
        ip("-n", self.ns[0], "link", "add", VETH, "type", "veth",
           "peer", "name", VETH, "netns", self.ns[1])
        for ns, addr in zip(self.ns, IPS):
            ip("-n", ns, "addr", "add", f"{addr}/24", "dev", VETH)
            ip("-n", ns, "link", "set", VETH, "multicast", "on")
            ip("-n", ns, "link", "set", VETH, "up")
            ip("-n", ns, "route", "add", "224.0.0.0/4", "dev", VETH)

    def close(self) -> None:
        for ns in reversed(self.created):
            subprocess.run(["ip", "netns", "del", ns], check=False)
        self.created.clear()


class NodeProc:
    """A `memmesh node` running in a namespace, with its output lines timestamped."""

    def __init__(self, binary: str, ns: str, name: str, listen: str, secret: str,
                 log_filter: str) -> None:
        env = dict(os.environ, MEMMESH_LOG=log_filter, NO_COLOR="1")
        self.name = name
        self.ns = ns
        self.lines: list[tuple[float, str, str]] = []  # (monotonic time, stream, line)
        self.cond = threading.Condition()
        self.spawned = time.monotonic()
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, binary, "node", "--name", name, "--listen", listen,
             "--mdns", "--mdns-interface", VETH, "--secret", secret],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=env, text=True, bufsize=1,
        )
        for stream, pipe in (("out", self.proc.stdout), ("err", self.proc.stderr)):
            threading.Thread(target=self._read, args=(stream, pipe), daemon=True).start()

    def _read(self, stream: str, pipe) -> None:
        for line in pipe:
            now = time.monotonic()
            with self.cond:
                self.lines.append((now, stream, ANSI.sub("", line.rstrip("\n"))))
                self.cond.notify_all()

    def wait_for(self, pattern: re.Pattern, deadline: float, stream: str | None = None):
        """(time, match) of the first line matching `pattern`, or None at the deadline."""
        with self.cond:
            while True:
                for t, s, line in self.lines:
                    if stream is None or s == stream:
                        m = pattern.search(line)
                        if m:
                            return t, m
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    return None
                self.cond.wait(min(left, 0.05))

    def output(self) -> str:
        with self.cond:
            return "\n".join(f"[{self.name} {s}] {line}" for _, s, line in self.lines)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


LISTENING = re.compile(r"^node (\S+) \((\S+)\) listening on (\S+)$")


def peer_connected(name: str) -> re.Pattern:
    return re.compile(r"peer connected.*\bname=" + re.escape(name) + r"(\s|$)")


def lists_alive(peers: str, name: str, node_id: str) -> bool:
    """Whether a `peers` reply (`name shortid state [addrs]` per line) lists the node."""
    for line in peers.splitlines():
        f = line.split()
        if len(f) >= 3 and f[0] == name and node_id.startswith(f[1]) and f[2] == "alive":
            return True
    return False


def peers_of(binary: str, ns: str, addr: str, secret: str) -> str:
    out = subprocess.run(
        ["ip", "netns", "exec", ns, binary, "request", "--to", addr, "--channel", "peers",
         "--secret", secret, "--timeout", "10", ""],
        capture_output=True, text=True, timeout=30,
    )
    if out.returncode != 0:
        raise RuntimeError(f"peers request to {addr} failed: {out.stderr.strip()}")
    return out.stdout


def one_run(binary: str, link: Link, run: int, settle: float,
            args: argparse.Namespace) -> dict:
    deadline_s = args.deadline
    # memmesh=info is needed for the "peer connected" events; --log-filter adds to it.
    log_filter = "memmesh=info" + (f",{args.log_filter}" if args.log_filter else "")
    secret = f"bench-{os.getpid()}-{run}"
    a = NodeProc(binary, link.ns[0], "a", f"{IPS[0]}:0", secret, log_filter)
    b = None
    try:
        up = a.wait_for(LISTENING, time.monotonic() + 30, "out")
        if up is None:
            raise RuntimeError(f"node a did not start:\n{a.output()}")
        a_id, a_addr = up[1].group(2), up[1].group(3)
        time.sleep(settle)

        b = NodeProc(binary, link.ns[1], "b", f"{IPS[1]}:0", secret, log_filter)
        t0 = b.spawned
        deadline = t0 + deadline_s
        up_b = b.wait_for(LISTENING, deadline, "out")
        if up_b is None:
            raise RuntimeError(f"node b did not start:\n{b.output()}")
        b_id, b_addr = up_b[1].group(2), up_b[1].group(3)
        a_sees_b = a.wait_for(peer_connected("b"), deadline, "err")
        b_sees_a = b.wait_for(peer_connected("a"), deadline, "err")
        if a_sees_b is None or b_sees_a is None:
            raise RuntimeError(
                f"no discovery within {deadline_s} s:\n{a.output()}\n{b.output()}")
        found = max(a_sees_b[0], b_sees_a[0])

        # Confirm with the peers channel, as a user would see it.
        listed_a = peers_of(binary, link.ns[0], a_addr, secret)
        listed_b = peers_of(binary, link.ns[1], b_addr, secret)
        for who, text, other, other_id in (("a", listed_a, "b", b_id), ("b", listed_b, "a", a_id)):
            if not lists_alive(text, other, other_id):
                raise RuntimeError(f"{who} does not list {other} as alive:\n{text}")
        return {
            "discover_ms": (found - t0) * 1000,
            "b_up_ms": (up_b[0] - t0) * 1000,
            "a_sees_b_ms": (a_sees_b[0] - t0) * 1000,
            "b_sees_a_ms": (b_sees_a[0] - t0) * 1000,
        }
    finally:
        if b is not None:
            b.stop()
        a.stop()
        if args.logs:
            os.makedirs(args.logs, exist_ok=True)
            for node in (a, b):
                if node is not None:
                    Path(args.logs, f"run-{run}-{node.name}.log").write_text(node.output() + "\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", required=True, help="the memmesh CLI binary")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--settle", type=float, nargs="+", default=[0.0, 4.0],
                    help="seconds node a runs before node b starts (one scenario each)")
    ap.add_argument("--deadline", type=float, default=30.0,
                    help="seconds a run may take before it counts as a failure")
    ap.add_argument("--logs", help="directory to write each run's node output to")
    ap.add_argument("--log-filter", default="",
                    help="extra MEMMESH_LOG directives for the nodes, e.g. mdns_sd=debug")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("mdns-discovery: needs root to create network namespaces", file=sys.stderr)
        return 2

    # Delete the namespaces on SIGTERM / SIGINT too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    reap_stale()
    link = Link()
    summaries = []
    run = 0
    try:
        print("mDNS time to discover: two fresh memmesh nodes on a veth between namespaces, "
              "from spawning node b until both list each other")
        for settle in args.settle:
            print(f"node a runs {settle:g} s before node b starts ({args.runs} runs):")
            results = []
            for i in range(1, args.runs + 1):
                run += 1
                r = one_run(args.bin, link, run, settle, args)
                results.append(r)
                print(f"  run {i}: both list each other after {r['discover_ms']:7.1f} ms "
                      f"(b process up {r['b_up_ms']:.1f} ms, a sees b "
                      f"{r['a_sees_b_ms']:.1f} ms, b sees a {r['b_sees_a_ms']:.1f} ms)",
                      flush=True)
                time.sleep(0.5)
            times = sorted(r["discover_ms"] for r in results)
            summaries.append((settle, times))
    finally:
        link.close()
    print("summary:")
    for settle, times in summaries:
        median = statistics.median(times)
        print(f"  a up {settle:g} s first: time to discover min {times[0]:.1f} ms, "
              f"median {median:.1f} ms, max {times[-1]:.1f} ms  (target <= {TARGET_MS:.0f} ms: "
              f"{'met' if median <= TARGET_MS else 'NOT met'} by the median)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
