'use strict'
// The Redis-protocol front from Node.js: a node started with `redisListen` answers a raw
// RESP PING on a plain TCP socket (redis-cli and redis-py are driven by ci/test-redis).

const test = require('node:test')
const assert = require('node:assert/strict')
const net = require('node:net')
const { startNode, rejectsWith, TIMEOUT } = require('../support/nodes')

function freePort () {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
}

// Sends `request` and resolves with the reply once it ends with CRLF.
function ask (port, request) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(request))
    let reply = ''
    socket.on('data', (chunk) => {
      reply += chunk.toString('latin1')
      if (reply.endsWith('\r\n')) {
        socket.end()
        resolve(reply)
      }
    })
    socket.on('error', reject)
  })
}

test('a node started with redisListen answers PING', { timeout: TIMEOUT }, async (t) => {
  const port = await freePort()
  await startNode(t, { redisListen: `127.0.0.1:${port}` })
  assert.equal(await ask(port, '*1\r\n$4\r\nPING\r\n'), '+PONG\r\n')
  assert.equal(await ask(port, 'SET k v\r\n'), '+OK\r\n')
  assert.equal(await ask(port, 'GET k\r\n'), '$1\r\nv\r\n')
  assert.match(await ask(port, 'FLUSHDB\r\n'), /^-ERR FLUSHDB is refused/)
})

// An open connection and a function sending a request on it and resolving with one line.
function connect (port) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => {
      const exchange = (request) => new Promise((resolve) => {
        let reply = ''
        const onData = (chunk) => {
          reply += chunk.toString('latin1')
          if (reply.endsWith('\r\n')) {
            socket.off('data', onData)
            resolve(reply)
          }
        }
        socket.on('data', onData)
        socket.write(request)
      })
      resolve({ socket, exchange })
    })
    socket.once('error', reject)
  })
}

test('redisLimits and redisAllowFlush are options', { timeout: TIMEOUT }, async (t) => {
  const port = await freePort()
  await startNode(t, {
    redisListen: `127.0.0.1:${port}`,
    redisAllowFlush: true,
    redisLimits: { maxClients: 1, maxBulk: 10, frameTimeoutMs: 5000 }
  })
  const first = await connect(port)
  try {
    assert.equal(await first.exchange('PING\r\n'), '+PONG\r\n')
    // maxClients 1: a second client is refused while the first is connected.
    assert.match(await ask(port, 'PING\r\n'), /^-ERR max number of clients reached/)
    assert.equal(await first.exchange('SET k v\r\n'), '+OK\r\n')
    assert.equal(await first.exchange('FLUSHDB\r\n'), '+OK\r\n')
    assert.equal(await first.exchange('GET k\r\n'), '$-1\r\n')
    // maxBulk 10: an 11-byte argument is a protocol error.
    assert.match(await first.exchange('*2\r\n$3\r\nGET\r\n$11\r\nhello world\r\n'),
      /^-ERR Protocol error: invalid bulk length/)
  } finally {
    first.socket.destroy()
  }
  await rejectsWith(() => startNode(t, { redisLimits: { maxClients: -1 } }), 'InvalidInput', /redisLimits\.maxClients/)
  await rejectsWith(() => startNode(t, { redisLimits: { maxNope: 1 } }), 'InvalidInput', /unknown redisLimits option/)
})

test('redisListen off loopback without redisPassword is InvalidInput', { timeout: TIMEOUT }, async (t) => {
  await rejectsWith(startNode(t, { redisListen: '0.0.0.0:0' }), 'InvalidInput', /redis_password/)
})
