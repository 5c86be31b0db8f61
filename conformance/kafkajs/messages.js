'use strict'
/**
 * The deterministic conformance messages and the checks on them: conformance/common/messages.md is the
 * normative description, conformance/common/messages.py the Python implementation this mirrors exactly.
 * Keys and values are Buffers; headers are lists of [name, Buffer] pairs in order; timestamps are numbers
 * (every value used fits a double exactly).
 */

const BASE_TIMESTAMP_MS = 1_700_000_000_000
const DEFAULT_SEED = 1
const PARTITIONS = 3
const ROUNDTRIP_DEFAULT_COUNT = 10_000
const COMPRESSION_DEFAULT_COUNT = 2_000
const CONSUMER_GROUP_DEFAULT_COUNT = 3_000
const LOG_COMPACTION_DEFAULT_COUNT = 3_000
const CLUSTER_DEFAULT_COUNT = 3_000
const LARGE_VALUE_SIZE = 2 * 1024 * 1024 // above the broker's default message.max.bytes (1048588)
const LARGE_KEY = 'large'
const OFFSET_OUT_OF_RANGE_COUNT = 10
const OFFSET_OUT_OF_RANGE_FETCH_OFFSET = 1000
const LIST_OFFSETS_COUNT = 100
const LIST_OFFSETS_TIMESTAMP_STEP_MS = 10
const LIST_OFFSETS_QUERY_TIMESTAMP_MS = BASE_TIMESTAMP_MS + 505 // first record at or after it: i = 51 (+510)
const LIST_OFFSETS_EXPECTED_OFFSET = 51
const LIST_OFFSETS_FAR_FUTURE_MS = BASE_TIMESTAMP_MS + 10 ** 12 // later than every record's timestamp
const CONSUMER_GROUP_RESUME_COUNT = 10 // messages produced after the first two members closed

/** The client or broker did not behave as the scenario requires (driver exit 1). */
class ScenarioFailed extends Error {
  constructor(message) {
    super(message)
    this.name = 'ScenarioFailed'
  }
}

/** This client cannot express the scenario (driver exit 2, "n/a" in the matrix). */
class ScenarioNotSupported extends Error {
  constructor(message) {
    super(message)
    this.name = 'ScenarioNotSupported'
  }
}

const ascii = text => Buffer.from(text, 'ascii')

const messageKey = index => ascii(`key-${index}`)

function messageValueLength(seed, index) {
  if (index % 97 === 0) return 0
  return 1 + ((index * 7919 + seed * 13) % 200)
}

/** Arbitrary bytes (mostly not valid UTF-8; 0x00 and 0x0A occur): never treated as text. */
function messageValue(seed, index) {
  const value = Buffer.alloc(messageValueLength(seed, index))
  for (let j = 0; j < value.length; j++) value[j] = (seed * 131 + index * 31 + j * j + j * 17) % 256
  return value
}

/** The header name "h" repeats on purpose: order and duplicates must survive. */
const messageHeaders = index => [['h', ascii('a')], ['h', ascii('b')], ['idx', ascii(String(index))]]

function roundtripMessage(seed, index) {
  return {
    index,
    partition: index % PARTITIONS,
    key: messageKey(index),
    value: messageValue(seed, index),
    headers: messageHeaders(index),
    timestamp: BASE_TIMESTAMP_MS + index,
  }
}

function roundtripMessages(seed, count, first = 0) {
  const messages = []
  for (let index = first; index < first + count; index++) messages.push(roundtripMessage(seed, index))
  return messages
}

/** Roundtrip messages 0..count-1, all to partition 0, timestamp BASE + step*i (offset-out-of-range: step 1,
 * list-offsets: step 10). */
function singlePartitionMessages(seed, count, timestampStepMs = 1) {
  return roundtripMessages(seed, count).map(message => ({
    ...message,
    partition: 0,
    timestamp: BASE_TIMESTAMP_MS + timestampStepMs * message.index,
  }))
}

