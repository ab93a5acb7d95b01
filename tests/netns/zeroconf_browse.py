#!/usr/bin/env python3
"""Resolve a memmesh node's mDNS advertisement with python-zeroconf.

python-zeroconf is an mDNS/DNS-SD stack independent of memmesh's (mdns-sd), so what it
reads is what any Bonjour/Avahi-style browser on the LAN would read. Run it inside a
network namespace (`ip netns exec NS python zeroconf_browse.py --interface IP ...`): it
only uses the interface that has address IP, over IPv4.

On success (exit 0) it prints the resolved service as `key=value` lines:

    name=<instance>._memmesh._udp.local.
    server=<host>.local.
    port=<SRV port>
    address=<IPv4>          (one line per address)
    txt.<key>=<value>       (one line per TXT property: v, id, cluster, port)

With --id it waits for the node with that id; without, it takes the first memmesh
service it resolves. Exit 1 (with what it saw on stderr) if nothing matched in time.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time

from zeroconf import IPVersion, ServiceBrowser, ServiceListener, Zeroconf

SERVICE_TYPE = "_memmesh._udp.local."


class Names(ServiceListener):
    """Collects the instance names the browser announces (resolved later, off its thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: list[str] = []
        self.changed = threading.Event()

    def _push(self, name: str) -> None:
        with self._lock:
            if name not in self._pending:
                self._pending.append(name)
        self.changed.set()

    def take(self) -> list[str]:
        with self._lock:
            names, self._pending = self._pending, []
        self.changed.clear()
        return names

    def add_service(self, zc: Zeroconf, type_: str, name: str) -> None:
        self._push(name)

    def update_service(self, zc: Zeroconf, type_: str, name: str) -> None:
        self._push(name)

    def remove_service(self, zc: Zeroconf, type_: str, name: str) -> None:
        pass


def describe(info) -> list[str]:
    lines = [
        f"name={info.name}",
        f"server={info.server}",
        f"port={info.port}",
    ]
    lines += [f"address={a}" for a in info.parsed_addresses(IPVersion.V4Only)]
    for key, value in sorted(info.decoded_properties.items()):
        lines.append(f"txt.{key}={'' if value is None else value}")
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--interface", required=True, help="IPv4 address of the interface to use")
    ap.add_argument("--id", help="the node id to wait for (default: the first node found)")
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds to wait")
    args = ap.parse_args()

    zc = Zeroconf(interfaces=[args.interface], ip_version=IPVersion.V4Only)
    seen: dict[str, list[str]] = {}
    try:
        names = Names()
        browser = ServiceBrowser(zc, SERVICE_TYPE, listener=names)
        deadline = time.monotonic() + args.timeout
        retry: list[str] = []
        while time.monotonic() < deadline:
            for name in retry + names.take():
                info = zc.get_service_info(SERVICE_TYPE, name, timeout=2000)
                if info is None:
                    if name not in retry:
                        retry.append(name)
                    continue
                if name in retry:
                    retry.remove(name)
                lines = describe(info)
                seen[name] = lines
                props = info.decoded_properties
                if args.id is None or props.get("id") == args.id:
                    print("\n".join(lines), flush=True)
                    return 0
            names.changed.wait(0.2)
        browser.cancel()
    finally:
        zc.close()
    print(
        f"no {SERVICE_TYPE} service"
        + (f" with id {args.id}" if args.id else "")
        + f" resolved within {args.timeout} s; resolved: {seen or 'nothing'}",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
