'use strict'
// Node roles (ADR 0024): a client node sets and gets through a member without holding
// the value itself; peers() shows each role; an unknown role is InvalidInput.

const test = require('node:test')
const assert = require('node:assert/strict')
const { startNode, startCluster, eventually, rejectsWith, TIMEOUT } = require('../support/nodes')

test('a client sets and gets through a member; peers() shows the roles', { timeout: TIMEOUT }, async (t) => {
  const [a, b] = await startCluster(t, 2, 'm')
  const client = await startNode(t, { name: 'cli', role: 'client', bootstrap: [a.addr] })
  const roleOf = (node, id) => {
    const p = node.peers().find((p) => p.id === id && p.state === 'alive' && p.quotaFree !== undefined)
    return p && p.role
  }
  assert.ok(await eventually(() =>
    roleOf(a, client.id) === 'client' && roleOf(b, client.id) === 'client' &&
    roleOf(client, a.id) === 'member' && roleOf(client, b.id) === 'member' &&
    roleOf(a, b.id) === 'member', 30000), 'roles not seen')
  const ca = await a.cache('roles', { replicas: 2 })
  const cc = await client.cache('roles', { replicas: 2 })
  await cc.set('k', Buffer.from('from the client'))
  assert.deepEqual(await cc.get('k'), Buffer.from('from the client'))
  assert.deepEqual(await ca.get('k'), Buffer.from('from the client'))
  assert.equal(cc.stats().entries, 0)
})

test('an unknown role is InvalidInput', { timeout: TIMEOUT }, async (t) => {
  await rejectsWith(startNode(t, { role: 'observer' }), 'InvalidInput', /observer/)
})