/** The 2 MiB value of message-too-large: byte j = j % 251. */
function largeValue() {
  const value = Buffer.alloc(LARGE_VALUE_SIZE)
  for (let j = 0; j < value.length; j++) value[j] = j % 251
  return value
}

/** The small message sent after the rejected large one: roundtrip message 1, to partition 0. */
const messageTooLargeSmallMessage = seed => ({ ...roundtripMessage(seed, 1), partition: 0 })

function expectedCountsByPartition(messages) {
  const counts = new Map()
  for (let partition = 0; partition < PARTITIONS; partition++) counts.set(partition, 0)
  for (const message of messages) counts.set(message.partition, counts.get(message.partition) + 1)
  return counts
}

function describeBytes(data, limit = 40) {
  if (data === null || data === undefined) return 'null'
  const shown = data.subarray(0, limit).toString('hex')
  return `${data.length} bytes 0x${shown}${data.length > limit ? '...' : ''}`
}

const sameBytes = (a, b) => (a === null ? b === null : b !== null && Buffer.isBuffer(a) && a.equals(b))

const describeHeaders = headers =>
  `[${headers.map(([name, value]) => `(${JSON.stringify(name)}, ${describeBytes(value)})`).join(', ')}]`

function sameHeaders(a, b) {
  return a.length === b.length && a.every(([name, value], i) => name === b[i][0] && sameBytes(value, b[i][1]))
}

/** delivered: message index -> [partition, offset] as acknowledged. Offsets in each partition must be
 * 0, 1, 2, ... in send order. */
function checkDeliveryOffsets(messages, delivered) {
  const next = new Map()
  for (const message of messages) {
    if (!delivered.has(message.index)) throw new ScenarioFailed(`message ${message.index} was never acknowledged`)
    const [partition, offset] = delivered.get(message.index)
    if (partition !== message.partition) {
      throw new ScenarioFailed(`message ${message.index} acknowledged on partition ${partition}, ` +
        `sent to ${message.partition}`)
    }
    const expected = next.get(partition) || 0
    if (offset !== expected) {
      throw new ScenarioFailed(`message ${message.index} acknowledged at offset ${offset} in partition ` +
        `${partition}, expected ${expected}`)
    }
    next.set(partition, expected + 1)
  }
}

/** One consumed record (see driver.js toRecord) against the message expected at expectedOffset. */
function checkRecord(message, record, expectedOffset) {
  const where = `partition ${record.partition} offset ${record.offset} (message ${message.index})`
  if (record.partition !== message.partition) {
    throw new ScenarioFailed(`${where}: record is in partition ${record.partition}, expected ${message.partition}`)
  }
  if (record.offset !== expectedOffset) {
    throw new ScenarioFailed(`${where}: offset ${record.offset}, expected ${expectedOffset}`)
  }
  if (!sameBytes(record.key, message.key)) {
    throw new ScenarioFailed(`${where}: key ${describeBytes(record.key)}, expected ${describeBytes(message.key)}`)
  }
  if (!sameBytes(record.value, message.value)) {
    throw new ScenarioFailed(`${where}: value ${describeBytes(record.value)}, expected ${describeBytes(message.value)}`)
  }
  if (!sameHeaders(record.headers, message.headers)) {
    throw new ScenarioFailed(`${where}: headers ${describeHeaders(record.headers)}, expected ` +
      `${describeHeaders(message.headers)}`)
  }
  if (record.timestamp !== message.timestamp) {
    throw new ScenarioFailed(`${where}: timestamp ${record.timestamp}, expected ${message.timestamp}`)
  }
  if (!record.createTime) throw new ScenarioFailed(`${where}: timestamp type is not CreateTime`)
}

/** Every partition must hold exactly the messages sent to it, in send order, at offsets first, first+1, ...
 * (first = 0 unless firstOffsets says otherwise), identical byte for byte. */
