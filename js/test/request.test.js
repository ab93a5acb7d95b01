'use strict'
// Request/response between real nodes on 127.0.0.1: sync and async JS handlers,
// handler failures, missing handlers, timeouts, size limits.

const test = require('node:test')
const assert = require('node:assert/strict')
const { startNodes, rejectsWith, TIMEOUT } = require('../support/nodes')

async function pair (t, extra) {
  const [a, b] = await startNodes(t, 2, 'r', extra)
  assert.equal(await a.connect(b.addr), b.id)
  return [a, b]
}

test('request is answered by a sync handler', { timeout: TIMEOUT }, async (t) => {
  const [a, b] = await pair(t)
  let seenFrom
  b.channel('echo').onRequest((req) => {
    seenFrom = req.from
    assert.ok(Buffer.isBuffer(req.data))
    return Buffer.concat([Buffer.from('echo:'), req.data])
  })
  const reply = await a.channel('echo').request(b.id, 'ping')
  assert.ok(Buffer.isBuffer(reply))
  assert.equal(reply.toString(), 'echo:ping')
  assert.equal(seenFrom, a.id)
})

test('request is answered by an async handler', { timeout: TIMEOUT }, async (t) => {
  const [a, b] = await pair(t)
  b.channel('slow-echo').onRequest(async (req) => {
    await new Promise((resolve) => setTimeout(resolve, 20))
    return `async:${req.data.toString()}`
  })
  const replies = await Promise.all(
    [0, 1, 2, 3].map((i) => a.channel('slow-echo').request(b.id, `r${i}`))
  )
  assert.deepEqual(replies.map((r) => r.toString()), ['async:r0', 'async:r1', 'async:r2', 'async:r3'])
})

test('handlers may answer with a Uint8Array, a string or an empty Buffer', { timeout: TIMEOUT }, async (t) => {
  const [a, b] = await pair(t)
  b.channel('u8').onRequest(() => new Uint8Array([1, 2, 3]))
  b.channel('text').onRequest(() => 'ünïcode')
  b.channel('empty').onRequest(() => Buffer.alloc(0))
  assert.deepEqual([...(await a.channel('u8').request(b.id, 'x'))], [1, 2, 3])
  assert.equal((await a.channel('text').request(b.id, 'x')).toString('utf8'), 'ünïcode')
  assert.equal((await a.channel('empty').request(b.id, 'x')).length, 0)
})

test('a handler that throws answers HandlerFailed with its message', { timeout: TIMEOUT }, async (t) => {
  const [a, b] = await pair(t)
  b.channel('throws').onRequest(() => { throw new Error('cannot do that') })
  b.channel('rejects').onRequest(async () => { throw new RangeError('not today') })
  b.channel('throws-string').onRequest(() => { throw 'plain string' }) // eslint-disable-line no-throw-literal
  await rejectsWith(a.channel('throws').request(b.id, 'x'), 'HandlerFailed', /cannot do that/)
  await rejectsWith(a.channel('rejects').request(b.id, 'x'), 'HandlerFailed', /not today/)
  await rejectsWith(a.channel('throws-string').request(b.id, 'x'), 'HandlerFailed', /plain string/)
  // The handlers still answer later requests.
  b.channel('throws').onRequest(() => 'fine now')
  assert.equal((await a.channel('throws').request(b.id, 'x')).toString(), 'fine now')
})

test('a handler returning something that is not bytes answers HandlerFailed', { timeout: TIMEOUT }, async (t) => {
  const [a, b] = await pair(t)
  b.channel('number').onRequest(() => 42)
  b.channel('nothing').onRequest(async () => {})
  await rejectsWith(a.channel('number').request(b.id, 'x'), 'HandlerFailed', /returned a number/)
  await rejectsWith(a.channel('nothing').request(b.id, 'x'), 'HandlerFailed', /returned undefined/)
})

test('a request without a handler is NotFound', { timeout: TIMEOUT }, async (t) => {
  const [a, b] = await pair(t)
  b.channel('opened-no-handler')
  await rejectsWith(a.channel('opened-no-handler').request(b.id, 'x'), 'NotFound', /no request handler/)
  await rejectsWith(a.channel('never-opened').request(b.id, 'x'), 'NotFound', /no channel/)
  // Removing a handler with null makes requests NotFound again.
  b.channel('removed').onRequest(() => 'here')
  assert.equal((await a.channel('removed').request(b.id, 'x')).toString(), 'here')
  b.channel('removed').onRequest(null)
  await rejectsWith(a.channel('removed').request(b.id, 'x'), 'NotFound')
})

test('a request that is not answered in time is Timeout', { timeout: TIMEOUT }, async (t) => {
  const [a, b] = await pair(t)
  b.channel('never').onRequest(() => new Promise(() => {}))
  await rejectsWith(a.channel('never').request(b.id, 'x', { timeoutMs: 200 }), 'Timeout', /timed out/)
  const [c, d] = await pair(t, { requestTimeoutMs: 200 })
  d.channel('never').onRequest(() => new Promise(() => {}))
  await rejectsWith(c.channel('never').request(d.id, 'x'), 'Timeout')
})

