'use strict'
// Documents on real nodes with temporary data dirs: every value type round trips,
// save/import/merge, interop with the official @automerge/automerge package both ways,
// three nodes editing one document concurrently converge, a private document stays on
// its node, and the errors (no data dir, bad path, wrong type).

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const Automerge = require('@automerge/automerge')
const { Docs, Doc, DocChanges, Text, Counter } = require('..')
const { tempDirs, startNode, eventually, rejectsWith, throwsWith, TIMEOUT } = require('../support/nodes')

/** A fresh temporary directory, removed once this file's tests are done. */
const tempDir = tempDirs('docs')

/** Starts `n` nodes, each with its own data dir, connected to the first, all alive. */
async function startDocsCluster (t, n) {
  const dir = tempDir()
  const nodes = []
  for (let i = 0; i < n; i++) nodes.push(await startNode(t, { name: `d${i}`, dataDir: path.join(dir, `n${i}`) }))
  for (const node of nodes.slice(1)) await node.connect(nodes[0].addr)
  const alive = () => nodes.every((node) => {
    const live = new Set(node.peers().filter((p) => p.state === 'alive' && p.quotaFree != null).map((p) => p.id))
    return nodes.every((other) => other === node || live.has(other.id))
  })
  assert.ok(await eventually(alive, 30000), 'every node sees every other alive')
  return nodes
}

/** The characters of each string-like element (string, Text, Automerge's ImmutableString). */
function strings (list) {
  return [...list].map((s) => String(s))
}

/** `[heads, json]` of `id` on `node`, or null if it does not hold it. */
async function state (node, id) {
  try {
    const doc = await node.docs.open(id)
    return JSON.stringify([doc.heads(), doc.toJson()])
  } catch (e) {
    if (e.code === 'NotFound') return null
    throw e
  }
}

/** Waits until every node holds `id` with the same heads and JSON. */
async function converged (nodes, id) {
  const same = async () => {
    const states = await Promise.all(nodes.map((n) => state(n, id)))
    return states[0] !== null && states.every((s) => s === states[0])
  }
  assert.ok(await eventually(same, 30000), 'the document converged on every node')
}

test('docs: every value type round trips', { timeout: TIMEOUT }, async (t) => {
  const node = await startNode(t, { dataDir: tempDir() })
  const docs = node.docs
  assert.ok(docs instanceof Docs)
  assert.equal(node.docs, docs, 'node.docs is one object')
  const id = await docs.create()
  assert.match(id, /^[0-9a-f]{32}$/)
  const doc = await docs.open(id)
  assert.ok(doc instanceof Doc)
  assert.equal(doc.id, id)
  assert.equal(doc.reach, 'cluster')
  await doc.put('nothing', null)
  await doc.put('yes', true)
  await doc.put('n', 42)
  await doc.put('big', -(2n ** 63n))
  await doc.put('pi', 3.5)
  await doc.put('title', 'groceries')
  await doc.put('raw', new Uint8Array([0, 255]))
  await doc.put('tags', ['a', 1, null])
  await doc.put('meta', { nested: { deep: [1.5, false] } })
  await doc.put('notes', new Text('helo'))
  await doc.spliceText('notes', 3, 0, 'l')
  await doc.spliceText(['notes'], 0, 1, 'H')
  await doc.put('visits', new Counter(10))
  await doc.increment('visits', 5)
  await doc.increment('visits')
  await doc.insert('tags', 0, 'first')
  await doc.insert(['tags'], 4, { k: 'v' })
  await doc.put(['tags', 1], 'second')
  await doc.put('meta/nested/deep/0', 2.5)
  assert.equal(doc.get('nothing'), null)
  assert.equal(doc.get('yes'), true)
  assert.equal(doc.get('n'), 42)
  assert.equal(doc.get('big'), -(2n ** 63n))
  assert.equal(doc.get('pi'), 3.5)
  assert.equal(doc.get('title'), 'groceries')
  assert.deepEqual(doc.get('raw'), Buffer.from([0, 255]))
  assert.deepEqual(doc.get('tags'), ['first', 'second', 1, null, { k: 'v' }])
  assert.equal(doc.get(['tags', 4, 'k']), 'v')
  assert.deepEqual(doc.get('meta/nested/deep'), [2.5, false])
  const notes = doc.get('notes')
  assert.ok(notes instanceof Text)
  assert.equal(String(notes), 'Hello')
  assert.equal(notes.length, 5)
  const visits = doc.get('visits')
  assert.ok(visits instanceof Counter)
  assert.equal(visits.value, 16)
  assert.equal(doc.get('absent'), null)
  assert.equal(doc.get('tags/99'), null)
  await doc.delete('tags/3')
  await doc.delete(['nothing'])
  const value = doc.value()
  assert.deepEqual(value, doc.get())
  assert.ok(!('nothing' in value))
  assert.deepEqual(value.tags, ['first', 'second', 1, { k: 'v' }])
  const json = JSON.parse(doc.toJson())
  assert.equal(json.notes, 'Hello')
  assert.equal(json.visits, 16)
  assert.equal(json.raw, 'AP8=')
  const heads = doc.heads()
  assert.ok(heads.length >= 1 && heads.every((h) => /^[0-9a-f]{64}$/.test(h)))
  assert.deepEqual(await docs.list(), [{ id, reach: 'cluster', heads }])
})

