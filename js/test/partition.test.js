'use strict'
// Reads during a network partition (ADR 0010, "Network partitions"), through Node.js.
//
// Two nodes run in this process (a and b); a third (c) is the `memmesh` CLI in a child
// process. Pausing c with SIGSTOP splits the cluster into {a, b} and {c} for real: c's
// sockets stay open but nothing answers. Once a and b have declared c down, a read on
// their side returns the newest value the side holds (null for a miss) and never rejects
// with PeerUnavailable; writes there are acknowledged by the owners on that side. After
// SIGCONT, c comes back and every acknowledged write is still readable.
//
// The CLI binary is $MEMMESH_CLI if set; otherwise the test builds it first (`cargo build
// -q -p memmesh-cli`, a no-op when it is up to date) and runs
// ${CARGO_TARGET_DIR:-<repo>/target}/debug/memmesh. No timing is asserted: deadlines only
// bound the waits, and the times taken are printed.

const test = require('node:test')
const assert = require('node:assert/strict')
const { spawn, execFileSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const readline = require('node:readline')
const { MemmeshError } = require('..')
const { startNode, eventually, TIMEOUT } = require('../support/nodes')

const REPO = path.resolve(__dirname, '..', '..')
const BANNER = /^node (\S+) \(([a-z2-7]{52})\) listening on (\S+)$/
const KEYS = 200
const DEADLINE_MS = 30000

let cli = null

/** The path of the `memmesh` CLI binary (built here unless $MEMMESH_CLI). */
function memmeshCli () {
  if (process.env.MEMMESH_CLI) return process.env.MEMMESH_CLI
  if (cli) return cli
  const binary = path.resolve(REPO, process.env.CARGO_TARGET_DIR || 'target', 'debug', 'memmesh')
  try {
    // Always: a binary left from an older checkout would test older code.
    execFileSync('cargo', ['build', '-q', '-p', 'memmesh-cli'], { cwd: REPO, stdio: 'inherit', timeout: 1800000 })
  } catch (e) {
    if (e.code !== 'ENOENT') throw e // no cargo: use the binary if there is one
  }
  assert.ok(fs.existsSync(binary), `no memmesh CLI at ${binary}: build it or set MEMMESH_CLI`)
  cli = binary
  return cli
}

/**
 * Starts `memmesh node` in a child process, resolves with { child, id, addr, log } once it
 * printed its banner; `t.after` continues and kills it.
 */
async function startCli (t, name, bootstrap) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'memmesh-partition-'))
  const log = path.join(dir, `${name}.log`)
  const stderr = fs.openSync(log, 'w')
  const child = spawn(memmeshCli(), ['node', '--name', name, '--listen', '127.0.0.1:0', '--bootstrap', bootstrap], {
    stdio: ['ignore', 'pipe', stderr],
    env: { ...process.env, MEMMESH_LOG: 'memmesh=info', NO_COLOR: '1' }
  })
  fs.closeSync(stderr)
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve))
      try { process.kill(child.pid, 'SIGCONT') } catch {}
      child.kill('SIGKILL')
      await exited
    }
    fs.rmSync(dir, { recursive: true, force: true })
  })
  const lines = readline.createInterface({ input: child.stdout }) // read to the end
  const banner = await new Promise((resolve) => {
    const timer = setTimeout(() => resolve(null), DEADLINE_MS)
    lines.once('line', (line) => { clearTimeout(timer); resolve(line) })
    child.once('exit', () => { clearTimeout(timer); resolve(null) })
  })
  const tail = () => fs.readFileSync(log, 'utf8').split('\n').slice(-40).join('\n')
  const match = BANNER.exec(banner || '')
  assert.ok(match, `the CLI node printed no banner: ${banner}; stderr: ${tail()}`)
  return { child, id: match[2], addr: match[3], tail }
}

/** `node`'s membership state of `id` (undefined if it does not know it). */
function stateOf (node, id) {
  const peer = node.peers().find((p) => p.id === id)
  return peer && peer.state
}

/** The CLI node's own view, name -> state, asked on its `peers` channel; {} while it cannot be asked. */
async function viewOfCli (via, id) {
  try {
    const text = (await via.channel('peers').request(id, '', { timeoutMs: 2000 })).toString()
    return Object.fromEntries(text.split('\n').filter((l) => l.trim()).map((l) => l.split(' ')).map((f) => [f[0], f[2]]))
  } catch (e) {
    if (e instanceof MemmeshError) return {}
    throw e
  }
}

/** Whether every key of `expected` reads back with its value from every cache. */
async function allRight (caches, expected) {
  for (const cache of Object.values(caches)) {
    for (const [key, value] of expected) {
      const got = await cache.get(key)
      if (got === null || !got.equals(Buffer.from(value))) return false
    }
  }
  return true
}

/**
 * Every key of `expected` reads back with its value from every cache (get and getMany), at
 * once. On a wrong read, the failure also says whether (and when) the reads became right
 * later, and ends with `log()`.
 */
