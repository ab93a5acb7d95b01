// The Node.js half of the cross-language test: run by test_cross_language.py with the
// Python node's address. Serves "js-echo", asks the Python node's "py-echo", reports on
// stdout, and shuts down when stdin closes.
'use strict'
const path = require('node:path')
const { Node } = require(path.join(__dirname, '..', '..', 'js'))

async function main () {
  const [pyAddr, secret] = process.argv.slice(2)
  const node = await Node.start({ name: 'js', listen: '127.0.0.1:0', mdns: false, clusterSecret: secret })
  node.channel('js-echo').onRequest(async (req) => Buffer.concat([Buffer.from('js:'), req.data]))
  const pyId = await node.connect(pyAddr)
  const reply = await node.channel('py-echo').request(pyId, Buffer.from('hello from node'))
  console.log(`REPLY ${reply.toString()}`)
  let err = null
  try {
    await node.channel('nowhere').request(pyId, Buffer.from('x'))
  } catch (e) {
    err = e.code
  }
  console.log(`ERROR ${err}`)
  console.log(`READY ${node.id}`)
  process.stdin.resume()
  await new Promise((resolve) => process.stdin.on('end', resolve))
  await node.shutdown()
  console.log('BYE')
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