test('docs: save, import, merge and a restart', { timeout: TIMEOUT }, async (t) => {
  const dataDir = tempDir()
  const node = await startNode(t, { dataDir })
  const first = await node.docs.open(await node.docs.create('private'))
  await first.put('by', 'first')
  const saved = first.save()
  assert.ok(Buffer.isBuffer(saved))
  const copyId = await node.docs.import(saved, 'community')
  const copy = await node.docs.open(copyId)
  assert.equal(copy.reach, 'community')
  assert.equal(copy.get('by'), 'first')
  await copy.put('also', new Text('from the copy'))
  await first.put('other', 7)
  await first.merge(copy.save())
  assert.equal(String(first.get('also')), 'from the copy')
  assert.equal(first.get('other'), 7)
  const heads = first.heads()
  await rejectsWith(first.merge(Buffer.from('not automerge')), 'InvalidInput')
  await rejectsWith(node.docs.import(Buffer.from('not automerge')), 'InvalidInput')
  assert.deepEqual(first.heads(), heads)
  const json = first.toJson()
  await node.shutdown()
  const again = await startNode(t, { dataDir })
  assert.equal((await again.docs.open(first.id)).toJson(), json)
  assert.equal((await again.docs.list()).length, 2)
  await again.docs.delete(copyId)
  await rejectsWith(again.docs.open(copyId), 'NotFound')
  await rejectsWith(again.docs.delete(copyId), 'NotFound')
})

