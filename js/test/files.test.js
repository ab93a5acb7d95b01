'use strict'
// Files: persistent, encrypted files on real nodes with a temporary data dir: bytes and
// paths round trip, a restart keeps files, stat, list paging, delete, and the errors (no
// data dir, wrong passphrase, disk quota, replicas).

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { Files } = require('..')
const { tempDirs, startNode, eventually, rejectsWith, TIMEOUT } = require('../support/nodes')

const HELLO_ID = 'blake3:ea8f163db38682925e4491c5e58d4bb3506ef8c14eb78a86e908c5624a67200f'
const UNKNOWN_ID = 'blake3:' + '00'.repeat(32)
const FILE_ID = /^blake3:[0-9a-f]{64}$/

/** A fresh temporary directory, removed once this file's tests are done. */
const tempDir = tempDirs('files')

test('files: bytes and a path round trip', { timeout: TIMEOUT }, async (t) => {
  const dir = tempDir()
  const node = await startNode(t, { dataDir: path.join(dir, 'data') })
  const files = node.files
  assert.ok(files instanceof Files)
  assert.equal(node.files, files, 'node.files is one object')
  assert.equal(await files.put(Buffer.from('hello')), HELLO_ID)
  assert.equal(await files.put(new TextEncoder().encode('hello')), HELLO_ID)
  const back = await files.get(HELLO_ID)
  assert.ok(Buffer.isBuffer(back))
  assert.deepEqual(back, Buffer.from('hello'))
  // A path is streamed from disk (several 64 KiB segments).
  const big = Buffer.alloc(200_000)
  for (let i = 0; i < big.length; i++) big[i] = i % 251
  const source = path.join(dir, 'source.bin')
  fs.writeFileSync(source, big)
  const id = await files.put(source, { name: 'source.bin' })
  assert.match(id, FILE_ID)
  assert.equal(await files.put(big), id)
  const out = path.join(dir, 'out.bin')
  assert.equal(await files.get(id, { into: out }), undefined)
  assert.deepEqual(fs.readFileSync(out), big)
  await rejectsWith(files.get(id, { into: out }), 'InvalidInput') // never replaces a file
  assert.equal(files.stats().files, 2)
  await rejectsWith(files.put(42), 'InvalidInput')
  await rejectsWith(files.put(big, { colour: 'red' }), 'InvalidInput', /unknown put option/)
})

test('files: a restart keeps a file', { timeout: TIMEOUT }, async (t) => {
  const dataDir = path.join(tempDir(), 'data')
  const first = await startNode(t, { dataDir })
  const id = await first.files.put(Buffer.from('kept across a restart'), { name: 'note.txt' })
  await first.shutdown()
  const second = await startNode(t, { dataDir })
  assert.equal(second.id, first.id, 'the data dir keeps the identity too')
  assert.deepEqual(await second.files.get(id), Buffer.from('kept across a restart'))
  assert.equal((await second.files.stat(id)).name, 'note.txt')
  assert.equal(second.files.stats().files, 1)
})

test('files: stat fields and stats', { timeout: TIMEOUT }, async (t) => {
  const node = await startNode(t, { dataDir: tempDir() })
  const before = Date.now()
  const id = await node.files.put(Buffer.alloc(1234, 120), { name: 'report.pdf', contentType: 'application/pdf' })
  const info = await node.files.stat(id)
  assert.equal(info.id, id)
  assert.equal(info.size, 1234)
  assert.equal(info.name, 'report.pdf')
  assert.equal(info.contentType, 'application/pdf')
  assert.ok(info.createdMs >= before - 5000 && info.createdMs <= Date.now() + 5000, String(info.createdMs))
  assert.deepEqual(info.holders, [node.id])
  const bare = await node.files.stat(await node.files.put(Buffer.from('no name')))
  assert.equal(bare.name ?? null, null)
  assert.equal(bare.contentType ?? null, null)
  await rejectsWith(node.files.stat(UNKNOWN_ID), 'NotFound')
  await rejectsWith(node.files.stat('not-an-id'), 'InvalidInput')
  const stats = node.files.stats()
  assert.equal(stats.files, 2)
  assert.ok(stats.diskUsed > 1234 + 7, String(stats.diskUsed))
  assert.equal(stats.diskQuota ?? null, null)
})

test('files: list pages through every file in id order', { timeout: TIMEOUT }, async (t) => {
  const node = await startNode(t, { dataDir: tempDir() })
  const ids = new Set()
  for (let i = 0; i < 7; i++) ids.add(await node.files.put(Buffer.from(`file ${i}`), { name: `f${i}` }))
  const seen = []
  let cursor
  let pages = 0
  while (true) {
    const page = await node.files.list({ cursor, limit: 3 })
    assert.ok(page.files.length <= 3)
    seen.push(...page.files.map((f) => f.id))
    pages++
    if (page.next === null || page.next === undefined) break
    cursor = page.next
  }
  assert.equal(pages, 3)
  assert.deepEqual(seen, [...ids].sort())
  const all = await node.files.list()
  assert.deepEqual(all.files.map((f) => f.id), [...ids].sort())
  await rejectsWith(node.files.list({ limit: 0 }), 'InvalidInput')
})

