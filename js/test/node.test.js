'use strict'
// Node lifecycle, identity, connections and peers, between real nodes on 127.0.0.1.

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { Node, MemmeshError, ERROR_CODES } = require('..')
const { startNode, startNodes, rejectsWith, throwsWith, TIMEOUT } = require('../support/nodes')

test('start gives a node with an id, a name and a loopback address; shutdown closes it', { timeout: TIMEOUT }, async () => {
  const node = await Node.start({ name: 'solo', listen: '127.0.0.1:0', mdns: false, threads: 1 })
  assert.match(node.id, /^[a-z2-7]{52}$/)
  assert.equal(node.name, 'solo')
  assert.match(node.addr, /^127\.0\.0\.1:\d+$/)
  assert.notEqual(node.addr, '127.0.0.1:0')
  assert.equal(typeof node.clusterTag, 'string')
  assert.equal(node.closed, false)
  await node.shutdown()
  assert.equal(node.closed, true)
  await node.shutdown() // idempotent
})

test('two nodes have different ids and a default name', { timeout: TIMEOUT }, async (t) => {
  const [a, b] = await startNodes(t, 2)
  assert.notEqual(a.id, b.id)
  const unnamed = await startNode(t)
  assert.match(unnamed.name, /^node-/)
})

test('connect resolves with the peer id and peers() lists both sides', { timeout: TIMEOUT }, async (t) => {
  const [a, b] = await startNodes(t, 2, 'peer')
  const id = await a.connect(b.addr)
  assert.equal(id, b.id)
  const seen = a.peers().find((p) => p.id === b.id)
  assert.ok(seen, 'a lists b')
  assert.equal(seen.name, 'peer1')
  assert.equal(seen.state, 'alive')
  assert.equal(seen.connected, true)
  assert.ok(seen.addrs.includes(b.addr), `addrs ${seen.addrs} include ${b.addr}`)
  assert.equal(typeof seen.rttMs, 'number')
  assert.ok(seen.rttMs >= 0)
  // The accepting side knows the dialler too.
  const back = b.peers().find((p) => p.id === a.id)
  assert.ok(back, 'b lists a')
  assert.equal(back.name, 'peer0')
  // Connecting again reuses the connection.
  assert.equal(await a.connect(b.addr), b.id)
  assert.equal(a.peers().filter((p) => p.id === b.id).length, 1)
})

test('nodes with the same cluster secret connect; a wrong secret is Unauthorized', { timeout: TIMEOUT }, async (t) => {
  const a = await startNode(t, { clusterSecret: 'blue' })
  const b = await startNode(t, { clusterSecret: Buffer.from('blue') })
  const c = await startNode(t, { clusterSecret: 'green' })
  const open = await startNode(t)
  assert.equal(await a.connect(b.addr), b.id)
  assert.equal(a.clusterTag, b.clusterTag)
  assert.notEqual(a.clusterTag, c.clusterTag)
  await rejectsWith(a.connect(c.addr), 'Unauthorized')
  await rejectsWith(open.connect(a.addr), 'Unauthorized')
  assert.equal(a.peers().some((p) => p.id === c.id && p.connected), false)
})

test('bad options are InvalidInput', { timeout: TIMEOUT }, async () => {
  await rejectsWith(Node.start({ listen: 'not an address', mdns: false }), 'InvalidInput', /address/)
  await rejectsWith(Node.start({ listen: '127.0.0.1:0', mdns: false, threads: 0 }), 'InvalidInput', /threads/)
  await rejectsWith(Node.start({ listen: '127.0.0.1:0', mdns: false, memoryQuota: -1 }), 'InvalidInput', /memoryQuota/)
  await rejectsWith(Node.start({ listen: '127.0.0.1:0', mdns: false, requestTimeoutMs: 1.5 }), 'InvalidInput', /requestTimeoutMs/)
  await rejectsWith(Node.start({ listen: '127.0.0.1:0', mdns: false, maxMessageSize: 0 }), 'InvalidInput', /max_message_size/)
  await rejectsWith(Node.start({ listen: '127.0.0.1:0', mdnss: false }), 'InvalidInput', /unknown option "mdnss"/)
  await rejectsWith(Node.start({ listen: 7 }), 'InvalidInput', /listen must be a string/)
  await rejectsWith(Node.start('127.0.0.1:0'), 'InvalidInput', /options must be an object/)
})

test('knownPeersTtlMs is taken and validated', { timeout: TIMEOUT }, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'memmesh-known-'))
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  const a = await Node.start({ listen: '127.0.0.1:0', mdns: false, dataDir: dir, knownPeersTtlMs: 3600 * 1000 })
  await a.shutdown()
  const off = await Node.start({ listen: '127.0.0.1:0', mdns: false, dataDir: dir, knownPeersTtlMs: 0 })
  await off.shutdown()
  await rejectsWith(Node.start({ listen: '127.0.0.1:0', mdns: false, knownPeersTtlMs: -1 }), 'InvalidInput', /knownPeersTtlMs/)
  await rejectsWith(Node.start({ listen: '127.0.0.1:0', mdns: false, knownPeersTtlMs: 400 * 86400 * 1000 }), 'InvalidInput', /known_peers_ttl must be at most/)
  await rejectsWith(Node.start({ listen: '127.0.0.1:0', mdns: false, knownPeersTtlMs: '7d' }), 'InvalidInput', /knownPeersTtlMs/)
})

test('connect to a bad address is InvalidInput', { timeout: TIMEOUT }, async (t) => {
  const a = await startNode(t)
  await rejectsWith(a.connect('nowhere'), 'InvalidInput', /invalid address/)
  await rejectsWith(a.connect('127.0.0.1:99999'), 'InvalidInput')
  await rejectsWith(a.connect(42), 'InvalidInput', /addr must be a string/)
})