async function readAll (caches, expected, when, log = () => '') {
  for (const [name, cache] of Object.entries(caches)) {
    const wrong = []
    for (const [key, value] of expected) {
      let got
      try {
        got = await cache.get(key)
      } catch (e) {
        assert.fail(`${when}: reading ${key} on ${name} rejected with ${e.code}: ${e.message}`)
      }
      if (got === null || !got.equals(Buffer.from(value))) wrong.push([key, value, got && got.toString()])
    }
    if (wrong.length > 0) {
      const start = Date.now()
      const settled = await eventually(() => allRight(caches, expected), 10000)
      const later = settled ? `every read was right ${(Date.now() - start) / 1000} s later` : 'reads were still wrong 10 s later'
      assert.fail(`${when}: ${wrong.length} wrong reads on ${name} ([key, expected, read]), e.g. ` +
        `${JSON.stringify(wrong.slice(0, 5))}; ${later}\n${log()}`)
    }
    const batch = await cache.getMany([...expected.keys()])
    assert.deepEqual(batch.map((v) => v && v.toString()), [...expected.values()], `${when}: getMany on ${name}`)
  }
}

// Built (or found up to date) before the test's own deadline starts.
test.before(() => { memmeshCli() }, { timeout: 1800000 })

test('reads on each side of a paused node (SIGSTOP), then after it is continued', { timeout: TIMEOUT }, async (t) => {
  const a = await startNode(t, { name: 'a' })
  const b = await startNode(t, { name: 'b', bootstrap: [a.addr] })
  const c = await startCli(t, 'c', a.addr)
  const started = Date.now()
  const formed = await eventually(async () => {
    if (![[a, b], [b, a]].every(([x, y]) => stateOf(x, y.id) === 'alive')) return false
    if (![a, b].every((n) => stateOf(n, c.id) === 'alive')) return false
    const view = await viewOfCli(a, c.id)
    return view.a === 'alive' && view.b === 'alive'
  }, DEADLINE_MS)
  assert.ok(formed, `a, b and c never saw each other alive: ${JSON.stringify([a, b].map((n) => n.peers().map((p) => [p.name, p.state])))}`)
  console.log(`a, b and c (pid ${c.child.pid}) formed a cluster in ${(Date.now() - started) / 1000} s`)

  const ca = await a.cache('split', { replicas: 2 })
  const cb = await b.cache('split', { replicas: 2 })
  const expected = new Map()
  for (let i = 0; i < KEYS; i++) expected.set(`before-${i}`, `before value ${i}`)
  for (const [key, value] of expected) await ca.set(key, value)
  // c learned the bucket through the writes it owns (about two thirds of them).
  assert.ok(await eventually(async () => (await a.blocks.stats()).some((u) => u.id === c.id && u.used > 0), DEADLINE_MS),
    'c never held its share of the entries')
  await readAll({ a: ca, b: cb }, expected, 'before the pause')

  process.kill(c.child.pid, 'SIGSTOP')
  const paused = Date.now()
  assert.ok(await eventually(() => [a, b].every((n) => stateOf(n, c.id) === 'down'), DEADLINE_MS),
    'a and b never declared the paused c down')
  console.log(`a and b declared c down ${(Date.now() - paused) / 1000} s after SIGSTOP`)

  // Every key written before the split reads with its value on the {a, b} side: each had
  // a replica on a or b (2 replicas among 3 nodes).
  await readAll({ a: ca, b: cb }, expected, 'during the pause, keys written before')
  // Writes on this side are acknowledged by its owners: new keys, and overwrites of keys
  // written before, through a and through b; reads return the newest value.
  for (const [first, writer, cache] of [[0, 'a', ca], [1, 'b', cb]]) {
    const during = new Map()
    for (let i = 0; i < 50; i++) during.set(`during-${writer}-${i}`, `${writer} wrote ${i}`)
    for (let i = first; i < 40; i += 2) during.set(`before-${i}`, `${writer} overwrote ${i}`)
    for (const [key, value] of during) {
      await cache.set(key, value) // acknowledged, or it rejects
      expected.set(key, value)
    }
  }
  await readAll({ a: ca, b: cb }, expected, 'during the pause')
  assert.ok([a, b].every((n) => stateOf(n, c.id) === 'down'), 'c came back while stopped')

  process.kill(c.child.pid, 'SIGCONT')
  const resumed = Date.now()
  const back = await eventually(() => [a, b].every((n) => stateOf(n, c.id) === 'alive'), DEADLINE_MS)
  assert.ok(back, `c was not alive again for a and b ${DEADLINE_MS / 1000} s after SIGCONT: views ` +
    `${JSON.stringify([a, b].map((n) => n.peers().map((p) => [p.name, p.state])))}; c's log (tail):\n${c.tail()}`)
  console.log(`a and b saw c alive again ${(Date.now() - resumed) / 1000} s after SIGCONT`)

  // After the heal, every acknowledged write (before and during the pause) is readable.
  await readAll({ a: ca, b: cb }, expected, 'after SIGCONT', () => `c's log (tail):\n${c.tail()}`)
})
