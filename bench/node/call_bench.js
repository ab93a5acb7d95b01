#!/usr/bin/env node
'use strict'
// Calls per second of `ch.request(node.id, payload)` from Node.js to a channel on the same
// node (the local delivery path: JS -> Rust, polled on the JS thread, which calls the JS
// handler directly -> Rust -> the response returned to JS; see ADR 0005), with a 64-byte
// payload, sequentially and with 64 requests in flight. Each phase is bounded in time and
// in calls.
//
// Besides calls/s it prints the process CPU time and context switches per call. With
// --json it prints one JSON line per case instead (the records `call-bench report` reads;
// bench/run-bindings.sh puts them beside Rust's figures for the same calls).
//
// Usage: node bench/node/call_bench.js [seconds per phase, default 3] [--json]
// Needs the built package: (cd js && npm install) first.

const path = require('node:path')
const { Node } = require(path.join(__dirname, '..', '..', 'js'))
const native = require(path.join(__dirname, '..', '..', 'js', 'native', 'binding.js'))

const ARGS = process.argv.slice(2)
const JSON_OUT = ARGS.includes('--json')
const SECONDS = Number(ARGS.find((a) => a !== '--json') || 3)
const MAX_CALLS = 5_000_000
const PAYLOAD = Buffer.alloc(64, 0x61)
const CONCURRENCY = 64

/** CPU microseconds (all threads) and context switches of the process so far. */
function usage () {
  const u = process.resourceUsage()
  return { cpu: u.userCPUTime + u.systemCPUTime, cs: u.voluntaryContextSwitches + u.involuntaryContextSwitches }
}

/**
 * Runs `call` from `workers` loops until the deadline; returns the calls, the seconds,
 * calls per second, and CPU microseconds and context switches per call.
 */
async function measure (workers, call) {
  let calls = 0
  const before = usage()
  const start = process.hrtime.bigint()
  const deadline = start + BigInt(Math.round(SECONDS * 1e9))
  const loop = async () => {
    while (calls < MAX_CALLS && process.hrtime.bigint() < deadline) {
      await call()
      calls++
    }
  }
  await Promise.all(Array.from({ length: workers }, loop))
  const seconds = Number(process.hrtime.bigint() - start) / 1e9
  const after = usage()
  const n = Math.max(calls, 1)
  return { calls, seconds, rate: calls / seconds, cpuUs: (after.cpu - before.cpu) / n, cs: (after.cs - before.cs) / n }
}

function report (label, { calls, seconds, rate, cpuUs, cs }, record) {
  if (JSON_OUT) {
    if (record) {
      const line = { lang: 'node', case: record.case, api: record.api, calls_per_s: Math.round(rate), cpu_us: Number(cpuUs.toFixed(2)), cs: Number(cs.toFixed(3)) }
      console.log(JSON.stringify(line))
    }
    return
  }
  const figure = Math.round(rate).toLocaleString('en-US').padStart(10)
  console.log(`${label.padEnd(58)} ${figure} calls/s ${cpuUs.toFixed(1).padStart(6)} us cpu ${cs.toFixed(2).padStart(5)} cs per call  (${calls} calls in ${seconds.toFixed(2)} s)`)
}

async function main () {
  const node = await Node.start({ name: 'bench', listen: '127.0.0.1:0', mdns: false })
  try {
    const ch = node.channel('bench')
    const handler = (req) => req.data
    ch.onRequest(handler)
    const call = () => ch.request(node.id, PAYLOAD)
    const reply = await call()
    if (!reply.equals(PAYLOAD)) throw new Error('the echo handler returned something else')
    // Anchor: the same shape of call without memmesh (an async JS function).
    const echo = async (data) => data
    if (!JSON_OUT) console.log(`memmesh Node.js local request/response, 64 B payload, ${SECONDS} s per phase`)
    report('anchor: plain async JS call, sequential', await measure(1, () => echo(PAYLOAD)))
    // Anchor: the binding's own work around a local request, without the core (the same
    // wrapper shape, the payload copied in, the handler's { from, data } built and called,
    // its answer read and returned as a new Buffer): what Node-API and V8 charge.
    const floor = async () => {
      await undefined
      return native.__requestFloorForBench(node.id, PAYLOAD, handler)
    }
    if (!(await floor()).equals(PAYLOAD)) throw new Error('the floor returned something else')
    report('anchor: the same native call and handler, no memmesh core', await measure(1, floor),
      { case: 'request-seq', api: 'anchor: Node-API floor (no core)' })
    await measure(1, call) // warm-up, not reported
    report('node ch.request(node.id, 64 B), sequential', await measure(1, call),
      { case: 'request-seq', api: 'await, one caller' })
    report(`node ch.request(node.id, 64 B), ${CONCURRENCY} concurrent`, await measure(CONCURRENCY, call),
      { case: 'request-64', api: `${CONCURRENCY} awaiting callers` })
  } finally {
    await node.shutdown()
  }
}

main().catch((err) => {
  console.error(err)
  process.exitCode = 1
})
