'use strict'
// The replicated cache: buckets, set/get/delete, TTL, LRU, incr, batches, replication
// over three nodes, quota and errors, between real nodes on 127.0.0.1.

const test = require('node:test')
const assert = require('node:assert/strict')
const { Cache } = require('..')
const { startNode, startCluster, rejectsWith, TIMEOUT } = require('../support/nodes')

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const DEFAULTS = { ttlMs: null, maxEntries: null, maxBytes: null, replicas: 2 }

test('set, get, delete and len on one node; values come back as Buffers', { timeout: TIMEOUT }, async (t) => {
  const a = await startNode(t, { name: 'a' })
  const cache = await a.cache('sessions')
  assert.ok(cache instanceof Cache)
  assert.equal(cache.name, 'sessions')
  assert.deepEqual(cache.options, DEFAULTS)
  assert.deepEqual(a.caches(), { sessions: DEFAULTS })
  assert.equal(await cache.get('k'), null)
  await cache.set('k', Buffer.from('v1'))
  const v1 = await cache.get('k')
  assert.ok(Buffer.isBuffer(v1))
  assert.deepEqual(v1, Buffer.from('v1'))
  await cache.set('k', new TextEncoder().encode('v2'))
  assert.deepEqual(await cache.get('k'), Buffer.from('v2'))
  await cache.set('empty', Buffer.alloc(0))
  assert.deepEqual(await cache.get('empty'), Buffer.alloc(0))
  await cache.set('text', 'utf-8 ✓')
  assert.equal((await cache.get('text')).toString(), 'utf-8 ✓')
  assert.equal(await cache.len(), 3)
  assert.equal(await cache.delete('k'), true)
  assert.equal(await cache.delete('k'), false)
  assert.equal(await cache.get('k'), null)
  assert.equal(await cache.len(), 2)
  const stats = cache.stats()
  assert.equal(stats.entries, 2)
  assert.ok(stats.bytes > 0)
  assert.ok(stats.hits >= 4, `hits ${stats.hits}`)
  assert.ok(stats.misses >= 2, `misses ${stats.misses}`)
  // The same bucket again: the same data.
  const again = await a.cache('sessions')
  assert.deepEqual(await again.get('empty'), Buffer.alloc(0))
  // Every value read is a Buffer of its own, small or large (1 MiB).
  const big = Buffer.alloc(1 << 20, 'b')
  await cache.set('big', big)
  await cache.set('other', 'second')
  const [first, large, second] = [await cache.get('text'), await cache.get('big'), await cache.get('other')]
  assert.equal(first.toString(), 'utf-8 ✓')
  assert.ok(Buffer.isBuffer(large))
  assert.ok(large.equals(big))
  assert.equal(second.toString(), 'second')
  first.fill(0)
  assert.equal((await cache.get('text')).toString(), 'utf-8 ✓')
})

test('local hits: each value is its own Buffer across many reads; long and multi-byte keys', { timeout: TIMEOUT }, async (t) => {
  const a = await startNode(t, { name: 'a' })
  const cache = await a.cache('local', { replicas: 1 })
  // Keys around the native fast path's 256-byte stack buffer (whole characters of 1 to 4
  // bytes ending on either side of it) and values from empty to larger than its pool.
  const keys = []
  for (const ch of ['k', 'é', '€', '😀']) {
    for (let bytes = 240; bytes <= 270; bytes++) {
      const n = Math.floor(bytes / Buffer.byteLength(ch))
      keys.push(`${ch.repeat(n)}`)
    }
  }
  for (let i = 0; i < 400; i++) keys.push(`key:${i}`)
  const unique = [...new Set(keys)]
  const sizes = [0, 1, 7, 100, 1000, 3000, 4096, 5000, 16 * 1024, 40 * 1024]
  const expected = new Map(unique.map((k, i) => [k, Buffer.alloc(sizes[i % sizes.length], `${k}:${i}`)]))
  await cache.setMany([...expected])
  const got = []
  for (let round = 0; round < 3; round++) {
    for (const k of unique) got.push([k, await cache.get(k)])
  }
  // Nothing read later overwrote what was read before, and no two values alias.
  for (const [k, v] of got) {
    assert.ok(Buffer.isBuffer(v), k)
    assert.ok(v.equals(expected.get(k)), `value of ${k} (${v.length} bytes)`)
  }
  for (const [, v] of got) v.fill(0)
  for (const k of unique) assert.ok((await cache.get(k)).equals(expected.get(k)), k)
  assert.equal(await cache.get('é'.repeat(300)), null)
})

