'use strict'
// Blocks: put/get/free locally and on peers, placement, stats, quota and errors, between
// real nodes on 127.0.0.1.

const test = require('node:test')
const assert = require('node:assert/strict')
const { Blocks } = require('..')
const { startNode, startNodes, startCluster, eventually, rejectsWith, throwsWith, TIMEOUT } = require('../support/nodes')

const HELLO_ID = 'blake3:ea8f163db38682925e4491c5e58d4bb3506ef8c14eb78a86e908c5624a67200f'
const UNKNOWN_ID = 'blake3:' + '00'.repeat(32)

/** Two nodes, the first connected to the second, each seeing the other alive. */
async function pair (t, extra = {}) {
  return startCluster(t, 2, 'p', extra)
}

test('put, get and free on this node; ids are BLAKE3 content hashes', { timeout: TIMEOUT }, async (t) => {
  const a = await startNode(t, { name: 'a' })
  const blocks = a.blocks
  assert.ok(blocks instanceof Blocks)
  assert.equal(a.blocks, blocks, 'node.blocks is one object')
  assert.equal(await blocks.put(Buffer.from('hello')), HELLO_ID)
  assert.equal(await blocks.put(new TextEncoder().encode('hello'), 'local'), HELLO_ID)
  const back = await blocks.get(HELLO_ID)
  assert.ok(Buffer.isBuffer(back))
  assert.deepEqual(back, Buffer.from('hello'))
  const usage = blocks.localStats()
  assert.equal(usage.id, a.id)
  assert.equal(usage.name, 'a')
  assert.deepEqual([usage.blocks, usage.blockBytes], [1, 5]) // deduplicated
  assert.ok(usage.used >= usage.blockBytes)
  assert.equal(usage.free, usage.quota - usage.used)
  // Placing on this node's own id is local too.
  const data = Buffer.alloc(16384, 7)
  const id = await blocks.put(data, a.id)
  assert.deepEqual(await blocks.get(id), data)
  assert.equal(blocks.localStats().blocks, 2)
  await blocks.free(HELLO_ID)
  await rejectsWith(blocks.get(HELLO_ID), 'NotFound')
  await rejectsWith(blocks.free(HELLO_ID), 'NotFound')
  await blocks.free(id)
  assert.deepEqual([blocks.localStats().blocks, blocks.localStats().blockBytes], [0, 0])
})

test('a block put on a peer is readable from a third node, and freed only by its owner', { timeout: TIMEOUT }, async (t) => {
  const [a, b, c] = await startCluster(t, 3)
  const data = Buffer.from('lent RAM '.repeat(1000))
  const id = await a.blocks.put(data, b.id)
  // It lives in b's RAM, not in a's.
  assert.equal(b.blocks.localStats().blocks, 1)
  assert.equal(a.blocks.localStats().blocks, 0)
  assert.deepEqual(await a.blocks.get(id), data)
  assert.deepEqual(await c.blocks.get(id), data)
  assert.equal(c.blocks.localStats().blocks, 0)
  // Only the node that put it may free it.
  await rejectsWith(c.blocks.free(id), 'Unauthorized')
  assert.equal(b.blocks.localStats().blocks, 1)
  await a.blocks.free(id)
  assert.equal(b.blocks.localStats().blocks, 0)
  await rejectsWith(a.blocks.get(id), 'NotFound')
})

test('auto placement picks the peer advertising the most free quota', { timeout: TIMEOUT }, async (t) => {
  const lonely = await startNode(t, { name: 'lonely' })
  // Without peers, auto stores locally.
  const local = await lonely.blocks.put('x', 'auto')
  assert.equal(lonely.blocks.localStats().blocks, 1)
  assert.deepEqual(await lonely.blocks.get(local), Buffer.from('x'))

  const a = await startNode(t, { name: 'a', memoryQuota: 1 << 20 })
  const big = await startNode(t, { name: 'big', memoryQuota: 64 << 20 })
  const small = await startNode(t, { name: 'small', memoryQuota: 2 << 20 })
  for (const peer of [big, small]) await a.connect(peer.addr)
  assert.ok(await eventually(() => a.peers().filter((p) => p.state === 'alive').length === 2))
  const id = await a.blocks.put(Buffer.from('auto'.repeat(100)), 'auto')
  assert.equal(big.blocks.localStats().blocks, 1)
  assert.equal(small.blocks.localStats().blocks, 0)
  assert.equal(a.blocks.localStats().blocks, 0)
  // small reaches big once membership has told it about big (gossip through a).
  assert.ok(await eventually(() => small.peers().filter((p) => p.state === 'alive').length === 2))
  assert.deepEqual(await small.blocks.get(id), Buffer.from('auto'.repeat(100)))
})

