#!/usr/bin/env node
'use strict'
// Edits per second through the documents path API from Node.js (issue 15 item 7 (c)).
//
// One node (127.0.0.1, mDNS off, no data dir: the document lives in memory), one
// document, and the same edit as `docs-bench` part (c) in Rust and
// bench/python/docs_bench.py: `await doc.put(`k${i % 100}`, i)`, one call at a time, for
// about SECONDS seconds after a short warm-up. Prints one line that bench/run-docs.sh
// reads:
//
//   node edits/s: 12,345 (sequential awaits)
//
// Usage: node bench/node/docs_bench.js [seconds, default 3]
// Needs the built package: (cd js && npm install) first (bench/run-docs.sh does it).

const path = require('node:path')
const { Node } = require(path.join(__dirname, '..', '..', 'js'))

const SECONDS = Number(process.argv[2] || 3)
const WARMUP = Math.min(0.5, SECONDS / 3)

/** Awaits `edit(first)`, `edit(first + 1)`, ... for `seconds`; resolves with the count. */
async function run (edit, first, seconds) {
  const deadline = process.hrtime.bigint() + BigInt(Math.round(seconds * 1e9))
  let i = first
  while (process.hrtime.bigint() < deadline) {
    for (let k = 0; k < 10; k++) {
      await edit(i)
      i++
    }
  }
  return i - first
}

async function main () {
  const node = await Node.start({ name: 'docs-bench', listen: '127.0.0.1:0', mdns: false })
  try {
    const doc = await node.docs.open(await node.docs.create('cluster'))
    const edit = (i) => doc.put(`k${i % 100}`, i)
    const done = await run(edit, 0, WARMUP)
    const cpu0 = process.cpuUsage()
    const start = process.hrtime.bigint()
    const edits = await run(edit, done, SECONDS)
    const seconds = Number(process.hrtime.bigint() - start) / 1e9
    const cpu = process.cpuUsage(cpu0)
    const last = done + edits - 1
    if (doc.get(`k${last % 100}`) !== last) throw new Error('the last edit is not in the document')
    const rate = edits / seconds
    const cpuPerEdit = (cpu.user + cpu.system) / edits
    console.log(`memmesh Node.js docs_bench: doc.put(\`k\${i % 100}\`, i), one document in memory, ${SECONDS} s`)
    console.log(`sequential awaits: ${Math.round(rate).toLocaleString('en-US')} edits/s, ${cpuPerEdit.toFixed(1)} us CPU per edit (${edits} edits in ${seconds.toFixed(2)} s)`)
    console.log(`node edits/s: ${Math.round(rate).toLocaleString('en-US')} (sequential awaits)`)
  } finally {
    await node.shutdown()
  }
}

main().catch((err) => {
  console.error(err)
  process.exitCode = 1
})