test('bucket options are checked and must agree with the existing bucket', { timeout: TIMEOUT }, async (t) => {
  const a = await startNode(t, { name: 'a' })
  const opts = { ttlMs: 60000, maxEntries: 100, maxBytes: 1 << 20, replicas: 1 }
  const cache = await a.cache('x', opts)
  assert.deepEqual(cache.options, opts)
  // No options (or only unset ones): the existing bucket's.
  assert.deepEqual((await a.cache('x')).options, opts)
  assert.deepEqual((await a.cache('x', { ttlMs: null })).options, opts)
  await rejectsWith(a.cache('x', { replicas: 3 }), 'InvalidInput')
  for (const bad of [{ replicas: 0 }, { replicas: 17 }, { ttlMs: 0 }, { maxEntries: 0 }, { maxBytes: 0 },
    { ttlMs: -1 }, { maxEntries: 1.5 }, { replicas: '2' }, { ttl: 5 }]) {
    await rejectsWith(a.cache('y', bad), 'InvalidInput')
  }
  await rejectsWith(a.cache(''), 'InvalidInput')
  await rejectsWith(a.cache(7), 'InvalidInput')
  assert.deepEqual(Object.keys(a.caches()), ['x'])
})

test('a write on one node is read on the others (3 nodes, replicas 2)', { timeout: TIMEOUT }, async (t) => {
  const [a, b, c] = await startCluster(t, 3)
  const opts = { ...DEFAULTS, replicas: 2 }
  const ca = await a.cache('shared', { replicas: 2 })
  for (let i = 0; i < 100; i++) await ca.set(`k${i}`, Buffer.from(`v${i}`))
  // Every node learned the bucket, with its options.
  const cb = await b.cache('shared')
  const cc = await c.cache('shared')
  assert.deepEqual(cc.options, opts)
  assert.deepEqual(c.caches(), { shared: opts })
  for (const cache of [ca, cb, cc]) {
    for (let i = 0; i < 100; i++) assert.deepEqual(await cache.get(`k${i}`), Buffer.from(`v${i}`))
    assert.equal(await cache.len(), 100)
  }
  // At least two copies of each entry across the three nodes.
  const copies = [ca, cb, cc].reduce((n, cache) => n + cache.stats().entries, 0)
  assert.ok(copies >= 200, `copies ${copies}`)
  // A delete on one node is seen by every node.
  assert.equal(await cc.delete('k7'), true)
  for (const cache of [ca, cb, cc]) assert.equal(await cache.get('k7'), null)
  // With replicas 2, losing one node loses no entry.
  await c.shutdown()
  for (const cache of [ca, cb]) {
    for (let i = 0; i < 100; i++) {
      assert.deepEqual(await cache.get(`k${i}`), i === 7 ? null : Buffer.from(`v${i}`))
    }
  }
})

test('entries expire after their TTL; the bucket TTL is the default', { timeout: TIMEOUT }, async (t) => {
  const a = await startNode(t, { name: 'a' })
  const cache = await a.cache('t')
  await cache.set('short', 'x', 150)
  await cache.set('long', 'y', 60000)
  await cache.set('forever', 'z')
  const left = await cache.ttl('short')
  assert.equal(typeof left, 'number')
  assert.ok(left >= 0 && left <= 150, `ttl ${left}`)
  assert.equal(await cache.ttl('forever'), null)
  await sleep(400)
  assert.equal(await cache.get('short'), null)
  assert.deepEqual(await cache.get('long'), Buffer.from('y'))
  assert.deepEqual(await cache.get('forever'), Buffer.from('z'))
  await rejectsWith(cache.ttl('short'), 'NotFound')
  assert.ok(cache.stats().expired >= 1)
  const quick = await a.cache('quick', { ttlMs: 150 })
  await quick.set('k', 'v')
  await quick.setMany([['m', 'w']])
  assert.notEqual(await quick.ttl('k'), null)
  assert.notEqual(await quick.ttl('m'), null)
  await sleep(400)
  assert.deepEqual(await quick.getMany(['k', 'm']), [null, null])
})

test('expire sets the TTL of an existing key; ttl reports it', { timeout: TIMEOUT }, async (t) => {
  const a = await startNode(t, { name: 'a' })
  const cache = await a.cache('e')
  await cache.set('k', 'v')
  assert.equal(await cache.ttl('k'), null)
  assert.equal(await cache.expire('k', 60000), true)
  const left = await cache.ttl('k')
  assert.ok(left > 0 && left <= 60000, `ttl ${left}`)
  assert.equal(await cache.expire('missing', 1000), false)
  await rejectsWith(cache.ttl('missing'), 'NotFound')
  await rejectsWith(cache.expire('k', 0), 'InvalidInput')
  await rejectsWith(cache.expire('k'), 'InvalidInput')
  assert.equal(await cache.expire('k', 100), true)
  await sleep(300)
  assert.equal(await cache.get('k'), null)
})

