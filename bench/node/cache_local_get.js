#!/usr/bin/env node
'use strict'
// Local-hit GET ops/s of `await cache.get(key)` from Node.js.
//
// Starts one node (127.0.0.1, mDNS off) with a cache bucket at replicas=1, sets 1000 keys
// of 100 bytes, then awaits `cache.get` sequentially over those keys for about DURATION
// seconds (after a short warmup), checking every value. Every read is a local hit,
// answered on the JavaScript thread with an already resolved promise. Prints one line of
// JSON:
//
//     {"lang":"node","ops_per_s":...}
//
// Usage: node bench/node/cache_local_get.js [--duration SECONDS] [--warmup SECONDS]
// Needs the built package (a release build): (cd js && npm install) first.

const path = require('node:path')
const { parseArgs } = require('node:util')
const { Node } = require(path.join(__dirname, '..', '..', 'js'))

const KEYS = 1000
const VALUE_SIZE = 100

/** The data set: KEYS keys, each with a distinct VALUE_SIZE-byte value. */
function entries () {
  const out = []
  for (let i = 0; i < KEYS; i++) {
    const digits = String(i).padStart(6, '0')
    const value = Buffer.from(digits.repeat(Math.floor(VALUE_SIZE / 6)) + '.'.repeat(VALUE_SIZE % 6))
    out.push([`key:${digits}`, value])
  }
  return out
}

/**
 * Awaits `cache.get` over every key in turn for `seconds`, checking each value; returns
 * the calls made and the seconds they took.
 */
async function run (cache, data, seconds) {
  let calls = 0
  const start = process.hrtime.bigint()
  const deadline = start + BigInt(Math.round(seconds * 1e9))
  let now = start
  while (now < deadline) {
    for (const [key, value] of data) {
      const got = await cache.get(key)
      if (got === null || !got.equals(value)) throw new Error(`wrong value for ${key}`)
    }
    calls += data.length
    now = process.hrtime.bigint()
  }
  return { calls, seconds: Number(now - start) / 1e9 }
}

async function main () {
  const { values } = parseArgs({
    options: {
      duration: { type: 'string', default: '2' },
      warmup: { type: 'string', default: '0.3' }
    }
  })
  const duration = Number(values.duration)
  const warmup = Number(values.warmup)
  if (!(duration > 0) || !(warmup >= 0)) throw new Error('--duration must be > 0 and --warmup >= 0')
  const data = entries()
  const node = await Node.start({ name: 'bench-local-get', listen: '127.0.0.1:0', mdns: false })
  try {
    const cache = await node.cache('bench-local-get', { replicas: 1 })
    await cache.setMany(data)
    await run(cache, data, warmup)
    const { calls, seconds } = await run(cache, data, duration)
    console.log(JSON.stringify({ lang: 'node', ops_per_s: Math.round(calls / seconds) }))
  } finally {
    await node.shutdown()
  }
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
