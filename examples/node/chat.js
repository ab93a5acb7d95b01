#!/usr/bin/env node
'use strict'
// Two memmesh nodes in one process, on 127.0.0.1: they exchange a few chat messages
// and one request/response, then shut down (after which the process exits by itself).
//
// Usage: node examples/node/chat.js   (after `cd js && npm install`)

const path = require('node:path')
const { Node, MemmeshError } = require(path.join(__dirname, '..', '..', 'js'))

async function main () {
  const options = { listen: '127.0.0.1:0', mdns: false, clusterSecret: 'example secret' }
  const alice = await Node.start({ ...options, name: 'alice' })
  const bob = await Node.start({ ...options, name: 'bob' })
  console.log(`alice ${alice.id.slice(0, 10)} at ${alice.addr}`)
  console.log(`bob   ${bob.id.slice(0, 10)} at ${bob.addr}`)

  // Bob prints what arrives on "chat" and answers requests on "time".
  const bobChat = bob.channel('chat')
  const received = new Promise((resolve) => {
    let count = 0
    bobChat.onMessage((msg) => {
      const from = msg.from === alice.id ? 'alice' : msg.from.slice(0, 10)
      console.log(`bob got from ${from}: ${msg.data.toString()}`)
      if (++count === 3) resolve()
    })
  })
  bob.channel('time').onRequest(async (req) => `bob's clock says ${new Date().toISOString()} (you asked: ${req.data})`)

  await alice.connect(bob.addr)
  console.log('alice peers:', alice.peers().map((p) => `${p.name} (${p.state})`).join(', '))

  const chat = alice.channel('chat')
  for (const line of ['hi bob', 'how is the mesh?', 'bye']) await chat.send(line, bob.id)
  await received

  const reply = await alice.channel('time').request(bob.id, 'what time is it?', { timeoutMs: 5000 })
  console.log(`alice got: ${reply.toString()}`)

  // Errors carry a code.
  try {
    await alice.channel('nobody-listens').request(bob.id, 'anyone?')
  } catch (err) {
    if (!(err instanceof MemmeshError)) throw err
    console.log(`as expected: ${err.code}: ${err.message}`)
  }

  await alice.shutdown()
  await bob.shutdown()
  console.log('done')
}

main().catch((err) => {
  console.error(err)
  process.exitCode = 1
})
