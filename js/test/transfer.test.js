'use strict'
// Verified transfer between real nodes on 127.0.0.1: bytes and files to peers, offers
// answered by a handler or an inbox directory, publish and fetch, progress, deliveries,
// cancellation. No assertion on timings.

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { Transfer, TransferEvents, MemmeshError } = require('..')
const { tempDirs, startNode, startNodes, rejectsWith, throwsWith, TIMEOUT } = require('../support/nodes')

/** A fresh temporary directory, removed once this file's tests are done. */
const scratch = tempDirs('js-transfer')

/** `len` bytes of a pattern that differs from chunk to chunk. */
function pattern (len, seed = 0) {
  const out = Buffer.allocUnsafe(len)
  for (let i = 0; i < len; i++) out[i] = (i * 31 + seed) % 251
  return out
}

/** Files under `dir` left by an unfinished transfer (`*.memmesh-partial`, `*.memmesh-chunks`). */
function leftovers (dir) {
  return fs.readdirSync(dir).filter((name) => name.includes('.memmesh-'))
}

/** Two connected nodes; `receiverOptions` for the second (the receiver). */
async function pair (t, receiverOptions = {}) {
  const a = await startNode(t, { name: 'sender' })
  const b = await startNode(t, { name: 'receiver', ...receiverOptions })
  assert.equal(await a.connect(b.addr), b.id)
  return [a, b]
}

test('bytes go to two peers in parallel, with one result per peer and equal hashes', { timeout: TIMEOUT }, async (t) => {
  const [a, p0, p1] = await startNodes(t, 3, 'bytes')
  for (const p of [p0, p1]) {
    p.transfer.onOffer(() => ({ memory: true }))
    await a.connect(p.addr)
  }
  const delivered = p1.transfer.received()
  assert.ok(delivered instanceof TransferEvents)
  assert.ok(a.transfer instanceof Transfer)
  assert.equal(a.transfer, a.transfer, 'node.transfer is one object')
  const data = pattern(3 * 1024 * 1024 + 17)
  const results = await a.transfer.send(data, [p0.id, p1.id])
  assert.equal(results.length, 2)
  results.forEach((r, i) => {
    assert.equal(r.error, null, r.error && r.error.message)
    assert.equal(r.peer, [p0.id, p1.id][i], 'results come in the order of `to`')
    assert.equal(r.bytes, data.length)
    assert.equal(r.sent, data.length)
    assert.match(r.hash, /^blake3:[0-9a-f]{64}$/)
    assert.ok(Number.isInteger(r.attempts) && r.attempts >= 1)
    assert.equal(typeof r.durationMs, 'number')
    assert.ok(r.durationMs >= 0)
  })
  assert.equal(results[0].hash, results[1].hash)
  // The receiver saw the same content, and its hash is the id a block of it would have.
  const got = await delivered.next()
  assert.equal(got.hash, results[1].hash)
  assert.ok(Buffer.isBuffer(got.data))
  assert.ok(got.data.equals(data))
  assert.equal(got.path, null)
  assert.equal(got.offer.from, a.id)
  assert.equal(got.offer.name, `data-${got.hash.slice(7, 19)}`)
  assert.equal(got.offer.size, data.length)
  assert.match(got.offer.id, /^[0-9a-f]{64}$/)
  assert.equal(got.hash, await p1.blocks.put(data))
  // A Uint8Array and a single peer id are accepted too.
  const [one] = await a.transfer.send(new Uint8Array([1, 2, 3]), p0.id)
  assert.equal(one.error, null)
  assert.equal(one.bytes, 3)
})