test('every call on a closed node fails with Closed', { timeout: TIMEOUT }, async () => {
  const a = await startNode(null, { name: 'closing' })
  const b = await startNode(null)
  await a.connect(b.addr)
  const ch = a.channel('late')
  await a.shutdown()
  throwsWith(() => a.channel('other'), 'Closed')
  await rejectsWith(a.connect(b.addr), 'Closed')
  await rejectsWith(ch.send('x', b.id), 'Closed')
  await rejectsWith(ch.broadcast('x'), 'Closed')
  await rejectsWith(ch.request(b.id, 'x'), 'Closed')
  await rejectsWith(ch.recv(), 'Closed')
  throwsWith(() => ch.onRequest(() => 'x'), 'Closed')
  throwsWith(() => ch.onMessage(() => {}), 'Closed')
  await b.shutdown()
})

test('MemmeshError is an Error subclass and ERROR_CODES lists every kind', { timeout: TIMEOUT }, () => {
  const e = new MemmeshError('Timeout', 'slow')
  assert.ok(e instanceof Error)
  assert.equal(e.name, 'MemmeshError')
  assert.equal(e.code, 'Timeout')
  assert.deepEqual([...ERROR_CODES].sort(), [
    'Closed', 'Corrupted', 'HandlerFailed', 'Internal', 'InvalidInput', 'Io', 'NotFound',
    'PeerUnavailable', 'QuotaExceeded', 'Timeout', 'Unauthorized', 'Unsupported'
  ])
  assert.throws(() => new Node(), TypeError)
})

/**
 * The lowest of `ids` in NodeId (byte) order. Base32 text does not sort like its bytes in
 * ASCII (digits 2-7 come after z in the alphabet), so compare digit values.
 */
function lowestId (ids) {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz234567'
  const key = (id) => [...id].map((ch) => String.fromCharCode(65 + alphabet.indexOf(ch))).join('')
  return [...ids].sort((x, y) => (key(x) < key(y) ? -1 : key(x) > key(y) ? 1 : 0))[0]
}

test('membership events report a peer that joins, and the leader is the lowest live id', { timeout: TIMEOUT }, async (t) => {
  const [a, b] = await startNodes(t, 2, 'member')
  assert.equal(a.leader, a.id, 'a node alone leads')
  const events = a.events()
  await a.connect(b.addr)
  let up
  for await (const event of events) {
    assert.equal(typeof event.type, 'string')
    if (event.type === 'PeerUp' && event.id === b.id) {
      up = event
      break
    }
  }
  assert.equal(up.name, 'member1')
  assert.ok(up.addrs.includes(b.addr), `addrs ${up.addrs} include ${b.addr}`)
  const lowest = lowestId([a.id, b.id])
  // The view may elect after the PeerUp: wait for it through the events if needed.
  while (a.leader !== lowest) {
    const event = await events.next()
    if (event.type === 'LeaderChanged') assert.equal(event.leader, a.leader)
  }
  assert.equal(a.leader, lowest)
})

test('events end when the node shuts down, and events() on a closed node is Closed', { timeout: TIMEOUT }, async () => {
  const a = await startNode(null)
  const events = a.events()
  const seen = []
  const loop = (async () => { for await (const e of events) seen.push(e) })()
  await a.shutdown()
  await loop
  await rejectsWith(events.next(), 'Closed')
  throwsWith(() => a.events(), 'Closed')
})

test('open is accepted, checked, and loopback peers talk in either mode', { timeout: TIMEOUT }, async (t) => {
  // Without a cluster secret a node is in protected mode (loopback peers only, ADR 0014)
  // unless `open: true`; both kinds talk over loopback.
  const a = await startNode(t, { name: 'open', open: true })
  const b = await startNode(t, { name: 'protected' })
  assert.equal(await b.connect(a.addr), a.id)
  await assert.rejects(Node.start({ listen: '127.0.0.1:0', mdns: false, open: 'yes' }))
})

test('membership and tuning options are taken, and validated by the core', { timeout: TIMEOUT }, async (t) => {
  const a = await startNode(t, {
    membership: { probePeriodMs: 400, suspectTimeoutMs: 2000 },
    tuning: { keepAliveMs: 1000, congestion: 'bbr', maxUniStreams: 64 }
  })
  const b = await startNode(t, { membership: { rejoinIntervalMs: 500 } })
  assert.equal(await a.connect(b.addr), b.id)
  const local = { listen: '127.0.0.1:0', mdns: false }
  await rejectsWith(Node.start({ ...local, membership: { probeRttMs: 0 } }), 'InvalidInput', /probe_rtt/)
  await rejectsWith(Node.start({ ...local, membership: { probePeriodMs: 1.5 } }), 'InvalidInput', /membership\.probePeriodMs/)
  await rejectsWith(Node.start({ ...local, membership: { probePeriod: 1 } }), 'InvalidInput', /unknown membership option "probePeriod"/)
  await rejectsWith(Node.start({ ...local, membership: 5 }), 'InvalidInput', /membership must be an object/)
  await rejectsWith(Node.start({ ...local, tuning: { idleTimeoutMs: 3 * 86400e3 } }), 'InvalidInput', /idle_timeout/)
  await rejectsWith(Node.start({ ...local, tuning: { congestion: 'reno' } }), 'InvalidInput', /congestion/)
  await rejectsWith(Node.start({ ...local, tuning: { mtuUpperBound: 70000 } }), 'InvalidInput', /tuning\.mtuUpperBound/)
})
