'use strict'
// Shared helpers for the tests (kept out of test/ so `node --test` does not run it as a test file):
// real nodes on 127.0.0.1, mDNS off, shut down after each test.

const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { after } = require('node:test')
const { Node, MemmeshError } = require('..')

/** Per-test deadline, so that a test waiting for an event that never comes fails instead of hanging. */
const TIMEOUT = 60000

/** Starts a node on 127.0.0.1 with mDNS off; `extra` overrides the defaults. */
function startNode (t, extra = {}) {
  return Node.start({ listen: '127.0.0.1:0', mdns: false, threads: 1, ...extra }).then((node) => {
    if (t) t.after(() => node.shutdown())
    return node
  })
}

/** Starts `n` nodes named `${prefix}0`, `${prefix}1`, ... */
async function startNodes (t, n, prefix = 'n', extra = {}) {
  const nodes = []
  for (let i = 0; i < n; i++) nodes.push(await startNode(t, { name: `${prefix}${i}`, ...extra }))
  return nodes
}

/** Polls `check()` (sync or async) every 20 ms until it is truthy; false after `timeoutMs`. */
async function eventually (check, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs
  while (true) {
    if (await check()) return true
    if (Date.now() > deadline) return false
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

/**
 * Starts `n` nodes named `${prefix}0`, `${prefix}1`, ..., each connected to the first, and
 * resolves once every node sees every other one alive (membership has converged).
 */
async function startCluster (t, n, prefix = 'n', extra = {}) {
  const nodes = await startNodes(t, n, prefix, extra)
  for (const node of nodes.slice(1)) assert.equal(await node.connect(nodes[0].addr), nodes[0].id)
  const converged = () => nodes.every((node) => {
    const alive = new Set(node.peers().filter((p) => p.state === 'alive').map((p) => p.id))
    return alive.size === n - 1 && nodes.every((other) => other === node || alive.has(other.id))
  })
  assert.ok(await eventually(converged), JSON.stringify(nodes.map((node) => node.peers().map((p) => [p.name, p.state]))))
  return nodes
}

/** Asserts that `promiseOrFn` fails with a MemmeshError whose code is `code`. */
async function rejectsWith (promiseOrFn, code, messagePattern) {
  const promise = typeof promiseOrFn === 'function' ? Promise.resolve().then(promiseOrFn) : promiseOrFn
  let error
  try {
    await promise
  } catch (e) {
    error = e
  }
  assert.ok(error, `expected a ${code} error, but it succeeded`)
  assert.ok(error instanceof MemmeshError, `expected a MemmeshError, got ${error && error.stack}`)
  assert.ok(error instanceof Error)
  assert.equal(error.code, code, `wrong code; message: ${error.message}`)
  if (messagePattern) assert.match(error.message, messagePattern)
  return error
}

/** Asserts that `fn()` throws synchronously a MemmeshError whose code is `code`. */
function throwsWith (fn, code, messagePattern) {
  assert.throws(fn, (e) => {
    assert.ok(e instanceof MemmeshError, `expected a MemmeshError, got ${e && e.stack}`)
    assert.equal(e.code, code, `wrong code; message: ${e.message}`)
    if (messagePattern) assert.match(e.message, messagePattern)
    return true
  })
}

/**
 * Returns a function making fresh temporary directories (`memmesh-${prefix}-*`), all removed
 * once the calling file's tests are done: call it at the file's top level. Not in each
 * test's `t.after`: those hooks run in the order registered, so a directory would be removed
 * before the nodes using it shut down (a node still writing there made the removal fail with
 * ENOTEMPTY).
 */
function tempDirs (prefix) {
  const dirs = []
  after(() => {
    for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 50 })
  })
  return () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `memmesh-${prefix}-`))
    dirs.push(dir)
    return dir
  }
}

module.exports = { tempDirs, startNode, startNodes, startCluster, eventually, rejectsWith, throwsWith, TIMEOUT }