test('a file lands whole in the inbox directory, an empty file too, with nothing partial left', { timeout: TIMEOUT }, async (t) => {
  const dir = scratch()
  const inbox = path.join(dir, 'inbox')
  const [a, b] = await pair(t, { inboxDir: inbox })
  const delivered = b.transfer.received()
  const big = path.join(dir, 'big.bin')
  const data = pattern(5 * 1024 * 1024 + 3, 7)
  fs.writeFileSync(big, data)
  const empty = path.join(dir, 'empty.bin')
  fs.writeFileSync(empty, '')
  for (const [file, content] of [[big, data], [empty, Buffer.alloc(0)]]) {
    const [r] = await a.transfer.send(file, [b.id])
    assert.equal(r.error, null, r.error && r.error.message)
    assert.equal(r.bytes, content.length)
    const landed = path.join(inbox, path.basename(file))
    assert.ok(fs.readFileSync(landed).equals(content), `${landed} has the content sent`)
    const got = await delivered.next()
    assert.equal(got.path, landed)
    assert.equal(got.data, null)
    assert.equal(got.offer.name, path.basename(file))
    assert.equal(got.hash, r.hash)
  }
  assert.deepEqual(leftovers(inbox), [])
})

test('an offer handler chooses memory, a path or a refusal, sync or async', { timeout: TIMEOUT }, async (t) => {
  const dir = scratch()
  const [a, b] = await pair(t)
  const offers = []
  b.transfer.onOffer(async (offer) => {
    offers.push(offer)
    await new Promise((resolve) => setTimeout(resolve, 5))
    if (offer.name === 'keep.bin') return { path: path.join(dir, 'kept.bin') }
    if (offer.name.startsWith('data-')) return { memory: true }
    return { reject: `no thanks for ${offer.name}` }
  })
  const delivered = b.transfer.received()
  const keep = path.join(dir, 'keep.bin')
  const content = pattern(1024 * 1024 + 5, 3)
  fs.writeFileSync(keep, content)
  const [toFile] = await a.transfer.send(keep, [b.id])
  assert.equal(toFile.error, null, toFile.error && toFile.error.message)
  assert.ok(fs.readFileSync(path.join(dir, 'kept.bin')).equals(content))
  assert.deepEqual(leftovers(dir), [])
  assert.equal((await delivered.next()).path, path.join(dir, 'kept.bin'))

  const [toMemory] = await a.transfer.send(Buffer.from('in memory'), [b.id])
  assert.equal(toMemory.error, null)
  assert.equal((await delivered.next()).data.toString(), 'in memory')

  const other = path.join(dir, 'other.bin')
  fs.writeFileSync(other, 'refused')
  const [refused] = await a.transfer.send(other, [b.id])
  assert.ok(refused.error instanceof MemmeshError)
  assert.equal(refused.error.code, 'Unauthorized')
  assert.match(refused.error.message, /no thanks for other\.bin/)
  assert.equal(refused.hash, null)
  assert.equal(refused.bytes, 0)
  assert.deepEqual(offers.map((o) => [o.from, o.name, o.size]), [
    [a.id, 'keep.bin', content.length], [a.id, `data-${toMemory.hash.slice(7, 19)}`, 9], [a.id, 'other.bin', 7]
  ])

  // A sync handler works the same way.
  b.transfer.onOffer(() => ({ reject: 'sync refusal' }))
  const [syncRefused] = await a.transfer.send(Buffer.from('x'), [b.id])
  assert.equal(syncRefused.error.code, 'Unauthorized')
  assert.match(syncRefused.error.message, /sync refusal/)

  // Removing the handler leaves no inbox: offers are refused.
  b.transfer.onOffer(null)
  const [none] = await a.transfer.send(Buffer.from('x'), [b.id])
  assert.equal(none.error.code, 'Unauthorized')
})

test('an offer handler that throws, rejects or answers nonsense refuses the offer with that reason', { timeout: TIMEOUT }, async (t) => {
  const [a, b] = await pair(t)
  const cases = [
    [() => { throw new Error('handler exploded') }, /handler exploded/],
    [async () => { throw new Error('async handler exploded') }, /async handler exploded/],
    [() => undefined, /returned undefined/],
    [() => ({}), /none or several answers/],
    [() => ({ memory: true, reject: 'both' }), /none or several answers/],
    [() => ({ path: 42 }), /bad answer/]
  ]
  for (const [handler, reason] of cases) {
    b.transfer.onOffer(handler)
    const [r] = await a.transfer.send(Buffer.from('payload'), [b.id])
    assert.ok(r.error, `${handler} refused the offer`)
    assert.equal(r.error.code, 'Unauthorized', r.error.message)
    assert.match(r.error.message, reason)
  }
  throwsWith(() => b.transfer.onOffer('not a function'), 'InvalidInput', /onOffer takes a function/)
})

