"""A Python process and a Node.js process, each running a memmesh node, find each other
by address and exchange requests both ways (and errors cross the languages too)."""

import pathlib
import subprocess

import memmesh

HERE = pathlib.Path(__file__).parent
SECRET = "cross-language"


def test_python_and_node_exchange_requests_both_ways():
    with memmesh.Node(name="py", listen="127.0.0.1:0", mdns=False, cluster_secret=SECRET) as py:
        py.channel("py-echo").on_request(lambda req: b"py:" + req.data)
        js = subprocess.Popen(
            ["node", str(HERE / "js_side.js"), py.addr, SECRET],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            lines = {}
            for _ in range(3):
                line = js.stdout.readline().strip()
                assert line, "the Node.js side ended early"
                key, _, value = line.partition(" ")
                lines[key] = value
            # Node.js asked Python.
            assert lines["REPLY"] == "py:hello from node"
            # A Python-side error reached JS with its code.
            assert lines["ERROR"] == "NotFound"
            # Python asks Node.js over the same connection.
            js_id = lines["READY"]
            assert py.channel("js-echo").request(js_id, b"hello from python", timeout=10) == b"js:hello from python"
            assert any(p.id == js_id and p.name == "js" for p in py.peers())
            # A JS-side error reaches Python as the right exception class.
            try:
                py.channel("absent").request(js_id, b"x", timeout=10)
                raise AssertionError("expected NotFoundError")
            except memmesh.NotFoundError:
                pass
        finally:
            js.stdin.close()
            assert js.wait(timeout=60) == 0
        assert js.stdout.read().strip() == "BYE"
