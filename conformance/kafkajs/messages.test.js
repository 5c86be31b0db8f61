'use strict'
// Checks messages.js against the check values published in conformance/common/messages.md:
//   node --test conformance/kafkajs/
// (./setup runs it whenever the driver's sources change.)

const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const test = require('node:test')

const M = require('./messages')

const sha256 = buffers => {
  const hash = crypto.createHash('sha256')
  for (const buffer of buffers) hash.update(buffer)
  return hash.digest('hex')
}

test('roundtrip messages match the published check values (seed 1)', () => {
  const rows = [
    [0, 0, 'key-0', 0, ''],
    [1, 1, 'key-1', 133, 'a2b4c8def6102c4a6a8c'],
    [2, 2, 'key-2', 52, 'c1d3e7fd152f4b6989ab'],
    [5, 2, 'key-5', 9, '1e30445a728ca8c6e6'],
    [10, 1, 'key-10', 4, 'b9cbdff5'],
    [97, 1, 'key-97', 0, ''],
  ]
  for (const [index, partition, key, length, prefix] of rows) {
    const message = M.roundtripMessage(1, index)
    assert.equal(message.partition, partition)
    assert.equal(message.key.toString('ascii'), key)
    assert.equal(message.value.length, length)
    assert.equal(message.value.subarray(0, 10).toString('hex'), prefix)
    assert.equal(message.timestamp, 1_700_000_000_000 + index)
    assert.deepEqual(message.headers.map(([name, value]) => [name, value.toString('ascii')]),
      [['h', 'a'], ['h', 'b'], ['idx', String(index)]])
  }
  assert.equal(sha256(M.roundtripMessages(1, 10_000).map(message => message.value)),
    'bf2a93981e36cd7456ef7708f3f63b332af9f5ee81077ba17b4a1d307ab9b13e')
})

test('the message-too-large value and follow-up message', () => {
  assert.equal(M.largeValue().length, 2 * 1024 * 1024)
  assert.equal(sha256([M.largeValue()]), '1e075c8d478ad21844e33e830a695ef03a4d2488b69ee275bd8947618bb1be1e')
  const small = M.messageTooLargeSmallMessage(1)
  assert.equal(small.partition, 0)
  assert.ok(small.value.equals(M.roundtripMessage(1, 1).value))
})

test('log-compaction updates match the published numbers (seed 1, 3000 updates)', () => {
  const updates = M.logCompactionUpdates(1, 3000)
  assert.deepEqual([0, 1, 2].map(p => updates.filter(u => u.partition === p).length), [1020, 990, 990])
  assert.equal(updates.filter(u => u.value === null).length, 300)
  const latest = new Map()
  for (const update of updates) latest.set(update.key.toString('ascii'), update.value)
  assert.equal(latest.size, 100)
  assert.equal([...latest.values()].filter(value => value === null).length, 10)
  assert.equal(updates[0].key.toString('ascii'), 'key-1')
  assert.equal(updates[0].value.toString('ascii'), 'value-0')
  assert.equal(updates[0].partition, 1)
})

test('the roundtrip checks fail on a wrong record', () => {
  const message = M.roundtripMessage(1, 4)
  const record = {
    partition: 1, offset: 1, key: message.key, value: message.value, headers: message.headers,
    timestamp: message.timestamp, createTime: true,
  }
  M.checkRecord(message, record, 1)
  assert.throws(() => M.checkRecord(message, { ...record, value: Buffer.alloc(0) }, 1), M.ScenarioFailed)
  assert.throws(() => M.checkRecord(message, { ...record, headers: message.headers.slice(1) }, 1), M.ScenarioFailed)
  assert.throws(() => M.checkRecord(message, { ...record, createTime: false }, 1), M.ScenarioFailed)
  assert.throws(() => M.checkRecord(M.roundtripMessage(1, 0), { ...record, partition: 0, offset: 0, value: null }, 0),
    M.ScenarioFailed) // message 0's value is empty, and null is not empty
})
