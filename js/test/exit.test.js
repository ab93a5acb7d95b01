'use strict'
// A Node.js process must exit by itself after `await node.shutdown()`: no handle
// (threadsafe function, pending promise) may be left open. Each case runs in a child
// process that must exit on its own well within a generous deadline.

const test = require('node:test')
const assert = require('node:assert/strict')
const { spawn } = require('node:child_process')
const path = require('node:path')

const DEADLINE_MS = 30000
const PACKAGE = path.resolve(__dirname, '..')

/**
 * Runs `body` (an async function's source) in a child process. Returns a promise of its
 * outcome; with `readyLine`, returns `{ ready, done }` where `ready` resolves with the
 * first stdout line matching it (or null if the child exits first).
 */
function runChild (body, readyLine) {
  const script = `
    const { Node } = require(${JSON.stringify(PACKAGE)})
    const start = (name) => Node.start({ name, listen: '127.0.0.1:0', mdns: false, threads: 1 })
    ;(async () => { ${body} })().then(
      () => console.log('script finished'),
      (e) => { console.error(e); process.exitCode = 1 })
  `
  let onReady = () => {}
  const ready = new Promise((resolve) => { onReady = resolve })
  const done = new Promise((resolve) => {
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => {
      stdout += d
      const line = readyLine && stdout.split('\n').find(readyLine)
      if (line) onReady(line)
    })
    child.stderr.on('data', (d) => { stderr += d })
    const timer = setTimeout(() => child.kill('SIGKILL'), DEADLINE_MS)
    child.on('exit', (code, signal) => {
      clearTimeout(timer)
      onReady(null)
      resolve({ code, signal, stdout, stderr })
    })
  })
  return readyLine ? { ready, done } : done
}

function assertExitedCleanly (r) {
  assert.equal(r.signal, null, `the child did not exit by itself within ${DEADLINE_MS} ms; stdout: ${r.stdout} stderr: ${r.stderr}`)
  assert.equal(r.code, 0, `stderr: ${r.stderr}`)
  assert.match(r.stdout, /script finished/)
}

test('the process exits after two nodes exchange a request and shut down', async () => {
  const r = await runChild(`
    const a = await start('a')
    const b = await start('b')
    b.channel('echo').onRequest(async (req) => 'pong:' + req.data)
    a.channel('inbox').onMessage(() => {})
    await a.connect(b.addr)
    const reply = await a.channel('echo').request(b.id, 'ping')
    if (reply.toString() !== 'pong:ping') throw new Error('bad reply ' + reply)
    await a.shutdown()
    await b.shutdown()
    console.log('reply ok')
  `)
  assertExitedCleanly(r)
  assert.match(r.stdout, /reply ok/)
})

test('the process exits after shutdown with a recv and an iterator still waiting', async () => {
  const r = await runChild(`
    const a = await start('a')
    const ch = a.channel('waiting')
    ch.onRequest(() => 'never asked')
    const pending = ch.recv().catch((e) => e.code)
    const iterated = (async () => { for await (const m of a.channel('iter')) {} return 'ended' })()
    await a.shutdown()
    const [code, end] = await Promise.all([pending, iterated])
    if (code !== 'Closed' || end !== 'ended') throw new Error('unexpected ' + code + ' ' + end)
  `)
  assertExitedCleanly(r)
})

test('a node with a request handler keeps the process alive, and serves, until shutdown', async (t) => {
  // The handler is referenced like a listening server. The child's script ends right
  // after setting it, with no timer left; the parent then calls the child (which must
  // still be up to answer) and asks it to shut down, after which it must exit.
  const { startNode } = require('../support/nodes')
  const child = runChild(`
    const a = await start('server')
    a.channel('svc').onRequest((req) => 'served:' + req.data)
    a.channel('stop').onMessage(async () => {
      await a.shutdown()
      console.log('shut down on request')
    })
    console.log('READY ' + a.id + ' ' + a.addr)
  `, (line) => line.startsWith('READY '))
  const ready = await child.ready
  assert.ok(ready, 'the child printed its address')
  const [, id, addr] = ready.split(' ')
  const parent = await startNode(t, { name: 'client' })
  assert.equal(await parent.connect(addr), id)
  // The child's script has finished by now; only the handler keeps it running.
  await new Promise((resolve) => setTimeout(resolve, 200))
  assert.equal((await parent.channel('svc').request(id, 'hello')).toString(), 'served:hello')
  // The child may close the connection before acknowledging this message: ignore that.
  await parent.channel('stop').send('now', id).catch(() => {})
  const r = await child.done
  assertExitedCleanly(r)
  assert.match(r.stdout, /shut down on request/)
})

test('a message handler that throws raises an uncaught exception, like an event listener', async () => {
  const r = await runChild(`
    const a = await start('a')
    let stop
    const caught = new Promise((resolve) => { stop = resolve })
    process.on('uncaughtException', (err) => stop('uncaught: ' + err.message))
    process.on('unhandledRejection', (err) => stop('unhandled: ' + err.message))
    const ch = a.channel('boom')
    let calls = 0
    ch.onMessage((msg) => {
      calls++
      if (msg.data.toString() === 'sync') throw new Error('sync listener failed')
      return Promise.reject(new Error('async listener failed'))
    })
    await ch.send('sync', a.id)
    console.log(await caught)
    const again = new Promise((resolve) => { stop = resolve })
    await ch.send('async', a.id)
    console.log(await again)
    console.log('calls ' + calls)
    await a.shutdown()
  `)
  assertExitedCleanly(r)
  assert.match(r.stdout, /uncaught: sync listener failed/)
  assert.match(r.stdout, /unhandled: async listener failed/)
  assert.match(r.stdout, /calls 2/)
})

test('the process exits after shutdown with an offer handler set and transfer iterators waiting', async () => {
  const r = await runChild(`
    const a = await start('a')
    const b = await start('b')
    b.transfer.onOffer(async () => ({ memory: true }))
    const deliveries = (async () => { for await (const got of b.transfer.received()) return got.data.toString() })()
    const progress = (async () => { for await (const p of a.transfer.progress()) {} return 'ended' })()
    await a.connect(b.addr)
    const [result] = await a.transfer.send(Buffer.from('sent'), [b.id])
    if (result.error) throw result.error
    if (await deliveries !== 'sent') throw new Error('not delivered')
    await a.shutdown()
    await b.shutdown()
    if (await progress !== 'ended') throw new Error('progress did not end')
  `)
  assertExitedCleanly(r)
})