test('stats list this node first, then its peers', { timeout: TIMEOUT }, async (t) => {
  const [a, b] = await pair(t, { memoryQuota: 8 << 20 })
  await a.blocks.put('on b', b.id)
  const stats = await a.blocks.stats()
  assert.deepEqual(stats.map((u) => u.id), [a.id, b.id])
  assert.deepEqual(stats.map((u) => u.name), ['p0', 'p1'])
  assert.ok(stats.every((u) => u.quota === 8 << 20))
  assert.deepEqual([stats[0].blocks, stats[1].blocks], [0, 1])
  assert.equal(stats[1].blockBytes, 4)
  assert.ok(stats[1].used >= 4)
  assert.deepEqual(stats[1], b.blocks.localStats())
})

test('peers advertise their free quota (PeerInfo.quotaFree)', { timeout: TIMEOUT }, async (t) => {
  const [a] = await pair(t, { memoryQuota: 4 << 20 })
  const advertised = () => {
    const peers = a.peers()
    return peers.length === 1 && typeof peers[0].quotaFree === 'number'
  }
  assert.ok(await eventually(advertised), JSON.stringify(a.peers()))
  const free = a.peers()[0].quotaFree
  assert.ok(free > 0 && free <= 4 << 20, `quotaFree ${free}`)
})

test('a put over the quota fails with QuotaExceeded and evicts nothing', { timeout: TIMEOUT }, async (t) => {
  const [a, b] = await pair(t, { memoryQuota: 256 * 1024 })
  const kept = await a.blocks.put(Buffer.alloc(1000, 'k'))
  const err = await rejectsWith(a.blocks.put(Buffer.alloc(300 * 1024, 'x')), 'QuotaExceeded')
  assert.ok(err.message.length > 0)
  // On a peer, its quota applies and the error crosses the network.
  await rejectsWith(a.blocks.put(Buffer.alloc(300 * 1024, 'y'), b.id), 'QuotaExceeded')
  assert.deepEqual(await a.blocks.get(kept), Buffer.alloc(1000, 'k'))
  assert.equal(b.blocks.localStats().blocks, 0)
})

test('malformed ids and placements are InvalidInput; unknown ids are NotFound', { timeout: TIMEOUT }, async (t) => {
  const [a] = await pair(t)
  const blocks = a.blocks
  for (const bad of ['', 'blake3:', 'sha1:00', 'blake3:zz', 'blake3:abcd', HELLO_ID.slice(7)]) {
    await rejectsWith(blocks.get(bad), 'InvalidInput')
    await rejectsWith(blocks.free(bad), 'InvalidInput')
  }
  // Asked of this node and of the peer: nobody holds it.
  await rejectsWith(blocks.get(UNKNOWN_ID), 'NotFound')
  await rejectsWith(blocks.free(UNKNOWN_ID), 'NotFound')
  await rejectsWith(blocks.put('x', 'not-a-node-id'), 'InvalidInput', /placement/)
  await rejectsWith(blocks.put(42), 'InvalidInput')
  await rejectsWith(blocks.get(42), 'InvalidInput')
  await rejectsWith(blocks.put('x', null), 'InvalidInput')
})

test('a get from a vanished holder fails with PeerUnavailable', { timeout: TIMEOUT }, async (t) => {
  const [a, b] = await pair(t, { connectTimeoutMs: 1000, requestTimeoutMs: 3000 })
  const id = await a.blocks.put('gone soon', b.id)
  await b.shutdown()
  const err = await rejectsWith(a.blocks.get(id), 'PeerUnavailable')
  assert.ok(err.message.length > 0)
})

test('the blocks of a closed node are Closed', { timeout: TIMEOUT }, async () => {
  const [a] = await startNodes(null, 1)
  const blocks = a.blocks
  const id = await blocks.put('x')
  await a.shutdown()
  await rejectsWith(blocks.get(id), 'Closed')
  await rejectsWith(blocks.put('y'), 'Closed')
  await rejectsWith(blocks.stats(), 'Closed')
  const late = await startNode(null)
  await late.shutdown()
  throwsWith(() => late.blocks, 'Closed')
})