test('oversized requests, bad peer ids and bad timeouts are InvalidInput', { timeout: TIMEOUT }, async (t) => {
  const [a, b] = await pair(t, { maxMessageSize: 1000 })
  b.channel('small').onRequest((req) => req.data)
  const ch = a.channel('small')
  assert.equal((await ch.request(b.id, Buffer.alloc(1000))).length, 1000)
  await rejectsWith(ch.request(b.id, Buffer.alloc(1001)), 'InvalidInput', /max_message_size/)
  await rejectsWith(ch.request('nope', 'x'), 'InvalidInput', /invalid node id/)
  await rejectsWith(ch.request(b.id, 'x', { timeoutMs: -5 }), 'InvalidInput', /timeoutMs/)
  await rejectsWith(ch.request(b.id, 'x', { timeoutMs: 0 }), 'InvalidInput', /timeoutMs/)
  await rejectsWith(ch.request(b.id, 'x', { timeoutMs: '5' }), 'InvalidInput', /timeoutMs/)
  await rejectsWith(ch.request(b.id, null), 'InvalidInput', /data must be/)
  // A handler's response larger than the limit is refused, not truncated.
  b.channel('big-answer').onRequest(() => Buffer.alloc(4000))
  await rejectsWith(a.channel('big-answer').request(b.id, 'x'), 'InvalidInput', /too large/)
})

test('a request to this node itself is answered locally', { timeout: TIMEOUT }, async (t) => {
  const [a] = await startNodes(t, 1, 'local')
  a.channel('self').onRequest((req) => `local:${req.data}`)
  assert.equal((await a.channel('self').request(a.id, 'x')).toString(), 'local:x')
})

// A request to this node is polled on the JavaScript thread and its handler called
// directly when it answers at once (no threadsafe function, no event-loop turn): every
// outcome must be the same as through the event loop, and the handler must still run
// after the caller's own code.
test('a request to this node itself: handlers of every kind, run after the caller\'s code', { timeout: TIMEOUT }, async (t) => {
  const [a] = await startNodes(t, 1, 'local-all', { maxMessageSize: 1000 })
  let callerDone = false
  let seen
  a.channel('sync').onRequest((req) => {
    seen = { from: req.from, isBuffer: Buffer.isBuffer(req.data), callerDone }
    return Buffer.concat([Buffer.from('sync:'), req.data])
  })
  const pending = a.channel('sync').request(a.id, 'x')
  callerDone = true
  assert.equal((await pending).toString(), 'sync:x')
  assert.deepEqual(seen, { from: a.id, isBuffer: true, callerDone: true })
  // Answered at once, so within this turn of the event loop: no callback queued for
  // the next turn has run yet.
  let nextTurn = false
  setImmediate(() => { nextTurn = true })
  assert.equal((await a.channel('sync').request(a.id, 'z')).toString(), 'sync:z')
  assert.equal(nextTurn, false, 'a request answered at once waited for the event loop')

  a.channel('async').onRequest(async (req) => {
    await new Promise((resolve) => setTimeout(resolve, 5))
    return `async:${req.data}`
  })
  const many = await Promise.all([0, 1, 2, 3].map((i) => a.channel('async').request(a.id, `r${i}`)))
  assert.deepEqual(many.map(String), ['async:r0', 'async:r1', 'async:r2', 'async:r3'])

  a.channel('throws').onRequest(() => { throw new Error('cannot do that') })
  a.channel('rejects').onRequest(async () => { throw new Error('not today') })
  a.channel('number').onRequest(() => 42)
  await rejectsWith(a.channel('throws').request(a.id, 'x'), 'HandlerFailed', /cannot do that/)
  await rejectsWith(a.channel('rejects').request(a.id, 'x'), 'HandlerFailed', /not today/)
  await rejectsWith(a.channel('number').request(a.id, 'x'), 'HandlerFailed', /returned a number/)
  await rejectsWith(a.channel('nobody').request(a.id, 'x'), 'NotFound')
  await rejectsWith(a.channel('sync').request(a.id, Buffer.alloc(1001)), 'InvalidInput', /max_message_size/)

  a.channel('never').onRequest(() => new Promise(() => {}))
  await rejectsWith(a.channel('never').request(a.id, 'x', { timeoutMs: 200 }), 'Timeout', /timed out/)

  // A handler that itself requests this node (answered at once, then through its promise).
  a.channel('outer').onRequest(async (req) => {
    const inner = await a.channel('sync').request(a.id, req.data)
    return `outer:${inner}`
  })
  assert.equal((await a.channel('outer').request(a.id, 'y')).toString(), 'outer:sync:y')

  // A handler may replace itself while it runs (no lock is held around the call).
  a.channel('once').onRequest(() => {
    a.channel('once').onRequest(() => 'second')
    return 'first'
  })
  assert.equal((await a.channel('once').request(a.id, 'x')).toString(), 'first')
  assert.equal((await a.channel('once').request(a.id, 'x')).toString(), 'second')

  // Replaced and removed handlers take effect at once.
  a.channel('sync').onRequest(() => 'replaced')
  assert.equal((await a.channel('sync').request(a.id, 'x')).toString(), 'replaced')
  a.channel('sync').onRequest(null)
  await rejectsWith(a.channel('sync').request(a.id, 'x'), 'NotFound')
})