function checkRecordsMatch(messages, recordsByPartition, firstOffsets = new Map()) {
  const expectedByPartition = new Map()
  for (let partition = 0; partition < PARTITIONS; partition++) expectedByPartition.set(partition, [])
  for (const message of messages) expectedByPartition.get(message.partition).push(message)
  for (const [partition, expected] of expectedByPartition) {
    const records = recordsByPartition.get(partition) || []
    const first = firstOffsets.get(partition) || 0
    const shared = Math.min(records.length, expected.length)
    for (let position = 0; position < shared; position++) {
      checkRecord(expected[position], records[position], first + position)
    }
    if (records.length !== expected.length) {
      throw new ScenarioFailed(`partition ${partition}: consumed ${records.length} records, ` +
        `expected ${expected.length}`)
    }
  }
}

// --- log-compaction (messages.md, "Log compaction") ---

const LOG_COMPACTION_KEYS = 100
const LOG_COMPACTION_ROLL_DELAY_MS = 1000
const LOG_COMPACTION_WAIT_MS = 60_000
const LOG_COMPACTION_REREAD_INTERVAL_MS = 1000

/** Each block of 100 consecutive updates touches every key once, in an order shifting from block to block. */
const logCompactionKeyIndex = (seed, index) =>
  (index * 37 + Math.floor(index / 100) * 11 + seed) % LOG_COMPACTION_KEYS

/** Update `index`: {partition, key, value}; value null is a tombstone. */
function logCompactionUpdate(seed, index) {
  const keyIndex = logCompactionKeyIndex(seed, index)
  const value = (index * 13 + seed) % 10 === 0 ? null : ascii(`value-${index}`)
  return { partition: keyIndex % PARTITIONS, key: ascii(`key-${keyIndex}`), value }
}

function logCompactionUpdates(seed, count) {
  const updates = []
  for (let index = 0; index < count; index++) updates.push(logCompactionUpdate(seed, index))
  return updates
}

/** One per partition, produced a second after the updates: key and value `roll-{p}`. */
function logCompactionRollRecords() {
  const rolls = []
  for (let partition = 0; partition < PARTITIONS; partition++) {
    rolls.push({ partition, key: ascii(`roll-${partition}`), value: ascii(`roll-${partition}`) })
  }
  return rolls
}

/** sent[i] was acknowledged at delivered[i] = [partition, offset]; offsets per partition must be 0, 1, 2, ...
 * in send order. Returns what each partition holds as produced: Map partition -> [{offset, key, value}]. */
function checkLogCompactionDeliveries(sent, delivered) {
  if (sent.length !== delivered.length) {
    throw new ScenarioFailed(`${delivered.length} acknowledgements for ${sent.length} records`)
  }
  const produced = new Map()
  for (let partition = 0; partition < PARTITIONS; partition++) produced.set(partition, [])
  sent.forEach((record, number) => {
    const [partition, offset] = delivered[number]
    const key = record.key.toString('latin1')
    if (partition !== record.partition) {
      throw new ScenarioFailed(`record ${number} (key ${key}) acknowledged on partition ${partition}, ` +
        `sent to ${record.partition}`)
    }
    const expectedOffset = produced.get(partition).length
    if (offset !== expectedOffset) {
      throw new ScenarioFailed(`record ${number} (key ${key}) acknowledged at offset ${offset} of partition ` +
        `${partition}, expected ${expectedOffset}`)
    }
    produced.get(partition).push({ offset, key: record.key, value: record.value })
  })
  return produced
}

/** The table a compacted log stands for: the latest value of each key; a tombstone removes the key. */
function foldByKey(records) {
  const table = new Map()
  for (const { key, value } of records) {
    const name = key === null ? '<null>' : key.toString('hex')
    if (value === null) table.delete(name)
    else table.set(name, value.toString('hex'))
  }
  return table
}