test('docs: errors have their codes', { timeout: TIMEOUT }, async (t) => {
  const node = await startNode(t, { dataDir: tempDir() })
  const doc = await node.docs.open(await node.docs.create())
  await doc.put('title', 'x')
  await doc.put('items', [1])
  const heads = doc.heads()
  for (const bad of ['a//b', 'a/', 'x/~2']) {
    await rejectsWith(doc.put(bad, 1), 'InvalidInput', /bad path/)
    throwsWith(() => doc.get(bad), 'InvalidInput', /bad path/)
  }
  await rejectsWith(doc.put(['items', -1], 1), 'InvalidInput', /bad path/)
  throwsWith(() => doc.get(['items', 1.5]), 'InvalidInput', /bad path/)
  throwsWith(() => doc.get(7), 'InvalidInput', /bad path/)
  await rejectsWith(doc.increment('title', 1), 'InvalidInput', /wrong type/)
  await rejectsWith(doc.insert('title', 0, 1), 'InvalidInput', /wrong type/)
  await rejectsWith(doc.spliceText('items', 0, 0, 'x'), 'InvalidInput', /wrong type/)
  await rejectsWith(doc.put('items/5', 1), 'InvalidInput', /out of range/)
  await rejectsWith(doc.put('d', new Date()), 'InvalidInput', /cannot go into a document/)
  await rejectsWith(doc.put('u', undefined), 'InvalidInput', /cannot go into a document/)
  await rejectsWith(doc.put('huge', 2n ** 64n), 'InvalidInput', /64-bit/)
  await rejectsWith(doc.put('no/such', 1), 'NotFound')
  await rejectsWith(doc.delete('absent'), 'NotFound')
  await rejectsWith(node.docs.open('not-an-id'), 'InvalidInput')
  await rejectsWith(node.docs.open('00'.repeat(16)), 'NotFound')
  await rejectsWith(node.docs.create('everyone'), 'InvalidInput', /unknown reach/)
  assert.deepEqual(doc.heads(), heads, 'failed edits changed nothing')
})

test('docs: a document over docsMaxBytes is refused', { timeout: TIMEOUT }, async (t) => {
  const node = await startNode(t, { docsMaxBytes: 4096 })
  const doc = await node.docs.open(await node.docs.create())
  await doc.put('small', Buffer.alloc(100, 1))
  const heads = doc.heads()
  const big = Buffer.alloc(8192)
  for (let i = 0; i < big.length; i++) big[i] = (i * 7919) % 251
  await rejectsWith(doc.put('big', big), 'QuotaExceeded', /docs_max_bytes/)
  assert.deepEqual(doc.heads(), heads)
})

// Issue 15: without a data dir documents live in memory (this replaced a test expecting
// Unsupported).
test('docs: a node without a data dir keeps documents in memory', { timeout: TIMEOUT }, async (t) => {
  const node = await startNode(t)
  const empty = await node.docs.stats()
  assert.deepEqual([empty.documents, empty.bytes, empty.persistent], [0, 0, false])
  const id = await node.docs.create()
  await (await node.docs.open(id)).put('k', 'in memory')
  const stats = await node.docs.stats()
  assert.equal(stats.documents, 1)
  assert.equal(stats.persistent, false)
  assert.ok(stats.bytes > 0)
  assert.equal(typeof stats.syncing, 'number')
  assert.deepEqual((await node.docs.list()).map((d) => d.id), [id])
})

test('docs: three nodes converge and a private document stays', { timeout: TIMEOUT }, async (t) => {
  const nodes = await startDocsCluster(t, 3)
  const secretId = await nodes[0].docs.create('private')
  await (await nodes[0].docs.open(secretId)).put('secret', 'stays here')
  const id = await nodes[0].docs.create('cluster')
  const start = await nodes[0].docs.open(id)
  await start.put('', { log: [], hits: new Counter(0), text: new Text('') })
  await converged(nodes, id)
  await Promise.all(nodes.map(async (node, i) => {
    const doc = await node.docs.open(id)
    for (let j = 0; j < 10; j++) {
      await doc.insert('log', 0, `${i}.${j}`)
      await doc.increment('hits', 1)
      await doc.put(`by${i}`, j)
    }
    await doc.spliceText('text', 0, 0, `[${i}]`)
  }))
  await converged(nodes, id)
  const value = (await nodes[2].docs.open(id)).value()
  assert.equal(value.hits.value, 30)
  assert.equal(value.log.length, 30)
  assert.deepEqual([value.by0, value.by1, value.by2], [9, 9, 9])
  assert.deepEqual([...String(value.text)].sort(), [...'[0][1][2]'].sort())
  for (const peer of nodes.slice(1)) {
    assert.ok(!(await peer.docs.list()).some((d) => d.id === secretId), 'the private document stayed home')
    await rejectsWith(peer.docs.open(secretId), 'NotFound')
  }
})

