'use strict'
// The HTTP management front from Node.js: a node started with `httpListen` answers
// GET /health (schemathesis, the Prometheus parser and Chromium are driven by
// ci/test-http).

const test = require('node:test')
const assert = require('node:assert/strict')
const http = require('node:http')
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

function getJson (port, path) {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path }, (res) => {
      let body = ''
      res.on('data', (chunk) => { body += chunk })
      res.on('end', () => resolve({ status: res.statusCode, body: JSON.parse(body) }))
    }).on('error', reject)
  })
}

test('a node started with httpListen answers GET /health', { timeout: TIMEOUT }, async (t) => {
  const port = await freePort()
  const node = await startNode(t, { httpListen: `127.0.0.1:${port}` })
  const { status, body } = await getJson(port, '/health')
  assert.equal(status, 200)
  assert.equal(body.status, 'ok')
  assert.equal(body.id, node.id)
})

test('httpListen off loopback without httpToken is InvalidInput', { timeout: TIMEOUT }, async (t) => {
  await rejectsWith(startNode(t, { httpListen: '0.0.0.0:0' }), 'InvalidInput', /http_token/)
})