const sameTable = (a, b) => a.size === b.size && [...a].every(([key, value]) => b.get(key) === value)

/**
 * One read of the whole topic (consumed: Map partition -> [{offset, key, value}]) against what was produced.
 * Throws ScenarioFailed for what compaction may never do: a record that is not the one produced at its
 * offset, a record twice or out of order, a live key's latest record missing. Returns null when the topic is
 * compacted (each key's latest record alone remains; a latest tombstone may remain or be gone; fewer records
 * than produced), else a description of what is left to clean.
 */
function checkLogCompaction(produced, consumed) {
  const notYet = []
  for (let partition = 0; partition < PARTITIONS; partition++) {
    const producedRecords = produced.get(partition)
    const byOffset = new Map(producedRecords.map(record => [record.offset, record]))
    const latestOffset = new Map()
    for (const { offset, key } of producedRecords) latestOffset.set(key.toString('hex'), offset)
    const records = consumed.get(partition) || []
    const seen = new Set()
    let previous = -1
    for (const { offset, key, value } of records) {
      const where = `partition ${partition} offset ${offset}`
      if (offset <= previous) {
        throw new ScenarioFailed(`${where}: returned after offset ${previous} (out of order or twice)`)
      }
      previous = offset
      const expected = byOffset.get(offset)
      if (expected === undefined) {
        throw new ScenarioFailed(`${where}: no record was produced at this offset ` +
          `(produced 0..${producedRecords.length - 1})`)
      }
      if (!sameBytes(key, expected.key) || !sameBytes(value, expected.value)) {
        throw new ScenarioFailed(`${where}: key ${describeBytes(key)} value ${describeBytes(value)}, produced ` +
          `key ${describeBytes(expected.key)} value ${describeBytes(expected.value)}`)
      }
      seen.add(offset)
    }
    for (const [key, offset] of latestOffset) {
      if (byOffset.get(offset).value !== null && !seen.has(offset)) {
        throw new ScenarioFailed(`partition ${partition}: the latest record of key ` +
          `${Buffer.from(key, 'hex').toString('latin1')} (offset ${offset}) is missing: compaction removed a ` +
          'live key\'s latest value')
      }
    }
    const stale = records
      .filter(({ offset, key }) => latestOffset.get(key.toString('hex')) !== offset)
      .map(({ offset }) => offset)
    if (stale.length > 0) {
      notYet.push(`partition ${partition}: ${records.length} of ${producedRecords.length} records left, ` +
        `${stale.length} superseded (first at offsets ${stale.slice(0, 5).join(', ')})`)
      continue
    }
    if (!sameTable(foldByKey(records), foldByKey(producedRecords))) {
      throw new ScenarioFailed(`partition ${partition}: the records left do not fold to the latest values`)
    }
    if (records.length >= producedRecords.length) {
      throw new ScenarioFailed(`partition ${partition}: ${records.length} records left of ` +
        `${producedRecords.length} produced: nothing was compacted`)
    }
  }
  return notYet.length > 0 ? notYet.join('; ') : null
}

// --- cluster (messages.md, "Cluster scenario") ---

const CLUSTER_BROKERS = 3
const CLUSTER_REPLICATION_FACTOR = 3
const CLUSTER_METADATA_WAIT_MS = 30_000

/**
 * The cluster checks of messages.md ("Cluster scenario", step 1). brokers: Map node id -> [host, port] as
 * advertised; partitions: Map partition -> {leader, replicas, isr} (broker ids). Throws ScenarioFailed.
 */