test('the least recently used entries go first (maxEntries 2)', { timeout: TIMEOUT }, async (t) => {
  const a = await startNode(t, { name: 'a' })
  const cache = await a.cache('lru', { maxEntries: 2, replicas: 1 })
  await cache.set('a', '1')
  await cache.set('b', '2')
  assert.deepEqual(await cache.get('a'), Buffer.from('1')) // a is now more recent than b
  await cache.set('c', '3')
  assert.equal(await cache.get('b'), null)
  assert.deepEqual(await cache.get('a'), Buffer.from('1'))
  assert.deepEqual(await cache.get('c'), Buffer.from('3'))
  const stats = cache.stats()
  assert.deepEqual([stats.entries, stats.evicted], [2, 1])
})

test('incr counts in ASCII decimal, across nodes', { timeout: TIMEOUT }, async (t) => {
  const [a, b] = await startCluster(t, 2)
  const ca = await a.cache('counters')
  const cb = await b.cache('counters')
  assert.equal(await ca.incr('n'), 1)
  assert.equal(await cb.incr('n', 5), 6)
  assert.equal(await ca.incr('n', -10), -4)
  assert.deepEqual(await cb.get('n'), Buffer.from('-4'))
  await ca.set('text', 'abc')
  await rejectsWith(ca.incr('text'), 'InvalidInput')
  await ca.set('big', '9223372036854775807')
  await rejectsWith(ca.incr('big'), 'InvalidInput')
  await rejectsWith(ca.incr('n', 1.5), 'InvalidInput')
  await rejectsWith(ca.incr('n', '1'), 'InvalidInput')
})

test('getMany and setMany across nodes', { timeout: TIMEOUT }, async (t) => {
  const [a, , c] = await startCluster(t, 3)
  const ca = await a.cache('batch')
  const entries = []
  for (let i = 0; i < 40; i++) entries.push([`k${i}`, Buffer.alloc(i, i)])
  await ca.setMany(entries)
  const cc = await c.cache('batch')
  const got = await cc.getMany([...entries.map(([k]) => k), 'absent'])
  assert.deepEqual(got, [...entries.map(([, v]) => v), null])
  assert.ok(got.slice(0, 40).every((v) => Buffer.isBuffer(v)))
  assert.deepEqual(await cc.getMany([]), [])
  // A Map and a plain object are entries too.
  await cc.setMany(new Map([['t1', 'x'], ['t2', 'y']]), 60000)
  await cc.setMany({ o1: Buffer.from('p') })
  for (const key of ['t1', 't2']) {
    const left = await ca.ttl(key)
    assert.ok(left > 0 && left <= 60000, `ttl ${left}`)
  }
  assert.deepEqual(await ca.getMany(['t1', 't2', 'o1']), [Buffer.from('x'), Buffer.from('y'), Buffer.from('p')])
  assert.equal(await ca.len(), 43)
  await rejectsWith(ca.setMany([['only-a-key']]), 'InvalidInput')
  await rejectsWith(ca.setMany([[1, 'v']]), 'InvalidInput')
  await rejectsWith(ca.setMany('nope'), 'InvalidInput')
  await rejectsWith(ca.getMany(['ok', 2]), 'InvalidInput')
})

test('a write over the memory quota fails with QuotaExceeded', { timeout: TIMEOUT }, async (t) => {
  const a = await startNode(t, { name: 'a', memoryQuota: 256 * 1024 })
  const cache = await a.cache('q', { replicas: 1 })
  await cache.set('small', Buffer.alloc(100, 's'))
  await rejectsWith(cache.set('huge', Buffer.alloc(300 * 1024, 'h')), 'QuotaExceeded')
  assert.equal(await cache.get('huge'), null)
  assert.deepEqual(await cache.get('small'), Buffer.alloc(100, 's'))
})

test('bad keys and values are InvalidInput; a closed node is Closed', { timeout: TIMEOUT }, async () => {
  const a = await startNode(null, { name: 'a' })
  let cache
  try {
    cache = await a.cache('c')
    await rejectsWith(cache.set('k'.repeat(5000), 'v'), 'InvalidInput')
    await rejectsWith(cache.set(1, 'v'), 'InvalidInput')
    await rejectsWith(cache.set('k', 12), 'InvalidInput')
    await rejectsWith(cache.set('k', 'v', 'soon'), 'InvalidInput')
    await rejectsWith(cache.get(1), 'InvalidInput')
    await cache.set('k', 'v')
  } finally {
    await a.shutdown()
  }
  await rejectsWith(a.cache('c'), 'Closed')
  await rejectsWith(cache.set('k', 'v'), 'Closed')
  await rejectsWith(cache.get('k'), 'Closed')
  await rejectsWith(cache.len(), 'Closed')
})