test('a file path that does not exist is a per-peer NotFound error, not a throw', { timeout: TIMEOUT }, async (t) => {
  const dir = scratch()
  const [a, b] = await pair(t)
  b.transfer.onOffer(() => ({ memory: true }))
  const results = await a.transfer.send(path.join(dir, 'missing.bin'), [b.id])
  assert.equal(results.length, 1)
  assert.ok(results[0].error instanceof MemmeshError)
  assert.equal(results[0].error.code, 'NotFound', results[0].error.message)
  assert.match(results[0].error.message, /missing\.bin/)
})

test('publish then fetch into a file and into memory; unpublish; unknown ids are NotFound', { timeout: TIMEOUT }, async (t) => {
  const dir = scratch()
  const [a, b] = await pair(t)
  const src = path.join(dir, 'shared.bin')
  const data = pattern(2 * 1024 * 1024 + 11, 5)
  fs.writeFileSync(src, data)
  const id = await b.transfer.publish(src)
  assert.match(id, /^blake3:[0-9a-f]{64}$/)

  const into = path.join(dir, 'fetched.bin')
  const toFile = await a.transfer.fetch(id, b.id, { into })
  assert.equal(toFile.hash, id)
  assert.equal(toFile.path, into)
  assert.equal(toFile.data, null)
  assert.equal(toFile.offer.from, b.id)
  assert.equal(toFile.offer.name, 'shared.bin')
  assert.equal(toFile.offer.size, data.length)
  assert.ok(fs.readFileSync(into).equals(data))
  assert.deepEqual(leftovers(dir), [])

  const toMemory = await a.transfer.fetch(id, b.id)
  assert.equal(toMemory.hash, id)
  assert.equal(toMemory.path, null)
  assert.ok(toMemory.data.equals(data))

  // Bytes publish under their content hash, the id a block of them has.
  const bytesId = await b.transfer.publish(Buffer.from('published bytes'))
  assert.equal(bytesId, await a.blocks.put(Buffer.from('published bytes')))
  assert.equal((await a.transfer.fetch(bytesId, b.id)).data.toString(), 'published bytes')

  // A block the peer holds is fetchable by its id without publishing.
  const blockId = await b.blocks.put(Buffer.from('a block in b'))
  assert.equal((await a.transfer.fetch(blockId, b.id)).data.toString(), 'a block in b')

  assert.equal(b.transfer.unpublish(id), true)
  assert.equal(b.transfer.unpublish(id), false)
  await rejectsWith(a.transfer.fetch(id, b.id), 'NotFound')
  await rejectsWith(a.transfer.fetch(`blake3:${'0'.repeat(64)}`, b.id, { into: path.join(dir, 'never.bin') }), 'NotFound')
  assert.equal(fs.existsSync(path.join(dir, 'never.bin')), false)
})

/**
 * The events of `direction` read from `events` up to the first one with everything done
 * (the end of one transfer); events of the other direction are skipped.
 */
async function untilDone (events, direction) {
  const seen = []
  while (true) {
    const p = await events.next()
    assert.ok(p.direction === 'send' || p.direction === 'receive', p.direction)
    assert.ok(p.done <= p.total, `${p.done} <= ${p.total}`)
    if (p.direction !== direction) continue
    seen.push(p)
    if (p.done === p.total) return seen
  }
}

test('progress events of a send end at the total', { timeout: TIMEOUT }, async (t) => {
  const [a, b] = await pair(t)
  b.transfer.onOffer(() => ({ memory: true }))
  const progress = a.transfer.progress()
  const data = pattern(4 * 1024 * 1024 + 1, 9)
  const [r] = await a.transfer.send(data, [b.id])
  assert.equal(r.error, null)
  const seen = []
  for await (const p of progress) {
    assert.equal(p.direction, 'send')
    assert.equal(p.peer, b.id)
    assert.equal(p.name, `data-${r.hash.slice(7, 19)}`)
    assert.equal(p.total, data.length)
    assert.ok(p.done <= p.total, `${p.done} <= ${p.total}`)
    assert.equal(typeof p.rate, 'number')
    seen.push(p.done)
    if (p.done === p.total) break
  }
  assert.equal(seen[seen.length - 1], data.length)
  for (let i = 1; i < seen.length; i++) assert.ok(seen[i] >= seen[i - 1], 'done never goes back')
})

