'use strict'
// A panic inside Rust must never reach Node.js as an abort: every native function is
// built with napi's `catch_unwind`, so a panic becomes a thrown Error and the process
// (and any node running in it) carries on.

const test = require('node:test')
const assert = require('node:assert/strict')
const native = require('../native/binding.js')
const { Node } = require('..')

test('a panic in a native call is a thrown Error, and the process and its node carry on', async () => {
  const node = await Node.start({ name: 'p', listen: '127.0.0.1:0', mdns: false, threads: 1 })
  try {
    for (let i = 0; i < 3; i++) {
      assert.throws(() => native.__panicForTesting('boom ' + i), (e) => {
        assert.ok(e instanceof Error)
        assert.match(String(e.message), /boom/)
        return true
      })
    }
    // The node still works after the panics.
    const cache = await node.cache('after-panic')
    await cache.set('k', Buffer.from('v'))
    assert.equal((await cache.get('k')).toString(), 'v')
  } finally {
    await node.shutdown()
  }
})