test('docs: interop with @automerge/automerge, both ways', { timeout: TIMEOUT }, async (t) => {
  const [a, b] = await startDocsCluster(t, 2)
  // memmesh -> Automerge -> memmesh.
  const id = await a.docs.create()
  const doc = await a.docs.open(id)
  await doc.put('', { title: 'from memmesh', items: ['one'], hits: new Counter(1), notes: new Text('hi') })
  let theirs = Automerge.load(doc.save())
  // Automerge 3 reads a scalar string as an ImmutableString and text as a string; it
  // writes strings as text (memmesh's Text): compare their characters.
  assert.equal(String(theirs.title), 'from memmesh')
  assert.deepEqual(strings(theirs.items), ['one'])
  assert.equal(theirs.hits.value, 1)
  assert.equal(theirs.notes, 'hi')
  theirs = Automerge.change(theirs, (d) => {
    d.items.push('two')
    d.hits.increment(2)
    d.edited = 'by automerge'
  })
  await doc.merge(Automerge.save(theirs))
  assert.deepEqual(strings(doc.get('items')), ['one', 'two'])
  assert.ok(doc.get('items')[1] instanceof Text, 'an Automerge 3 string is text')
  assert.equal(doc.get('hits').value, 3)
  assert.equal(String(doc.get('edited')), 'by automerge')
  assert.deepEqual(doc.heads(), [...Automerge.getHeads(theirs)].sort())
  // Automerge -> memmesh, synced to a second node, edited on both, back to Automerge.
  const made = Automerge.from({ list: ['x'], n: new Automerge.Counter(5) })
  const importedId = await a.docs.import(Automerge.save(made))
  await converged([a, b], importedId)
  const onA = await a.docs.open(importedId)
  const onB = await b.docs.open(importedId)
  await onA.insert('list', 1, 'from a')
  await onB.put('fromB', true)
  await onB.increment('n', 10)
  await converged([a, b], importedId)
  const back = Automerge.load(onB.save())
  assert.deepEqual(strings(back.list), ['x', 'from a'])
  assert.equal(back.fromB, true)
  assert.equal(back.n.value, 15)
  // Automerge sees the memmesh history as a descendant of its own document.
  const merged = Automerge.merge(Automerge.clone(made), back)
  assert.deepEqual([...Automerge.getHeads(merged)].sort(), onB.heads())
})

test('docs: trust options are taken and validated; a trusted outsider gets community documents only', { timeout: TIMEOUT }, async (t) => {
  await rejectsWith(startNode(null, { trustedPeers: ['not-a-node-id'] }), 'InvalidInput', /trustedPeers/)
  await rejectsWith(startNode(null, { devices: ['nope'] }), 'InvalidInput', /devices/)
  await rejectsWith(startNode(null, { serveCommons: 'yes' }), 'InvalidInput', /serveCommons/)
  // The outsider's identity first (a data dir keeps it), then both sides list each other.
  const dir = tempDir()
  const first = await startNode(null, { dataDir: path.join(dir, 'out') })
  const outId = first.id
  await first.shutdown()
  const a = await startNode(t, { clusterSecret: 'trust-js-a-0123456789abcdef', trustedPeers: [outId] })
  const out = await startNode(t, {
    dataDir: path.join(dir, 'out'),
    clusterSecret: 'trust-js-b-0123456789abcdef',
    trustedPeers: [a.id],
    serveCommons: false,
    devices: []
  })
  assert.equal(out.id, outId)
  const cluster = await a.docs.create('cluster')
  const community = await a.docs.create('community')
  await (await a.docs.open(community)).put('hello', 'outsider')
  await out.connect(a.addr)
  const ids = async () => (await out.docs.list()).map((d) => d.id)
  assert.ok(await eventually(async () => (await ids()).includes(community), 30000), 'the community document arrives')
  assert.ok(!(await ids()).includes(cluster), 'the cluster document never does')
  assert.ok(a.peers().every((p) => p.id !== out.id), 'the outsider is not a member')
})