function checkClusterMetadata(bootstrap, brokers, partitions) {
  const shownBrokers = JSON.stringify([...brokers])
  if (brokers.size !== CLUSTER_BROKERS) {
    throw new ScenarioFailed(`metadata lists ${brokers.size} brokers, expected ${CLUSTER_BROKERS}: ${shownBrokers}`)
  }
  const endpoints = new Set([...brokers.values()].map(([host, port]) => `${host}:${port}`))
  if (endpoints.size !== CLUSTER_BROKERS) {
    throw new ScenarioFailed(`brokers share an advertised address: ${shownBrokers}`)
  }
  const colon = bootstrap.lastIndexOf(':')
  if (!endpoints.has(`${bootstrap.slice(0, colon)}:${Number(bootstrap.slice(colon + 1))}`)) {
    throw new ScenarioFailed(`the bootstrap address ${bootstrap} is not a listed broker: ${shownBrokers}`)
  }
  const numbers = [...partitions.keys()].sort((a, b) => a - b)
  if (numbers.join(',') !== [...Array(PARTITIONS).keys()].join(',')) {
    throw new ScenarioFailed(`topic has partitions [${numbers}], expected 0..${PARTITIONS - 1}`)
  }
  for (const number of numbers) {
    const { leader, replicas, isr } = partitions.get(number)
    const where = `partition ${number} (leader ${leader}, replicas [${replicas}], isr [${isr}])`
    if (replicas.length !== CLUSTER_REPLICATION_FACTOR || new Set(replicas).size !== replicas.length) {
      throw new ScenarioFailed(`${where}: expected ${CLUSTER_REPLICATION_FACTOR} distinct replicas`)
    }
    if (!replicas.every(replica => brokers.has(replica))) {
      throw new ScenarioFailed(`${where}: a replica is not a listed broker [${[...brokers.keys()]}]`)
    }
    const sorted = list => [...list].sort((a, b) => a - b).join(',')
    if (sorted(isr) !== sorted(replicas)) {
      throw new ScenarioFailed(`${where}: the in-sync replicas are not all the replicas`)
    }
    if (!replicas.includes(leader)) throw new ScenarioFailed(`${where}: the leader is not a replica`)
  }
  const leaders = numbers.map(number => partitions.get(number).leader)
  if (new Set(leaders).size !== PARTITIONS) {
    throw new ScenarioFailed(`partition leaders [${leaders}]: expected every partition led by a different broker`)
  }
}

module.exports = {
  BASE_TIMESTAMP_MS,
  DEFAULT_SEED,
  PARTITIONS,
  ROUNDTRIP_DEFAULT_COUNT,
  COMPRESSION_DEFAULT_COUNT,
  CONSUMER_GROUP_DEFAULT_COUNT,
  LOG_COMPACTION_DEFAULT_COUNT,
  CLUSTER_DEFAULT_COUNT,
  LARGE_VALUE_SIZE,
  LARGE_KEY,
  OFFSET_OUT_OF_RANGE_COUNT,
  OFFSET_OUT_OF_RANGE_FETCH_OFFSET,
  LIST_OFFSETS_COUNT,
  LIST_OFFSETS_TIMESTAMP_STEP_MS,
  LIST_OFFSETS_QUERY_TIMESTAMP_MS,
  LIST_OFFSETS_EXPECTED_OFFSET,
  LIST_OFFSETS_FAR_FUTURE_MS,
  CONSUMER_GROUP_RESUME_COUNT,
  LOG_COMPACTION_ROLL_DELAY_MS,
  LOG_COMPACTION_WAIT_MS,
  LOG_COMPACTION_REREAD_INTERVAL_MS,
  CLUSTER_METADATA_WAIT_MS,
  ScenarioFailed,
  ScenarioNotSupported,
  describeBytes,
  roundtripMessage,
  roundtripMessages,
  singlePartitionMessages,
  largeValue,
  messageTooLargeSmallMessage,
  expectedCountsByPartition,
  checkDeliveryOffsets,
  checkRecord,
  checkRecordsMatch,
  logCompactionUpdates,
  logCompactionRollRecords,
  checkLogCompactionDeliveries,
  checkLogCompaction,
  checkClusterMetadata,
}
