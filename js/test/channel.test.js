'use strict'
// Channels between real nodes on 127.0.0.1: send, broadcast, recv, async iteration,
// message handlers.

const test = require('node:test')
const assert = require('node:assert/strict')
const { startNodes, startNode, rejectsWith, throwsWith, TIMEOUT } = require('../support/nodes')

/** A hub connected to `n` other nodes. */
async function star (t, n, extra) {
  const [hub, ...leaves] = await startNodes(t, n + 1, 's', extra)
  for (const leaf of leaves) assert.equal(await hub.connect(leaf.addr), leaf.id)
  return { hub, leaves }
}

test('send to one peer is received by recv, with the sender id', { timeout: TIMEOUT }, async (t) => {
  const { hub, leaves: [b] } = await star(t, 1)
  const inbox = b.channel('chat')
  assert.equal(await hub.channel('chat').send(Buffer.from('hello'), b.id), 1)
  const msg = await inbox.recv()
  assert.equal(msg.from, hub.id)
  assert.ok(Buffer.isBuffer(msg.data))
  assert.equal(msg.data.toString(), 'hello')
})

test('bytes in as Buffer, Uint8Array or string; out as Buffer', { timeout: TIMEOUT }, async (t) => {
  const { hub, leaves: [b] } = await star(t, 1)
  const inbox = b.channel('bytes')
  const ch = hub.channel('bytes')
  await ch.send(Buffer.from([1, 2, 3]), b.id)
  await ch.send(new Uint8Array([4, 5]), b.id)
  await ch.send('héllo', b.id)
  await ch.send(new Uint8Array([9, 8, 7, 6]).subarray(1, 3), b.id)
  assert.deepEqual([...(await inbox.recv()).data], [1, 2, 3])
  assert.deepEqual([...(await inbox.recv()).data], [4, 5])
  const text = await inbox.recv()
  assert.ok(Buffer.isBuffer(text.data))
  assert.equal(text.data.toString('utf8'), 'héllo')
  assert.deepEqual([...(await inbox.recv()).data], [8, 7])
})

test('send and broadcast reach 3 peers', { timeout: TIMEOUT }, async (t) => {
  const { hub, leaves } = await star(t, 3)
  const inboxes = leaves.map((n) => n.channel('news'))
  const ch = hub.channel('news')
  assert.equal(await ch.send('to all'), 3)
  for (const inbox of inboxes) {
    const msg = await inbox.recv()
    assert.equal(msg.data.toString(), 'to all')
    assert.equal(msg.from, hub.id)
  }
  assert.equal(await ch.broadcast('broadcast'), 3)
  for (const inbox of inboxes) assert.equal((await inbox.recv()).data.toString(), 'broadcast')
  // An array of ids reaches exactly those peers.
  assert.equal(await ch.send('two of them', [leaves[0].id, leaves[2].id]), 2)
  assert.equal((await inboxes[0].recv()).data.toString(), 'two of them')
  assert.equal((await inboxes[2].recv()).data.toString(), 'two of them')
  // The one left out gets the next message, not that one.
  await ch.send('last', leaves[1].id)
  assert.equal((await inboxes[1].recv()).data.toString(), 'last')
})

test('send to a peer without that channel is NotFound and names the failure', { timeout: TIMEOUT }, async (t) => {
  const { hub, leaves: [b, c] } = await star(t, 2)
  b.channel('partial')
  const err = await rejectsWith(hub.channel('partial').send('x'), 'NotFound')
  assert.match(err.message, /delivered to 1 of 2/)
  assert.match(err.message, new RegExp(c.id.slice(0, 10)))
  assert.equal((await b.channel('partial').recv()).data.toString(), 'x')
})

test('for await iterates messages in order and ends when the node shuts down', { timeout: TIMEOUT }, async (t) => {
  const [a] = await startNodes(t, 1, 'it')
  const b = await startNode(null, { name: 'iterated' })
  await a.connect(b.addr)
  const inbox = b.channel('stream')
  const sent = ['m0', 'm1', 'm2', 'm3', 'm4']
  for (const m of sent) await a.channel('stream').send(m, b.id)
  const got = []
  for await (const msg of inbox) {
    assert.equal(msg.from, a.id)
    got.push(msg.data.toString())
    if (got.length === sent.length) break
  }
  assert.deepEqual(got, sent)
  // A loop still waiting when the node shuts down ends cleanly.
  const rest = []
  const loop = (async () => {
    for await (const msg of inbox) rest.push(msg)
  })()
  await b.shutdown()
  await loop
  assert.deepEqual(rest, [])
})

test('onMessage gets every message in order, and null hands them back to recv', { timeout: TIMEOUT }, async (t) => {
  const { hub, leaves: [b] } = await star(t, 1)
  const inbox = b.channel('handled')
  const got = []
  let done
  const all = new Promise((resolve) => { done = resolve })
  inbox.onMessage(async (msg) => {
    // An async handler: the next message waits for this one.
    await new Promise((resolve) => setImmediate(resolve))
    got.push(msg.data.toString())
    if (got.length === 4) done()
  })
  const ch = hub.channel('handled')
  for (let i = 0; i < 4; i++) await ch.send(`h${i}`, b.id)
  await all
  assert.deepEqual(got, ['h0', 'h1', 'h2', 'h3'])
  inbox.onMessage(null)
  await ch.send('queued', b.id)
  assert.equal((await inbox.recv()).data.toString(), 'queued')
  assert.equal(got.length, 4)
})

test('a message to this node itself is delivered locally', { timeout: TIMEOUT }, async (t) => {
  const [a] = await startNodes(t, 1, 'self')
  const inbox = a.channel('loop')
  assert.equal(await a.channel('loop').send('me', a.id), 1)
  const msg = await inbox.recv()
  assert.equal(msg.from, a.id)
  assert.equal(msg.data.toString(), 'me')
})

test('oversized messages and bad arguments are InvalidInput', { timeout: TIMEOUT }, async (t) => {
  const { hub, leaves: [b] } = await star(t, 1, { maxMessageSize: 1024 })
  b.channel('big')
  const ch = hub.channel('big')
  await rejectsWith(ch.send(Buffer.alloc(2048), b.id), 'InvalidInput', /max_message_size/)
  await rejectsWith(ch.broadcast(Buffer.alloc(1025)), 'InvalidInput', /max_message_size/)
  assert.equal(await ch.send(Buffer.alloc(1024), b.id), 1)
  await rejectsWith(ch.send(42, b.id), 'InvalidInput', /data must be a Buffer, Uint8Array or string/)
  await rejectsWith(ch.send({}, b.id), 'InvalidInput')
  await rejectsWith(ch.send('x', 'not-a-node-id'), 'InvalidInput', /invalid node id/)
  await rejectsWith(ch.send('x', [b.id, 7]), 'InvalidInput', /to must be/)
  throwsWith(() => hub.channel(''), 'InvalidInput', /channel name/)
  throwsWith(() => hub.channel('x'.repeat(256)), 'InvalidInput', /channel name/)
  throwsWith(() => hub.channel(3), 'InvalidInput', /name must be a string/)
  throwsWith(() => ch.onMessage('not a function'), 'InvalidInput')
})
