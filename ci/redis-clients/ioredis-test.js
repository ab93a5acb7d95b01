// ioredis (npm) against memmesh's RESP front, driven by ci/test-redis:
//   node ioredis-test.js PORT_A PORT_B
// For RESP2 and RESP3: SET through a, GET/MGET through b, INCR through both, a pipeline,
// and a message published through a received by a subscriber connected to b.
"use strict";
const assert = require("node:assert/strict");
const Redis = require("ioredis");

const [portA, portB] = process.argv.slice(2).map(Number);

function client(port, protocol) {
  return new Redis({
    port,
    host: "127.0.0.1",
    protocol,
    lazyConnect: true,
    maxRetriesPerRequest: 1,
    retryStrategy: () => null,
  });
}

async function retry(what, fn) {
  for (let i = 0; i < 100; i++) {
    if (await fn()) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out: ${what}`);
}

async function run(protocol) {
  const a = client(portA, protocol);
  const b = client(portB, protocol);
  const sub = client(portB, protocol);
  await Promise.all([a.connect(), b.connect(), sub.connect()]);
  try {
    assert.equal(await a.ping(), "PONG");
    const k = `io${protocol}`;
    assert.equal(await a.set(k, "hello"), "OK");
    await retry("a key set through a is read through b", async () => (await b.get(k)) === "hello");
    const bin = Buffer.from([0, 1, 2, 255]);
    assert.equal(await a.set(`${k}:bin`, bin), "OK");
    assert.deepEqual(await b.getBuffer(`${k}:bin`), bin);
    assert.equal(await a.mset(`${k}:m1`, "1", `${k}:m2`, "2"), "OK");
    assert.deepEqual(await b.mget(`${k}:m1`, `${k}:nope`, `${k}:m2`), ["1", null, "2"]);
    assert.equal(await a.incr(`${k}:n`), 1);
    assert.equal(await b.incrby(`${k}:n`, 9), 10);
    assert.equal(await a.decr(`${k}:n`), 9);
    assert.equal(await a.set(`${k}:t`, "v", "EX", 100), "OK");
    const ttl = await b.ttl(`${k}:t`);
    assert.ok(ttl > 0 && ttl <= 100, `ttl ${ttl}`);
    assert.equal(await a.del(`${k}:m1`, `${k}:m2`), 2);
    await assert.rejects(a.call("NOSUCH"), /unknown command/);

    const pipe = a.pipeline();
    for (let i = 0; i < 100; i++) pipe.set(`${k}:p${i}`, String(i));
    pipe.get(`${k}:p99`);
    pipe.incr(`${k}:n`);
    const results = await pipe.exec();
    assert.equal(results.length, 102);
    for (const [err] of results) assert.equal(err, null);
    assert.equal(results[100][1], "99");
    assert.equal(results[101][1], 10);

    // Pub/sub across nodes: subscribed through b, published through a.
    const channel = `news${protocol}`;
    const got = new Promise((resolve) => sub.on("message", (ch, msg) => resolve([ch, msg])));
    assert.equal(await sub.subscribe(channel), 1);
    // The subscription is on b; a forwards to every connected peer, retried until b's
    // front relays it (b may still be joining).
    let received = null;
    got.then((m) => (received = m));
    await retry("a message published through a reaches b", async () => {
      await a.publish(channel, "hello");
      return received !== null;
    });
    assert.deepEqual(received, [channel, "hello"]);
    console.log(`ok   ioredis RESP${protocol}`);
  } finally {
    a.disconnect();
    b.disconnect();
    sub.disconnect();
  }
}

(async () => {
  await run(2);
  await run(3);
})().catch((e) => {
  console.error("FAIL ioredis:", e);
  process.exit(1);
});