test('progress on both sides of a send: the receiver sees receive events naming the sender', { timeout: TIMEOUT }, async (t) => {
  const [a, b] = await pair(t)
  b.transfer.onOffer(() => ({ memory: true }))
  // Subscribed on both nodes before the send: each sees its own side of it.
  const sending = a.transfer.progress()
  const receiving = b.transfer.progress()
  const data = pattern(3 * 1024 * 1024 + 12345, 5)
  const [r] = await a.transfer.send(data, [b.id])
  assert.equal(r.error, null)
  const name = `data-${r.hash.slice(7, 19)}`
  const got = await untilDone(receiving, 'receive')
  for (const p of got) {
    assert.deepEqual([p.direction, p.peer, p.name, p.total], ['receive', a.id, name, data.length])
    assert.equal(typeof p.rate, 'number')
    assert.ok(p.rate >= 0)
  }
  assert.equal(got[got.length - 1].done, data.length)
  for (let i = 1; i < got.length; i++) assert.ok(got[i].done >= got[i - 1].done, 'done never goes back')
  const sent = await untilDone(sending, 'send')
  for (const p of sent) {
    assert.deepEqual([p.direction, p.peer, p.name, p.total], ['send', b.id, name, data.length])
  }
  assert.equal(sent[sent.length - 1].done, data.length)
})

test('progress of a fetch: the fetching node receives, the publisher sends', { timeout: TIMEOUT }, async (t) => {
  const [a, b] = await pair(t)
  const dir = scratch()
  const src = path.join(dir, 'shared.bin')
  const data = pattern(3 * 1024 * 1024 + 12345, 6)
  fs.writeFileSync(src, data)
  const id = await b.transfer.publish(src)
  const serving = b.transfer.progress()
  const fetching = a.transfer.progress()
  const got = await a.transfer.fetch(id, b.id, { into: path.join(dir, 'copy.bin') })
  assert.equal(got.hash, id)
  const received = await untilDone(fetching, 'receive')
  for (const p of received) {
    assert.deepEqual([p.direction, p.peer, p.name, p.total], ['receive', b.id, 'shared.bin', data.length])
  }
  assert.equal(received[received.length - 1].done, data.length)
  // The publisher's last event may come just after the fetch resolved: next() waits.
  const served = await untilDone(serving, 'send')
  for (const p of served) {
    assert.deepEqual([p.direction, p.peer, p.name, p.total], ['send', a.id, 'shared.bin', data.length])
  }
  assert.equal(served[served.length - 1].done, data.length)
})

test('cancel: unknown or not yet accepted offers give false; the receiver stops a running transfer', { timeout: TIMEOUT }, async (t) => {
  const [a, b] = await pair(t)
  assert.equal(b.transfer.cancel('0'.repeat(64)), false)
  assert.equal(b.transfer.cancel(`blake3:${'1'.repeat(64)}`), false)
  throwsWith(() => b.transfer.cancel('not an id'), 'InvalidInput')
  throwsWith(() => b.transfer.cancel(7), 'InvalidInput', /offerId must be a string/)
  // An offer being decided is not running yet (a handler refuses with { reject }).
  let offerId
  let whileDeciding
  b.transfer.onOffer((offer) => {
    offerId = offer.id
    whileDeciding = b.transfer.cancel(offer.id)
    return { memory: true }
  })
  const data = pattern(32 * 1024 * 1024, 1)
  const sending = a.transfer.send(data, [b.id])
  let settled = false
  sending.finally(() => { settled = true })
  // Cancel as soon as the transfer streams (how far it got is not asserted: it may even
  // finish first on a fast machine, and then there is nothing left to cancel).
  let cancelled = false
  while (!settled && !cancelled) {
    if (offerId !== undefined) cancelled = b.transfer.cancel(offerId)
    await new Promise((resolve) => setImmediate(resolve))
  }
  const [r] = await sending
  if (process.env.MEMMESH_TEST_DEBUG) console.log('cancelled while streaming:', cancelled)
  assert.equal(whileDeciding, false)
  if (cancelled) {
    assert.ok(r.error instanceof MemmeshError, 'a cancelled transfer fails')
    assert.equal(r.error.code, 'Closed', r.error.message)
    assert.match(r.error.message, /cancel/)
  } else {
    assert.equal(r.error, null)
  }
  assert.equal(b.transfer.cancel(offerId), false, 'nothing left to cancel')
})