test('docs: change subscriptions see local and peer changes and end at shutdown', { timeout: TIMEOUT }, async (t) => {
  const [a, b] = await startDocsCluster(t, 2)
  const everyOnA = a.docs.changes()
  const everyOnB = b.docs.changes()
  assert.ok(everyOnA instanceof DocChanges)
  const other = await a.docs.open(await a.docs.create())
  const doc = await a.docs.open(await a.docs.create())
  const only = doc.changes()
  await other.put('o', 1)
  await doc.put('k', 1)
  // Local: the other document's put, then this one's; the document's own subscription
  // skips the other.
  const first = await everyOnA.next()
  const second = await everyOnA.next()
  assert.deepEqual([first.type, first.id, first.origin], ['Change', other.id, 'local'])
  assert.deepEqual([second.type, second.id, second.origin], ['Change', doc.id, 'local'])
  assert.deepEqual(second.heads, doc.heads())
  // Which paths each change touched.
  assert.deepEqual([first.paths, second.paths, second.pathsTruncated], [['o'], ['k'], false])
  const mine = await only.next()
  assert.deepEqual([mine.type, mine.id, mine.origin, mine.heads], ['Change', doc.id, 'local', doc.heads()])
  // On b: brought by a's sync, until b holds a's heads.
  for await (const change of everyOnB) {
    assert.equal(change.type, 'Change')
    assert.equal(change.origin, a.id)
    assert.deepEqual(change.paths, change.id === doc.id ? ['k'] : ['o'])
    if (change.id === doc.id && JSON.stringify(change.heads) === JSON.stringify(doc.heads())) break
  }
  // Iteration ends when the node shuts down.
  await b.shutdown()
  for await (const change of everyOnB) assert.ok(change)
  await rejectsWith(everyOnB.next(), 'Closed')
})

test('docs: sync status and changing reach', { timeout: TIMEOUT }, async (t) => {
  const [a, b] = await startDocsCluster(t, 2)
  const doc = await a.docs.open(await a.docs.create())
  await doc.put('k', 'v')
  const mine = async () => (await a.docs.syncStatus()).find((s) => s.id === doc.id)
  const inSync = async () => {
    const s = await mine()
    return Boolean(s && s.peers.some((p) => p.peer === b.id && p.inSync))
  }
  assert.ok(await eventually(inSync, 30000), 'a sees the document in sync with b')
  const status = await mine()
  assert.deepEqual([status.reach, status.heads], ['cluster', doc.heads()])
  const peer = status.peers.find((p) => p.peer === b.id)
  assert.equal(typeof peer.inFlight, 'boolean')
  assert.equal(peer.behind, 0)
  assert.equal(typeof peer.lastSynced, 'number')
  const bOnA = async () => (await mine()).peers.find((p) => p.peer === b.id)
  // Narrowed to private, then widened back: the edit made meanwhile arrives (b is behind
  // by it until then).
  await doc.setReach('private')
  assert.equal(doc.reach, 'private')
  await doc.put('later', 1)
  const behind = await bOnA()
  assert.deepEqual([behind.inSync, behind.behind], [false, 1])
  assert.ok(behind.lastSynced >= peer.lastSynced)
  await a.docs.setReach(doc.id, 'cluster')
  assert.equal(doc.reach, 'cluster')
  await converged([a, b], doc.id)
  assert.ok(await eventually(async () => {
    const p = await bOnA()
    return p.inSync && p.behind === 0 && p.lastSynced >= peer.lastSynced
  }, 30000), 'b in sync again')
  await rejectsWith(doc.setReach('everyone'), 'InvalidInput')
  await rejectsWith(a.docs.setReach('0'.repeat(32), 'cluster'), 'NotFound')
})
