#!/usr/bin/env python3
"""Two memmesh nodes in one process exchange a few chat messages and a request.

Run after ``pip install ./python``:  python examples/python/chat.py

Both nodes listen on 127.0.0.1 with mDNS off, so nothing leaves this machine; with a
shared cluster secret, only they can talk to each other.
"""

from __future__ import annotations

import queue
from typing import Any

import memmesh

SECRET = "chat-example-secret"


def main() -> None:
    options: dict[str, Any] = {"listen": "127.0.0.1:0", "mdns": False, "cluster_secret": SECRET}
    with memmesh.Node(name="alice", **options) as alice, memmesh.Node(
        name="bob", **options
    ) as bob:
        print(f"alice {alice.id[:10]} on {alice.addr}, bob {bob.id[:10]} on {bob.addr}")

        # Bob prints every chat message he gets (on a memmesh worker thread) ...
        inbox: "queue.Queue[memmesh.Message]" = queue.Queue()

        @bob.channel("chat").on_message
        def show(msg: memmesh.Message) -> None:
            inbox.put(msg)

        # ... and answers "whois" requests.
        @bob.channel("whois").on_request
        def whois(req: memmesh.Request) -> bytes:
            return f"bob here; you are {req.sender[:10]}, you asked {req.data.decode()!r}".encode()

        bob_id = alice.connect(bob.addr)
        for line in ["hi bob", "how is the mesh?", "bye"]:
            alice.channel("chat").send(line.encode(), to=bob_id)
        for _ in range(3):
            msg = inbox.get(timeout=10)
            sender = "alice" if msg.sender == alice.id else msg.sender[:10]
            print(f"bob got from {sender}: {msg.data.decode()}")

        reply = alice.channel("whois").request(bob_id, b"who are you?", timeout=5)
        print(f"alice got the reply: {reply.decode()}")

        # Bob answers on the same channel: every connected peer (alice) gets it.
        reached = bob.channel("chat").broadcast(b"bye alice")
        print(f"bob broadcast to {reached} peer(s); alice got: {alice.channel('chat').recv().data.decode()}")

        for peer in alice.peers():
            print(f"alice knows {peer.name} ({peer.state}) at {', '.join(peer.addrs)}")


if __name__ == "__main__":
    main()