test('an AbortSignal cancels a send and a fetch', { timeout: TIMEOUT }, async (t) => {
  const [a, b] = await pair(t)
  // Already aborted: nothing starts.
  await rejectsWith(a.transfer.send(Buffer.from('x'), [b.id], { signal: AbortSignal.abort() }), 'Closed', /cancelled/)
  await rejectsWith(a.transfer.fetch(`blake3:${'0'.repeat(64)}`, b.id, { signal: AbortSignal.abort() }), 'Closed', /cancelled/)
  // Aborted while the receiver is still deciding.
  let offered
  const asked = new Promise((resolve) => { offered = resolve })
  let release
  b.transfer.onOffer(() => {
    offered()
    return new Promise((resolve) => { release = resolve })
  })
  const controller = new AbortController()
  const sending = a.transfer.send(Buffer.from('waiting'), [b.id], { signal: controller.signal })
  await asked
  controller.abort()
  await rejectsWith(sending, 'Closed', /cancelled/)
  release({ memory: true })
  // A signal that is not aborted changes nothing.
  b.transfer.onOffer(() => ({ memory: true }))
  const [ok] = await a.transfer.send(Buffer.from('fine'), [b.id], { signal: new AbortController().signal })
  assert.equal(ok.error, null)
  await rejectsWith(a.transfer.send(Buffer.from('x'), [b.id], { signal: 'nope' }), 'InvalidInput', /AbortSignal/)
})

test('bad arguments are InvalidInput', { timeout: TIMEOUT }, async (t) => {
  const [a, b] = await pair(t)
  await rejectsWith(a.transfer.send(42, [b.id]), 'InvalidInput', /source must be/)
  await rejectsWith(a.transfer.send(Buffer.from('x'), [42]), 'InvalidInput', /to must be/)
  await rejectsWith(a.transfer.send(Buffer.from('x'), ['not-a-node-id']), 'InvalidInput')
  await rejectsWith(a.transfer.publish({}), 'InvalidInput', /source must be/)
  await rejectsWith(a.transfer.fetch('blake3:xyz', b.id), 'InvalidInput', /content id/)
  await rejectsWith(a.transfer.fetch(`blake3:${'0'.repeat(64)}`, 'nobody'), 'InvalidInput')
  await rejectsWith(a.transfer.fetch(`blake3:${'0'.repeat(64)}`, b.id, { into: 5 }), 'InvalidInput', /into must be a string/)
  throwsWith(() => a.transfer.unpublish('nope'), 'InvalidInput')
  assert.equal(a.transfer.unpublish(`blake3:${'0'.repeat(64)}`), false)
})

test('transfer events end at shutdown, and the transfer API of a closed node is Closed', { timeout: TIMEOUT }, async () => {
  const a = await startNode(null)
  const b = await startNode(null)
  await a.connect(b.addr)
  const transfer = a.transfer
  const received = transfer.received()
  const progress = transfer.progress()
  const drain = async (events) => { for await (const e of events) assert.ok(e); return 'ended' }
  const loops = [drain(received), drain(progress)]
  await a.shutdown()
  assert.deepEqual(await Promise.all(loops), ['ended', 'ended'])
  await rejectsWith(received.next(), 'Closed')
  await rejectsWith(transfer.send(Buffer.from('x'), [b.id]), 'Closed')
  await rejectsWith(transfer.publish(Buffer.from('x')), 'Closed')
  await rejectsWith(transfer.fetch(`blake3:${'0'.repeat(64)}`, b.id), 'Closed')
  throwsWith(() => transfer.onOffer(() => ({ memory: true })), 'Closed')
  const fresh = await startNode(null)
  await fresh.shutdown()
  throwsWith(() => fresh.transfer, 'Closed')
  await b.shutdown()
})