test('files: delete, then NotFound', { timeout: TIMEOUT }, async (t) => {
  const node = await startNode(t, { dataDir: tempDir() })
  const id = await node.files.put(Buffer.from('short-lived'))
  await node.files.delete(id)
  await rejectsWith(node.files.get(id), 'NotFound')
  await rejectsWith(node.files.delete(id), 'NotFound')
  assert.deepEqual([node.files.stats().files, node.files.stats().diskUsed], [0, 0])
})

test('files: a node without a data dir is Unsupported, saying why', { timeout: TIMEOUT }, async (t) => {
  const node = await startNode(t)
  await rejectsWith(node.files.put(Buffer.from('nowhere')), 'Unsupported', /files need a data dir/)
  await rejectsWith(node.files.get(HELLO_ID), 'Unsupported', /dataDir/)
  assert.throws(() => node.files.stats(), (e) => e.code === 'Unsupported')
})

test('files: a wrong passphrase is Unauthorized', { timeout: TIMEOUT }, async (t) => {
  const dataDir = path.join(tempDir(), 'data')
  const node = await startNode(t, { dataDir, storagePassphrase: 'correct horse' })
  const id = await node.files.put(Buffer.from('secret'))
  await node.shutdown()
  await rejectsWith(startNode(t, { dataDir, storagePassphrase: 'battery staple' }), 'Unauthorized', /wrong storage passphrase/)
  await rejectsWith(startNode(t, { dataDir }), 'Unauthorized', /passphrase/)
  const again = await startNode(t, { dataDir, storagePassphrase: 'correct horse' })
  assert.deepEqual(await again.files.get(id), Buffer.from('secret'))
})

test('files: a put over the disk quota is QuotaExceeded and leaves nothing', { timeout: TIMEOUT }, async (t) => {
  const node = await startNode(t, { dataDir: tempDir(), diskQuota: 4096 })
  assert.equal(node.files.stats().diskQuota, 4096)
  await rejectsWith(node.files.put(Buffer.alloc(8192, 1)), 'QuotaExceeded', /disk quota/)
  assert.deepEqual([node.files.stats().files, node.files.stats().diskUsed], [0, 0])
  const small = await node.files.put(Buffer.from('fits'))
  assert.deepEqual(await node.files.get(small), Buffer.from('fits'))
  await rejectsWith(startNode(t, { diskQuota: 4096 }), 'InvalidInput', /disk_quota/)
})

test('files: more replicas than live members is PeerUnavailable', { timeout: TIMEOUT }, async (t) => {
  const node = await startNode(t, { dataDir: tempDir() })
  await rejectsWith(node.files.put(Buffer.from('thrice'), { replicas: 3 }), 'PeerUnavailable', /replicas 3 asked/)
  assert.equal(node.files.stats().files, 0)
})

test('files: replicas 2 puts a copy on a peer, and a delete reaches it', { timeout: TIMEOUT }, async (t) => {
  const dir = tempDir()
  const a = await startNode(t, { name: 'a', dataDir: path.join(dir, 'a') })
  const b = await startNode(t, { name: 'b', dataDir: path.join(dir, 'b') })
  assert.equal(await a.connect(b.addr), b.id)
  // A member with its advert received (a connected peer is listed alive before membership
  // admits it; holders are chosen among members).
  assert.ok(await eventually(() => a.peers().some((p) => p.id === b.id && p.state === 'alive' && p.quotaFree != null)))
  const sent = a.files.progress()
  const pulled = b.files.progress()
  const id = await a.files.put(Buffer.from('twice'), { name: 't.txt', replicas: 2 })
  assert.deepEqual((await a.files.stat(id)).holders.sort(), [a.id, b.id].sort())
  // Progress of the copy: a sent it to b, b received it from a, both to the end.
  for await (const p of sent) {
    assert.deepEqual([p.name, p.peer, p.direction, p.total], [id, b.id, 'send', 5])
    if (p.done === p.total) break
  }
  for await (const p of pulled) {
    assert.deepEqual([p.name, p.peer, p.direction, p.total], [id, a.id, 'receive', 5])
    if (p.done === p.total) break
  }
  assert.equal(b.files.stats().files, 1)
  assert.deepEqual(await b.files.get(id), Buffer.from('twice'))
  await a.files.delete(id)
  assert.ok(await eventually(() => b.files.stats().files === 0), 'the delete reached b')
  await rejectsWith(b.files.get(id), 'NotFound')
})
