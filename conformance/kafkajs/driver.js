'use strict'
/**
 * Conformance driver for KafkaJS (pure JavaScript): Kafka#producer, Kafka#consumer and Kafka#admin only.
 *
 *   run --bootstrap HOST:PORT --scenario NAME --topic TOPIC [--count N] [--seed S]
 *   run --version          prints one line "kafkajs VERSION"
 *
 * Exit 0 = pass, 1 = fail (a `FAIL:` line on stderr), 2 = scenario not supported by KafkaJS. KafkaJS and its
 * codec packages are loaded from .tools/kafkajs/node_modules (installed by ./setup). README.md beside this file
 * says how each scenario is expressed with KafkaJS's API and where KafkaJS differs from the other clients.
 */

const crypto = require('crypto')
const path = require('path')
const { createRequire } = require('module')

const M = require('./messages')
const G = require('./groups')

const { ScenarioFailed, ScenarioNotSupported } = M

const CLIENT_NAME = 'kafkajs'
const REPO_ROOT = path.resolve(__dirname, '..', '..')
const TOOLS_PACKAGE_JSON = path.join(REPO_ROOT, '.tools', 'kafkajs', 'package.json')

const SCENARIOS = [
  'roundtrip',
  'compression-gzip',
  'compression-snappy',
  'compression-lz4',
  'compression-zstd',
  'message-too-large',
  'offset-out-of-range',
  'list-offsets',
  'admin-topics',
  'idempotent-produce',
  'consumer-group',
  'consumer-group-kip848',
  'admin-configs-partitions-records',
  'log-compaction',
  'cluster',
  'produce',
  'verify',
]

// The whole run is bounded so that a misbehaving broker can never hang the caller.
const OVERALL_TIMEOUT_MS = 120_000
// Bound for any single client call (connect, metadata, admin request, offset lookup, disconnect).
const CALL_TIMEOUT_MS = 30_000
// One producer.send() including KafkaJS's own retries (5, backing off from 300 ms).
const SEND_TIMEOUT_MS = 60_000
// Reading partitions up to their high watermarks.
const CONSUME_TIMEOUT_MS = 60_000
// Records per producer.send(): KafkaJS turns each send() into one Produce request (one batch per partition).
const SEND_CHUNK = 200
// Consumers ask the broker to answer a Fetch after at most this long when there is no data, so they notice the
// end of the data, a rebalance or a disconnect quickly (KafkaJS's default is 5 s).
const MAX_WAIT_TIME_MS = 250
// KafkaJS's only report of a broker OFFSET_OUT_OF_RANGE (consumerGroup.recoverFromOffsetOutOfRange).
const OFFSET_OUT_OF_RANGE_LOG_MESSAGE = 'Offset out of range, resetting to default offset'

// The record batch's timestamp type as KafkaJS decodes it into each message's batchContext (1 = LogAppendTime).
const CREATE_TIME = 0
// Kafka protocol error codes the scenarios expect.
const OFFSET_OUT_OF_RANGE = 1
const MESSAGE_TOO_LARGE = 10
const INVALID_TOPIC_EXCEPTION = 17
const INVALID_PARTITIONS = 37
const INVALID_CONFIG = 40
const POLICY_VIOLATION = 44

let kafkajs // the KafkaJS module, loaded in main()
let requireTool // require() resolving in .tools/kafkajs/node_modules
const logListeners = new Set()

function loadKafkaJS() {
  try {
    requireTool = createRequire(TOOLS_PACKAGE_JSON)
    kafkajs = requireTool('kafkajs')
  } catch (error) {
    throw new Error(`KafkaJS is not installed in .tools/kafkajs (run conformance/kafkajs/setup): ${error.message}`)
  }
}

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

/** The error and what caused it (KafkaJS wraps errors in KafkaJSNonRetriableError / retries-exceeded errors). */
function errorChain(error) {
  const chain = []
  for (let current = error; current && !chain.includes(current) && chain.length < 10; current = current.cause) {
    chain.push(current)
  }
  return chain
}

function describeError(error) {
  return errorChain(error).map(e => {
    const type = typeof e.type === 'string' ? ` [${e.type} ${e.code}]` : ''
    return `${e.name || 'Error'}${type}: ${e.message}`
  }).join(' <- ')
}

/** The KafkaJS protocol error (a broker error code) in the error's chain, if any: {type, code}. */
const protocolErrorOf = error => errorChain(error).find(e => typeof e.type === 'string' && Number.isInteger(e.code))

/** Settles like `promise`, or fails the scenario after `ms` (what: text or a function giving it). */
function within(promise, ms, what) {
  let timer
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new ScenarioFailed(
      `${typeof what === 'function' ? what() : what}: not done within ${ms / 1000} s`)), ms)
  })
  promise.catch(() => {}) // a late rejection after the timeout is not an unhandled one
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

// --- clients --------------------------------------------------------------------------------------------------

/** KafkaJS's log entries go to stderr (warnings and errors; KAFKAJS_LOG_LEVEL=DEBUG shows everything) and to
 * the listeners of a scenario that watches for one. */
function logCreator() {
  return ({ namespace, level, label, log }) => {
    for (const listener of logListeners) listener({ namespace, level, label, log })
    const { message, timestamp, logger, ...extra } = log
    process.stderr.write(`${timestamp} kafkajs ${label} ${namespace}: ${message} ${JSON.stringify(extra)}\n`)
  }
}

function newKafka(args) {
  return new kafkajs.Kafka({
    clientId: `conformance-${CLIENT_NAME}`,
    brokers: [args.bootstrap],
    connectionTimeout: 10_000,
    requestTimeout: CALL_TIMEOUT_MS,
    logLevel: kafkajs.logLevel.WARN,
    logCreator,
  })
}

/** A producer that sends only to explicit partitions (the partitioner is named to keep KafkaJS from warning that
 * its default changed in 2.0) and never lets a metadata request create the topic. */
async function newProducer(ctx, options = {}) {
  const producer = ctx.kafka.producer({
    createPartitioner: kafkajs.Partitioners.DefaultPartitioner,
    allowAutoTopicCreation: false,
    ...options,
  })
  await within(producer.connect(), CALL_TIMEOUT_MS, 'producer.connect()')
  return producer
}

async function newAdmin(ctx) {
  const admin = ctx.kafka.admin()
  await within(admin.connect(), CALL_TIMEOUT_MS, 'admin.connect()')
  return admin
}

async function disconnect(client, what) {
  await within(client.disconnect(), CALL_TIMEOUT_MS, `${what}.disconnect()`)
}

/** KafkaJS takes headers as an object; a header name that repeats maps to an array of its values, which KafkaJS
 * sends in order (the names in the object's insertion order). */
function headersObject(headers) {
  const object = {}
  for (const [name, value] of headers) {
    if (!(name in object)) object[name] = value
    else if (Array.isArray(object[name])) object[name].push(value)
    else object[name] = [object[name], value]
  }
  return object
}

/** The consumer's header object back to a list of [name, value] pairs (repeated names as KafkaJS grouped them). */
function headersList(headers) {
  const list = []
  for (const [name, value] of Object.entries(headers || {})) {
    for (const single of Array.isArray(value) ? value : [value]) list.push([name, single])
  }
  return list
}

function toKafkaMessage(record) {
  const message = { partition: record.partition, key: record.key, value: record.value }
  if (record.headers !== undefined) message.headers = headersObject(record.headers)
  if (record.timestamp !== undefined) message.timestamp = String(record.timestamp)
  return message
}

/**
 * Sends the records in order with acks=all, SEND_CHUNK per producer.send(), each send awaited before the next;
 * returns [partition, offset] of each record, in send order. KafkaJS acknowledges a send with one RecordMetadata
 * per partition carrying the base offset of that partition's batch: the record at position k of a partition's
 * batch was written at baseOffset + k.
 */
async function sendRecords(producer, topic, records, { compression } = {}) {
  const delivered = []
  for (let start = 0; start < records.length; start += SEND_CHUNK) {
    const chunk = records.slice(start, start + SEND_CHUNK)
    const what = `records ${start}..${start + chunk.length - 1}`
    let metadata
    try {
      metadata = await within(
        producer.send({ topic, acks: -1, timeout: CALL_TIMEOUT_MS, compression, messages: chunk.map(toKafkaMessage) }),
        SEND_TIMEOUT_MS, `sending ${what}`)
    } catch (error) {
      if (error instanceof ScenarioFailed) throw error
      throw new ScenarioFailed(`${what} were not acknowledged: ${describeError(error)}`)
    }
    const baseOffsets = new Map()
    for (const entry of metadata) {
      if (entry.topicName !== topic || baseOffsets.has(entry.partition) || entry.errorCode !== 0) {
        throw new ScenarioFailed(`unexpected acknowledgement for ${what}: ${JSON.stringify(entry)}`)
      }
      baseOffsets.set(entry.partition, Number(entry.baseOffset))
    }
    const partitionsSent = new Set(chunk.map(record => record.partition))
    if (baseOffsets.size !== partitionsSent.size || ![...partitionsSent].every(p => baseOffsets.has(p))) {
      throw new ScenarioFailed(`${what} went to partitions [${[...partitionsSent]}] but were acknowledged for ` +
        `[${[...baseOffsets.keys()]}]`)
    }
    const positions = new Map()
    for (const record of chunk) {
      const position = positions.get(record.partition) || 0
      delivered.push([record.partition, baseOffsets.get(record.partition) + position])
      positions.set(record.partition, position + 1)
    }
  }
  return delivered
}

/** Sends roundtrip-style messages; returns message index -> [partition, offset]. */
async function sendMessages(producer, topic, messages, options) {
  const delivered = await sendRecords(producer, topic, messages, options)
  return new Map(messages.map((message, i) => [message.index, delivered[i]]))
}

async function produceMessages(ctx, messages, producerOptions = {}, sendOptions = {}) {
  const producer = await newProducer(ctx, producerOptions)
  try {
    M.checkDeliveryOffsets(messages, await sendMessages(producer, ctx.args.topic, messages, sendOptions))
  } finally {
    await disconnect(producer, 'producer')
  }
}

/** A consumed record, normalised: offsets and timestamps as numbers, headers as a list, null stays null. */
function toRecord(partition, message) {
  return {
    partition,
    offset: Number(message.offset),
    key: message.key,
    value: message.value,
    headers: headersList(message.headers),
    timestamp: Number(message.timestamp),
    createTime: message.batchContext !== undefined && message.batchContext.timestampType === CREATE_TIME,
  }
}

/** A group id for one read: KafkaJS has no consumer without a group (see README.md). Never committed to. */
const readGroupId = topic => `${topic}-kafkajs-read-${crypto.randomBytes(4).toString('hex')}`

/**
 * Reads partitions from their beginning (a new group, fromBeginning: true, nothing committed) until each partition
 * p of `ranges` (Map p -> [first, end)) has returned its record at offset end-1; partitions whose range is empty
 * are not waited for. Returns Map partition -> records in the order KafkaJS delivered them.
 */
async function readPartitions(ctx, ranges, timeoutMs = CONSUME_TIMEOUT_MS) {
  const { topic } = ctx.args
  const records = new Map([...ranges.keys()].map(partition => [partition, []]))
  const pending = new Set([...ranges].filter(([, [first, end]]) => end > first).map(([partition]) => partition))
  if (pending.size === 0) return records
  const consumer = ctx.kafka.consumer({
    groupId: readGroupId(topic),
    allowAutoTopicCreation: false,
    maxWaitTimeInMs: MAX_WAIT_TIME_MS,
  })
  let finished
  let crashed
  const done = new Promise((resolve, reject) => {
    finished = resolve
    crashed = reject
  })
  consumer.on(consumer.events.CRASH, ({ payload }) =>
    crashed(new ScenarioFailed(`the consumer crashed: ${describeError(payload.error)}`)))
  const progress = () => `reading ${topic} up to offsets ${JSON.stringify([...ranges])}: got ` +
    JSON.stringify([...records].map(([partition, list]) => [partition, list.length]))
  try {
    await within(consumer.connect(), CALL_TIMEOUT_MS, 'consumer.connect()')
    await within(consumer.subscribe({ topics: [topic], fromBeginning: true }), CALL_TIMEOUT_MS, 'consumer.subscribe()')
    await within(consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        if (!records.has(batch.partition)) records.set(batch.partition, [])
        for (const message of batch.messages) {
          const record = toRecord(batch.partition, message)
          records.get(batch.partition).push(record)
          const range = ranges.get(batch.partition)
          if (range !== undefined && record.offset >= range[1] - 1) pending.delete(batch.partition)
        }
        if (pending.size === 0) finished()
      },
    }), CALL_TIMEOUT_MS, 'consumer.run()')
    await within(done, timeoutMs, progress)
  } finally {
    await disconnect(consumer, 'consumer')
  }
  return records
}

/** Earliest and latest offset of every partition (ListOffsets): Map partition -> [low, high]. */
async function topicOffsets(admin, topic) {
  const offsets = await within(admin.fetchTopicOffsets(topic), CALL_TIMEOUT_MS, `admin.fetchTopicOffsets(${topic})`)
  return new Map(offsets.map(({ partition, low, high }) => [partition, [Number(low), Number(high)]]))
}

/** expected: Map partition -> [earliest, latest]. */
async function checkOffsets(admin, topic, expected) {
  const offsets = await topicOffsets(admin, topic)
  for (const [partition, [low, high]] of expected) {
    const found = offsets.get(partition)
    if (found === undefined || found[0] !== low || found[1] !== high) {
      throw new ScenarioFailed(`partition ${partition}: (earliest, latest) offsets = ` +
        `${found ? `(${found[0]}, ${found[1]})` : 'missing'}, expected (${low}, ${high})`)
    }
  }
}

async function withAdmin(ctx, action) {
  const admin = await newAdmin(ctx)
  try {
    return await action(admin)
  } finally {
    await disconnect(admin, 'admin')
  }
}

// --- roundtrip, compression, produce / verify, idempotence ----------------------------------------------------

async function verify(ctx) {
  const messages = M.roundtripMessages(ctx.args.seed, ctx.args.count)
  const counts = M.expectedCountsByPartition(messages)
  await withAdmin(ctx, admin => checkOffsets(admin, ctx.args.topic, new Map([...counts].map(([p, n]) => [p, [0, n]]))))
  const records = await readPartitions(ctx, new Map([...counts].map(([p, n]) => [p, [0, n]])))
  M.checkRecordsMatch(messages, records)
}

async function roundtrip(ctx, sendOptions = {}, producerOptions = {}) {
  await produceMessages(ctx, M.roundtripMessages(ctx.args.seed, ctx.args.count), producerOptions, sendOptions)
  await verify(ctx)
}

async function producePhase(ctx) {
  await produceMessages(ctx, M.roundtripMessages(ctx.args.seed, ctx.args.count))
}

/** KafkaJS has gzip built in; the other codecs are separate packages registered in CompressionCodecs. */
function compressionType(codec) {
  const { CompressionTypes, CompressionCodecs } = kafkajs
  const codecs = {
    gzip: { type: CompressionTypes.GZIP, load: null },
    snappy: { type: CompressionTypes.Snappy, load: () => requireTool('kafkajs-snappy') },
    lz4: { type: CompressionTypes.LZ4, load: () => new (requireTool('kafkajs-lz4'))().codec },
    zstd: { type: CompressionTypes.ZSTD, load: () => requireTool('@kafkajs/zstd')() },
  }
  const { type, load } = codecs[codec]
  if (load !== null) {
    try {
      CompressionCodecs[type] = load()
    } catch (error) {
      throw new ScenarioNotSupported(`the ${codec} codec package is not installed: ${error.message}`)
    }
  }
  return type
}

const compressionScenario = codec => ctx => roundtrip(ctx, { compression: compressionType(codec) })

/** The roundtrip by an idempotent producer: KafkaJS obtains a producer id (InitProducerId) on connect and numbers
 * each partition's batches; acks must be -1; up to 5 requests in flight (see README.md for how KafkaJS limits
 * that itself). */
const idempotentProduce = ctx => roundtrip(ctx, {}, { idempotent: true, maxInFlightRequests: 5 })

// --- message-too-large, offset-out-of-range, list-offsets ------------------------------------------------------

async function messageTooLarge(ctx) {
  const { topic } = ctx.args
  // KafkaJS has no producer-side size limit (nothing like max.request.size): the broker decides.
  const producer = await newProducer(ctx)
  const small = M.messageTooLargeSmallMessage(ctx.args.seed)
  let delivered
  try {
    let accepted
    try {
      accepted = await within(producer.send({
        topic,
        acks: -1,
        timeout: CALL_TIMEOUT_MS,
        messages: [{ partition: 0, key: Buffer.from(M.LARGE_KEY, 'ascii'), value: M.largeValue() }],
      }), SEND_TIMEOUT_MS, 'sending the 2 MiB message')
    } catch (error) {
      if (error instanceof ScenarioFailed) throw error
      const protocolError = protocolErrorOf(error)
      if (!protocolError || protocolError.code !== MESSAGE_TOO_LARGE) {
        throw new ScenarioFailed(`the 2 MiB message failed with ${describeError(error)}; expected ` +
          `MESSAGE_TOO_LARGE (${MESSAGE_TOO_LARGE})`)
      }
      process.stderr.write(`the 2 MiB message was rejected: ${describeError(error)}\n`)
    }
    if (accepted !== undefined) {
      throw new ScenarioFailed(`the 2 MiB message was accepted (${JSON.stringify(accepted)}); expected ` +
        `MESSAGE_TOO_LARGE (${MESSAGE_TOO_LARGE})`)
    }
    delivered = await sendMessages(producer, topic, [small])
  } finally {
    await disconnect(producer, 'producer')
  }
  const [partition, offset] = delivered.get(small.index)
  if (partition !== 0 || offset !== 0) {
    throw new ScenarioFailed(`small message acknowledged at (partition, offset) (${partition}, ${offset}), ` +
      'expected (0, 0)')
  }
  const expected = new Map([[0, [0, 1]], [1, [0, 0]], [2, [0, 0]]])
  await withAdmin(ctx, admin => checkOffsets(admin, topic, expected))
  M.checkRecordsMatch([small], await readPartitions(ctx, expected))
}

/**
 * KafkaJS cannot turn automatic offset reset off: on OFFSET_OUT_OF_RANGE its consumer logs an error and resets
 * the partition to the earliest or (fromBeginning: false, as here) the latest offset. That log entry is its only
 * report, so the driver watches the log for it (for this topic and partition 0) and checks that no record is
 * returned: the reset goes to the latest offset, 10, past every record.
 */
async function offsetOutOfRange(ctx) {
  const { topic } = ctx.args
  await produceMessages(ctx, M.singlePartitionMessages(ctx.args.seed, M.OFFSET_OUT_OF_RANGE_COUNT))
  const reports = []
  const listener = ({ level, log }) => {
    if (level === kafkajs.logLevel.ERROR && log.message === OFFSET_OUT_OF_RANGE_LOG_MESSAGE && log.topic === topic) {
      reports.push(log)
    }
  }
  logListeners.add(listener)
  const consumer = ctx.kafka.consumer({
    groupId: readGroupId(topic),
    allowAutoTopicCreation: false,
    maxWaitTimeInMs: MAX_WAIT_TIME_MS,
  })
  const records = []
  const failures = []
  consumer.on(consumer.events.CRASH, ({ payload }) =>
    failures.push(new ScenarioFailed(`the consumer crashed: ${describeError(payload.error)}`)))
  try {
    await within(consumer.connect(), CALL_TIMEOUT_MS, 'consumer.connect()')
    await within(consumer.subscribe({ topics: [topic], fromBeginning: false }), CALL_TIMEOUT_MS, 'consumer.subscribe()')
    await within(consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        for (const message of batch.messages) records.push(toRecord(batch.partition, message))
      },
    }), CALL_TIMEOUT_MS, 'consumer.run()')
    consumer.seek({ topic, partition: 0, offset: String(M.OFFSET_OUT_OF_RANGE_FETCH_OFFSET) })
    const deadline = Date.now() + CALL_TIMEOUT_MS
    while (reports.length === 0 && failures.length === 0 && records.length === 0 && Date.now() < deadline) {
      await sleep(50)
    }
    // Long enough for several more fetches: a record returned after the reset would show here.
    await sleep(1000)
  } finally {
    logListeners.delete(listener)
    await disconnect(consumer, 'consumer')
  }
  if (failures.length > 0) throw failures[0]
  if (records.length > 0) {
    throw new ScenarioFailed(`fetching from offset ${M.OFFSET_OUT_OF_RANGE_FETCH_OFFSET} returned ` +
      `${records.length} records (first at partition ${records[0].partition} offset ${records[0].offset}); ` +
      'expected OFFSET_OUT_OF_RANGE and no record')
  }
  if (reports.length === 0) {
    throw new ScenarioFailed(`no "${OFFSET_OUT_OF_RANGE_LOG_MESSAGE}" (OFFSET_OUT_OF_RANGE, ${OFFSET_OUT_OF_RANGE}) ` +
      `reported within ${CALL_TIMEOUT_MS / 1000} s of the seek to offset ${M.OFFSET_OUT_OF_RANGE_FETCH_OFFSET}`)
  }
  if (!reports.every(report => report.partition === 0)) {
    const partitions = JSON.stringify(reports.map(report => report.partition))
    throw new ScenarioFailed(`OFFSET_OUT_OF_RANGE reported for partitions ${partitions}, expected partition 0 only`)
  }
  process.stderr.write(`OFFSET_OUT_OF_RANGE reported: ${JSON.stringify(reports[0])}\n`)
}

/**
 * admin.fetchTopicOffsets gives the earliest and latest offsets; admin.fetchTopicOffsetsByTimestamp the first
 * offset at or after a time, except that KafkaJS replaces the broker's "none" (-1) with the partition's latest
 * offset: for a time after every record it answers 100 for partition 0 and 0 for the empty partitions.
 */
async function listOffsets(ctx) {
  const { topic } = ctx.args
  await produceMessages(ctx,
    M.singlePartitionMessages(ctx.args.seed, M.LIST_OFFSETS_COUNT, M.LIST_OFFSETS_TIMESTAMP_STEP_MS))
  await withAdmin(ctx, async admin => {
    await checkOffsets(admin, topic, new Map([[0, [0, M.LIST_OFFSETS_COUNT]], [1, [0, 0]], [2, [0, 0]]]))
    const queries = [
      [M.BASE_TIMESTAMP_MS, 0],
      [M.LIST_OFFSETS_QUERY_TIMESTAMP_MS, M.LIST_OFFSETS_EXPECTED_OFFSET],
      [M.LIST_OFFSETS_FAR_FUTURE_MS, M.LIST_OFFSETS_COUNT], // the broker's -1, replaced by the latest offset
    ]
    for (const [timestamp, expected] of queries) {
      const found = await within(admin.fetchTopicOffsetsByTimestamp(topic, timestamp), CALL_TIMEOUT_MS,
        `admin.fetchTopicOffsetsByTimestamp(${timestamp})`)
      const byPartition = new Map(found.map(({ partition, offset }) => [partition, Number(offset)]))
      const wanted = new Map([[0, expected], [1, 0], [2, 0]])
      if (byPartition.size !== wanted.size || ![...wanted].every(([p, offset]) => byPartition.get(p) === offset)) {
        throw new ScenarioFailed(`fetchTopicOffsetsByTimestamp(${timestamp}) = ${JSON.stringify(found)}, expected ` +
          `offsets ${JSON.stringify([...wanted])} (partition, offset)`)
      }
    }
  })
}

// --- admin-topics -------------------------------------------------------------------------------------------------

/** TOPIC's partitions as the metadata shows them (Map partition -> metadata), null if the topic is absent. */
async function topicPartitions(admin, topic) {
  const topics = await within(admin.listTopics(), CALL_TIMEOUT_MS, 'admin.listTopics()')
  if (!topics.includes(topic)) return null
  // Only a topic known to exist is named: KafkaJS's admin never asks the broker to create topics, but be sure.
  const { topics: described } = await within(admin.fetchTopicMetadata({ topics: [topic] }), CALL_TIMEOUT_MS,
    `admin.fetchTopicMetadata(${topic})`)
  const [entry] = described.filter(({ name }) => name === topic)
  if (entry === undefined) return null
  return new Map(entry.partitions.map(partition => [partition.partitionId, partition]))
}

/** Runs action until it does not fail with a retriable broker error (KafkaJS marks those), for up to timeoutMs. */
async function retryRetriable(what, timeoutMs, action) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    try {
      return await action()
    } catch (error) {
      const protocolError = protocolErrorOf(error)
      if (!protocolError || !protocolError.retriable || Date.now() >= deadline) throw error
      process.stderr.write(`${what}: ${describeError(error)}; retrying\n`)
      await sleep(200)
    }
  }
}

async function waitFor(what, timeoutMs, check) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const last = await check()
    if (last.ok) return
    if (Date.now() >= deadline) throw new ScenarioFailed(`${what} (last: ${last.shown})`)
    await sleep(200)
  }
}

async function adminTopics(ctx) {
  const { topic } = ctx.args
  const newTopic = name => ({ topics: [{ topic: name, numPartitions: M.PARTITIONS, replicationFactor: 1 }] })
  await withAdmin(ctx, async admin => {
    const created = await within(admin.createTopics(newTopic(topic)), CALL_TIMEOUT_MS, `creating ${topic}`)
    if (created !== true) {
      throw new ScenarioFailed(`createTopics(${topic}) returned ${created}; expected true (created)`)
    }
    await waitFor(`metadata never showed ${topic} with ${M.PARTITIONS} partitions`, CALL_TIMEOUT_MS, async () => {
      const partitions = await topicPartitions(admin, topic)
      return { ok: partitions !== null && partitions.size === M.PARTITIONS, shown: partitions && partitions.size }
    })

    // KafkaJS answers TOPIC_ALREADY_EXISTS (36) for every topic of the request with `false` instead of an error.
    const again = await within(admin.createTopics(newTopic(topic)), CALL_TIMEOUT_MS, `creating ${topic} again`)
    if (again !== false) {
      throw new ScenarioFailed(`creating ${topic} again returned ${again}; expected false (TOPIC_ALREADY_EXISTS, 36)`)
    }

    let error
    try {
      await within(admin.createTopics(newTopic('bad/name')), CALL_TIMEOUT_MS, 'creating bad/name')
    } catch (caught) {
      error = caught
    }
    const errors = error && error.name === 'KafkaJSAggregateError' ? error.errors : []
    if (errors.length !== 1 || errors[0].code !== INVALID_TOPIC_EXCEPTION || errors[0].topic !== 'bad/name') {
      throw new ScenarioFailed(`creating bad/name: ${error ? describeError(error) : 'no error'} ` +
        `${JSON.stringify(errors.map(e => [e.topic, e.type, e.code]))}; expected INVALID_TOPIC_EXCEPTION ` +
        `(${INVALID_TOPIC_EXCEPTION}) for bad/name`)
    }

    await within(admin.deleteTopics({ topics: [topic] }), CALL_TIMEOUT_MS, `deleting ${topic}`)
    await waitFor(`${topic} is still in the metadata after deletion`, CALL_TIMEOUT_MS, async () => {
      const partitions = await topicPartitions(admin, topic)
      return { ok: partitions === null, shown: partitions && `${partitions.size} partitions` }
    })
  })
}

// --- consumer groups ------------------------------------------------------------------------------------------

/**
 * A member of the scenario's group: subscribed with fromBeginning (auto.offset.reset=earliest), autoCommit off,
 * heartbeats every 500 ms. Each non-empty batch (one partition's records of one Fetch) is checked record by
 * record and counted once, then committed synchronously (consumer.commitOffsets: the offset after the batch's
 * last record), then the member heartbeats (which is where KafkaJS learns of a rebalance). Its assignment is what
 * its latest GROUP_JOIN event gave it. Failures go to `failures`; KafkaJS would only log an exception thrown here.
 */
async function startMember(ctx, name, tally, failures) {
  const { topic, seed } = ctx.args
  const consumer = ctx.kafka.consumer({
    groupId: G.groupId(topic),
    heartbeatInterval: G.CLASSIC_HEARTBEAT_INTERVAL_MS,
    allowAutoTopicCreation: false,
    maxWaitTimeInMs: MAX_WAIT_TIME_MS,
  })
  consumer.on(consumer.events.GROUP_JOIN, ({ payload }) =>
    tally.noteAssignment(name, payload.memberAssignment[topic] || []))
  consumer.on(consumer.events.CRASH, ({ payload }) =>
    failures.push(new ScenarioFailed(`${name} crashed: ${describeError(payload.error)}`)))
  await within(consumer.connect(), CALL_TIMEOUT_MS, `${name}: consumer.connect()`)
  await within(consumer.subscribe({ topics: [topic], fromBeginning: true }), CALL_TIMEOUT_MS, `${name}: subscribe()`)
  await within(consumer.run({
    autoCommit: false,
    eachBatch: async ({ batch, heartbeat }) => {
      if (batch.isEmpty()) return
      let last
      try {
        for (const message of batch.messages) {
          const record = toRecord(batch.partition, message)
          tally.record(name, record.partition, record.offset)
          const expected = M.roundtripMessage(seed, G.messageIndex(record.partition, record.offset))
          M.checkRecord(expected, record, record.offset)
          last = record.offset
        }
      } catch (error) {
        failures.push(error)
        return
      }
      try {
        await consumer.commitOffsets([{ topic, partition: batch.partition, offset: String(last + 1) }])
      } catch (error) {
        failures.push(new ScenarioFailed(`${name}: commit of partition ${batch.partition} offset ${last + 1} ` +
          `failed: ${describeError(error)}`))
        return
      }
      await heartbeat()
    },
  }), CALL_TIMEOUT_MS, `${name}: consumer.run()`)
  return consumer
}

/** Waits until every expected record arrived and the members' assignments have settled, then (strayWaitMs) a
 * little longer: nothing else may arrive and nothing may change. */
async function consumeInGroup(tally, failures, timeoutMs, strayWaitMs = 0) {
  const deadline = Date.now() + timeoutMs
  let straysUntil = null
  while (failures.length === 0) {
    const done = tally.allReceived() && tally.settled()
    if (straysUntil === null && done) straysUntil = Date.now() + strayWaitMs
    if (straysUntil !== null && Date.now() >= straysUntil) break
    if (straysUntil === null && Date.now() >= deadline) {
      throw new ScenarioFailed(`not done within ${timeoutMs / 1000} s: ${tally.progress()}`)
    }
    await sleep(50)
  }
  if (failures.length > 0) throw failures[0]
  if (!(tally.allReceived() && tally.settled())) {
    throw new ScenarioFailed(`the members' state changed after they had settled: ${tally.progress()}`)
  }
  process.stderr.write(`group: ${tally.progress()}\n`)
}

async function closeMembers(consumers, failures) {
  await Promise.all(consumers.map(consumer => disconnect(consumer, 'group member')))
  if (failures.length > 0) throw failures[0]
}

/** Two members share the topic, committing after every batch; a third that joins after both closed receives
 * exactly the messages produced since (messages.md, "Consumer group scenarios"). */
async function consumerGroup(ctx) {
  const { seed, count } = ctx.args
  await produceMessages(ctx, M.roundtripMessages(seed, count))

  const names = ['member-1', 'member-2']
  const tally = new G.GroupTally(names, G.roundtripPositions(0, count))
  const failures = []
  const members = []
  try {
    // Started together, so that both usually join the group's first generation.
    const started = await Promise.allSettled(names.map(name => startMember(ctx, name, tally, failures)))
    for (const result of started) if (result.status === 'fulfilled') members.push(result.value)
    for (const result of started) if (result.status === 'rejected') throw result.reason
    await consumeInGroup(tally, failures, G.GROUP_CONSUME_TIMEOUT_MS)
  } finally {
    await closeMembers(members.splice(0), failures)
  }

  const resume = M.roundtripMessages(seed, M.CONSUMER_GROUP_RESUME_COUNT, count)
  const producer = await newProducer(ctx)
  let delivered
  try {
    delivered = await sendMessages(producer, ctx.args.topic, resume)
  } finally {
    await disconnect(producer, 'producer')
  }
  for (const message of resume) {
    const [partition, offset] = delivered.get(message.index)
    const expectedOffset = Math.floor(message.index / M.PARTITIONS)
    if (partition !== message.partition || offset !== expectedOffset) {
      throw new ScenarioFailed(`message ${message.index} acknowledged at (partition, offset) (${partition}, ` +
        `${offset}), expected (${message.partition}, ${expectedOffset})`)
    }
  }

  const third = new G.GroupTally(['member-3'], G.roundtripPositions(count, M.CONSUMER_GROUP_RESUME_COUNT))
  try {
    members.push(await startMember(ctx, 'member-3', third, failures))
    await consumeInGroup(third, failures, G.RESUME_CONSUME_TIMEOUT_MS, G.STRAY_WAIT_MS)
  } finally {
    await closeMembers(members, failures)
  }
}

function consumerGroupKip848() {
  throw new ScenarioNotSupported('KafkaJS has no KIP-848 consumer (group.protocol=consumer); it speaks only the ' +
    'classic group protocol')
}

// --- admin-configs-partitions-records ---------------------------------------------------------------------------

// KafkaJS's ConfigSource.TOPIC_CONFIG: the protocol's DYNAMIC_TOPIC_CONFIG (1), a topic override.
const DYNAMIC_TOPIC_CONFIG = 1

/** retention.ms and cleanup.policy of TOPIC as DescribeConfigs shows them: Map name -> {value, source}. */
async function describeTopicConfigs(admin, topic) {
  const names = ['retention.ms', 'cleanup.policy']
  const { resources } = await within(admin.describeConfigs({
    resources: [{ type: kafkajs.ConfigResourceTypes.TOPIC, name: topic, configNames: names }],
    includeSynonyms: false,
  }), CALL_TIMEOUT_MS, `admin.describeConfigs(${topic})`)
  if (resources.length !== 1 || resources[0].resourceName !== topic || resources[0].errorCode !== 0) {
    throw new ScenarioFailed(`describeConfigs(${topic}) answered ${JSON.stringify(resources)}`)
  }
  const entries = new Map(resources[0].configEntries.map(entry =>
    [entry.configName, { value: entry.configValue, source: entry.configSource }]))
  for (const name of names) {
    if (!entries.has(name)) {
      throw new ScenarioFailed(`describeConfigs(${topic}) has no ${name}: ${JSON.stringify([...entries])}`)
    }
  }
  return entries
}

/** AlterConfigs on TOPIC: KafkaJS has no IncrementalAlterConfigs, and AlterConfigs replaces the topic's whole set
 * of overrides with the entries given (none: every override removed). */
async function alterTopicConfigs(admin, topic, entries) {
  const { resources } = await within(admin.alterConfigs({
    resources: [{
      type: kafkajs.ConfigResourceTypes.TOPIC,
      name: topic,
      configEntries: Object.entries(entries).map(([name, value]) => ({ name, value })),
    }],
  }), CALL_TIMEOUT_MS, `admin.alterConfigs(${topic}, ${JSON.stringify(entries)})`)
  if (resources.length !== 1 || resources[0].resourceName !== topic || resources[0].errorCode !== 0) {
    throw new ScenarioFailed(`alterConfigs(${topic}) answered ${JSON.stringify(resources)}`)
  }
}

/** The error code a failed admin call gave (a protocol error somewhere in its chain); fails if it succeeded. */
async function expectAdminError(what, expectedCode, expectedName, call) {
  try {
    await within(call(), CALL_TIMEOUT_MS, what)
  } catch (error) {
    if (error instanceof ScenarioFailed) throw error
    const protocolError = protocolErrorOf(error)
    if (!protocolError || protocolError.code !== expectedCode) {
      throw new ScenarioFailed(`${what} failed with ${describeError(error)}; expected ${expectedName} ` +
        `(${expectedCode})`)
    }
    process.stderr.write(`${what}: ${protocolError.type} (${protocolError.code}) as expected\n`)
    return
  }
  throw new ScenarioFailed(`${what} succeeded; expected ${expectedName} (${expectedCode})`)
}

/** admin.deleteTopicRecords must fail for exactly `partition` with the error code. KafkaJS reports the broker's
 * per-partition errors in a KafkaJSDeleteTopicRecordsError (wrapped in a non-retriable error). */
async function expectDeleteRecordsError(admin, topic, partition, offset, expectedCode, expectedName) {
  const what = `deleteTopicRecords(partition ${partition} before offset ${offset})`
  let error
  try {
    await within(admin.deleteTopicRecords({ topic, partitions: [{ partition, offset: String(offset) }] }),
      CALL_TIMEOUT_MS, what)
  } catch (caught) {
    if (caught instanceof ScenarioFailed) throw caught
    error = caught
  }
  if (error === undefined) throw new ScenarioFailed(`${what} succeeded; expected ${expectedName} (${expectedCode})`)
  const failed = errorChain(error).find(e => Array.isArray(e.partitions))
  const found = failed ? failed.partitions.map(p => [p.partition, p.error && p.error.code]) : []
  if (found.length !== 1 || found[0][0] !== partition || found[0][1] !== expectedCode) {
    throw new ScenarioFailed(`${what} failed with ${describeError(error)} (partition, code) ` +
      `${JSON.stringify(found)}; ` +
      `expected ${expectedName} (${expectedCode}) for partition ${partition}`)
  }
  process.stderr.write(`${what}: ${failed.partitions[0].error.type} (${expectedCode}) as expected\n`)
}

/**
 * messages.md, "Admin scenario": DescribeCluster (KafkaJS reads it from a Metadata response), topic configs
 * (DescribeConfigs, AlterConfigs instead of IncrementalAlterConfigs), DeleteRecords, ListOffsets, a read from the
 * beginning, CreatePartitions. KafkaJS has no DescribeLogDirs: step 4 is skipped.
 */
async function adminConfigsPartitionsRecords(ctx) {
  const { topic, seed } = ctx.args
  await withAdmin(ctx, async admin => {
    // 1. Cluster.
    const cluster = await within(admin.describeCluster(), CALL_TIMEOUT_MS, 'admin.describeCluster()')
    if (cluster.brokers.length !== 1 || cluster.controller !== cluster.brokers[0].nodeId || !cluster.clusterId) {
      throw new ScenarioFailed(`describeCluster() = ${JSON.stringify(cluster)}; expected one broker, which is the ` +
        'controller, and a cluster id')
    }

    // 2. Topic configs.
    const original = await describeTopicConfigs(admin, topic)
    for (const [name, { source }] of original) {
      if (source === DYNAMIC_TOPIC_CONFIG) throw new ScenarioFailed(`${name} is a topic override before any was set`)
    }
    const overrides = { 'retention.ms': '123456', 'cleanup.policy': 'compact' }
    await alterTopicConfigs(admin, topic, overrides)
    const altered = await describeTopicConfigs(admin, topic)
    for (const [name, value] of Object.entries(overrides)) {
      const entry = altered.get(name)
      if (entry.value !== value || entry.source !== DYNAMIC_TOPIC_CONFIG) {
        throw new ScenarioFailed(`after alterConfigs ${name} = ${JSON.stringify(entry)}; expected value ${value}, ` +
          `source DYNAMIC_TOPIC_CONFIG (${DYNAMIC_TOPIC_CONFIG})`)
      }
    }
    await checkOffsets(admin, topic, new Map([[0, [0, 0]]])) // deleteTopicRecords needs the topic's metadata
    await expectDeleteRecordsError(admin, topic, 0, 0, POLICY_VIOLATION, 'POLICY_VIOLATION')
    // AlterConfigs replaces every override: cleanup.policy is given again so that only retention.ms is wrong.
    await expectAdminError('alterConfigs(retention.ms=abc)', INVALID_CONFIG, 'INVALID_CONFIG',
      () => alterTopicConfigs(admin, topic, { ...overrides, 'retention.ms': 'abc' }))
    const unchanged = await describeTopicConfigs(admin, topic)
    if (unchanged.get('retention.ms').value !== '123456' || unchanged.get('cleanup.policy').value !== 'compact') {
      throw new ScenarioFailed(`after the rejected alterConfigs: ${JSON.stringify([...unchanged])}; expected ` +
        'retention.ms=123456 and cleanup.policy=compact')
    }
    await alterTopicConfigs(admin, topic, {})
    const restored = await describeTopicConfigs(admin, topic)
    for (const [name, entry] of original) {
      const now = restored.get(name)
      if (now.value !== entry.value || now.source !== entry.source) {
        throw new ScenarioFailed(`after removing the overrides ${name} = ${JSON.stringify(now)}; expected ` +
          `${JSON.stringify(entry)} as before`)
      }
    }

    // 3. Records.
    const messages = M.roundtripMessages(seed, 30)
    const producer = await newProducer(ctx)
    try {
      M.checkDeliveryOffsets(messages, await sendMessages(producer, topic, messages))
    } finally {
      await disconnect(producer, 'producer')
    }
    const deletions = [{ partition: 0, offset: '5' }, { partition: 1, offset: '-1' }]
    await within(admin.deleteTopicRecords({ topic, partitions: deletions }), CALL_TIMEOUT_MS,
      'deleteTopicRecords(partition 0 before 5, partition 1 before the high watermark)')
    const afterDelete = new Map([[0, [5, 10]], [1, [10, 10]], [2, [0, 10]]])
    await checkOffsets(admin, topic, afterDelete)
    const records = await readPartitions(ctx, afterDelete)
    const remaining = messages.filter(m => m.partition !== 1 && !(m.partition === 0 && m.index < 15))
    M.checkRecordsMatch(remaining, records, new Map([[0, 5]]))
    await expectDeleteRecordsError(admin, topic, 2, 11, OFFSET_OUT_OF_RANGE, 'OFFSET_OUT_OF_RANGE')
    await checkOffsets(admin, topic, afterDelete)

    // 4. Log dirs: KafkaJS has no DescribeLogDirs.
    process.stderr.write('step 4 (DescribeLogDirs) skipped: KafkaJS has no DescribeLogDirs\n')

    // 5. Partitions.
    await within(admin.createPartitions({ topicPartitions: [{ topic, count: 5 }] }), CALL_TIMEOUT_MS,
      'createPartitions(5)')
    const grown = `the metadata never showed partitions 0..4 of ${topic}, each with a leader`
    await waitFor(grown, CALL_TIMEOUT_MS, async () => {
      const partitions = await topicPartitions(admin, topic)
      const shown = partitions && JSON.stringify([...partitions.values()].map(p => [p.partitionId, p.leader]))
      const ok = partitions !== null && partitions.size === 5 &&
        [0, 1, 2, 3, 4].every(p => partitions.has(p) && partitions.get(p).leader >= 0)
      return { ok, shown }
    })
    // The new partitions can be in the metadata a moment before their leader serves them (NOT_LEADER_OR_FOLLOWER,
    // retriable): KafkaJS's fetchTopicOffsets does not retry that itself.
    await retryRetriable('ListOffsets of the new partitions', CALL_TIMEOUT_MS,
      () => checkOffsets(admin, topic, new Map([[3, [0, 0]], [4, [0, 0]]])))
    await expectAdminError('createPartitions(4)', INVALID_PARTITIONS, 'INVALID_PARTITIONS',
      () => admin.createPartitions({ topicPartitions: [{ topic, count: 4 }] }))
    const partitions = await topicPartitions(admin, topic)
    if (partitions === null || partitions.size !== 5) {
      throw new ScenarioFailed(`after the rejected createPartitions(4) ${topic} has ${partitions && partitions.size} ` +
        'partitions; expected 5')
    }
  })
}

// --- log-compaction -----------------------------------------------------------------------------------------

/** Keyed updates and tombstones (value null) to a compacted topic, then re-reads until only each key's latest
 * record is left, every record at the offset its acknowledgement gave (messages.md, "Log compaction"). */
async function logCompaction(ctx) {
  const { topic, seed, count } = ctx.args
  const updates = M.logCompactionUpdates(seed, count)
  const rolls = M.logCompactionRollRecords()
  const producer = await newProducer(ctx)
  let delivered
  try {
    delivered = await sendRecords(producer, topic, updates)
    await sleep(M.LOG_COMPACTION_ROLL_DELAY_MS)
    delivered = delivered.concat(await sendRecords(producer, topic, rolls))
  } finally {
    await disconnect(producer, 'producer')
  }
  const produced = M.checkLogCompactionDeliveries([...updates, ...rolls], delivered)
  const ranges = new Map([...produced].map(([partition, records]) => [partition, [0, records.length]]))
  const deadline = Date.now() + M.LOG_COMPACTION_WAIT_MS
  await withAdmin(ctx, async admin => {
    for (;;) {
      await checkOffsets(admin, topic, ranges)
      const read = await readPartitions(ctx, ranges)
      const consumed = new Map([...read].map(([partition, records]) =>
        [partition, records.map(({ offset, key, value }) => ({ offset, key, value }))]))
      const left = M.checkLogCompaction(produced, consumed)
      if (left === null) return
      if (Date.now() >= deadline) {
        throw new ScenarioFailed(`not compacted within ${M.LOG_COMPACTION_WAIT_MS / 1000} s: ${left}`)
      }
      process.stderr.write(`not compacted yet: ${left}\n`)
      await sleep(M.LOG_COMPACTION_REREAD_INTERVAL_MS)
    }
  })
}

// --- cluster --------------------------------------------------------------------------------------------------

/** The brokers (admin.describeCluster) and TOPIC's partitions (admin.fetchTopicMetadata) as KafkaJS shows them. */
async function clusterMetadata(admin, topic) {
  const { brokers } = await within(admin.describeCluster(), CALL_TIMEOUT_MS, 'admin.describeCluster()')
  const byId = new Map(brokers.map(({ nodeId, host, port }) => [nodeId, [host, port]]))
  const partitions = (await topicPartitions(admin, topic)) || new Map()
  const infos = new Map([...partitions].map(([number, { leader, replicas, isr }]) =>
    [number, { leader, replicas, isr }]))
  return [byId, infos]
}

/** Bootstrapped at one node of a three-broker cluster: the metadata shows the three brokers and TOPIC's partitions
 * with three replicas each, led by three different brokers; then the roundtrip, whose produce and fetch requests
 * must go to each partition's leader (messages.md, "Cluster scenario"). */
async function cluster(ctx) {
  const { topic, bootstrap } = ctx.args
  await withAdmin(ctx, async admin => {
    const deadline = Date.now() + M.CLUSTER_METADATA_WAIT_MS
    for (;;) {
      const [brokers, partitions] = await clusterMetadata(admin, topic)
      try {
        M.checkClusterMetadata(bootstrap, brokers, partitions)
        process.stderr.write(`cluster: brokers ${JSON.stringify([...brokers])}, ` +
          `partitions ${JSON.stringify([...partitions])}\n`)
        return
      } catch (error) {
        if (!(error instanceof ScenarioFailed) || Date.now() >= deadline) throw error
        await sleep(500)
      }
    }
  })
  await roundtrip(ctx)
}

// --- command line ---------------------------------------------------------------------------------------------

const SCENARIO_FUNCTIONS = {
  'roundtrip': ctx => roundtrip(ctx),
  'compression-gzip': compressionScenario('gzip'),
  'compression-snappy': compressionScenario('snappy'),
  'compression-lz4': compressionScenario('lz4'),
  'compression-zstd': compressionScenario('zstd'),
  'message-too-large': messageTooLarge,
  'offset-out-of-range': offsetOutOfRange,
  'list-offsets': listOffsets,
  'admin-topics': adminTopics,
  'idempotent-produce': idempotentProduce,
  'consumer-group': consumerGroup,
  'consumer-group-kip848': consumerGroupKip848,
  'admin-configs-partitions-records': adminConfigsPartitionsRecords,
  'log-compaction': logCompaction,
  'cluster': cluster,
  'produce': producePhase,
  'verify': verify,
}

function defaultCount(scenario) {
  if (scenario.startsWith('compression-')) return M.COMPRESSION_DEFAULT_COUNT
  if (scenario.startsWith('consumer-group')) return M.CONSUMER_GROUP_DEFAULT_COUNT
  if (scenario === 'log-compaction') return M.LOG_COMPACTION_DEFAULT_COUNT
  if (scenario === 'cluster') return M.CLUSTER_DEFAULT_COUNT
  return M.ROUNDTRIP_DEFAULT_COUNT
}

class UsageError extends Error {}

function parseArgs(argv) {
  const options = {}
  for (let i = 0; i < argv.length; i += 2) {
    const name = argv[i]
    if (!['--bootstrap', '--scenario', '--topic', '--count', '--seed'].includes(name) || i + 1 >= argv.length) {
      throw new UsageError(`unexpected argument ${JSON.stringify(name)}`)
    }
    options[name.slice(2)] = argv[i + 1]
  }
  for (const required of ['bootstrap', 'scenario', 'topic']) {
    if (options[required] === undefined) throw new UsageError(`--${required} is required`)
  }
  if (!SCENARIOS.includes(options.scenario)) throw new UsageError(`unknown scenario ${options.scenario}`)
  const integer = (text, name, max) => {
    if (!/^\d+$/.test(text) || Number(text) > max) throw new UsageError(`--${name} must be an integer in 0..${max}`)
    return Number(text)
  }
  return {
    bootstrap: options.bootstrap,
    scenario: options.scenario,
    topic: options.topic,
    count: options.count === undefined ? defaultCount(options.scenario) : integer(options.count, 'count', 2 ** 31 - 1),
    seed: options.seed === undefined ? M.DEFAULT_SEED : integer(options.seed, 'seed', 2 ** 31 - 1),
  }
}

async function main(argv) {
  loadKafkaJS()
  if (argv.length === 1 && argv[0] === '--version') {
    process.stdout.write(`${CLIENT_NAME} ${requireTool('kafkajs/package.json').version}\n`)
    return 0
  }
  let args
  try {
    args = parseArgs(argv)
  } catch (error) {
    if (!(error instanceof UsageError)) throw error
    process.stderr.write(`usage: run --bootstrap HOST:PORT --scenario NAME --topic TOPIC [--count N] [--seed S]\n` +
      `       run --version\nFAIL: ${error.message}\n`)
    return 1
  }
  const overall = setTimeout(() => {
    process.stderr.write(`FAIL: driver exceeded its overall timeout of ${OVERALL_TIMEOUT_MS / 1000} s\n`)
    process.exit(1)
  }, OVERALL_TIMEOUT_MS)
  const started = Date.now()
  const where = `${CLIENT_NAME} ${args.scenario} on ${args.bootstrap} topic ${args.topic}`
  try {
    await SCENARIO_FUNCTIONS[args.scenario]({ args, kafka: newKafka(args) })
  } catch (error) {
    if (error instanceof ScenarioNotSupported) {
      process.stderr.write(`n/a: ${CLIENT_NAME} ${args.scenario}: ${error.message}\n`)
      return 2
    }
    if (error instanceof ScenarioFailed) {
      process.stderr.write(`FAIL: ${where}: ${error.message}\n`)
      return 1
    }
    process.stderr.write(`FAIL: ${where}: unexpected error ${describeError(error)}\n${error && error.stack}\n`)
    return 1
  } finally {
    clearTimeout(overall)
  }
  process.stderr.write(`ok: ${CLIENT_NAME} ${args.scenario} (${((Date.now() - started) / 1000).toFixed(1)} s)\n`)
  return 0
}

// KafkaJS can leave a promise of a connection it is closing rejected; that is not the scenario's outcome.
process.on('unhandledRejection', reason => {
  process.stderr.write(`warning: unhandled rejection: ${describeError(reason)}\n`)
})

main(process.argv.slice(2)).then(
  code => process.exit(code),
  error => {
    process.stderr.write(`FAIL: ${error && error.message}\n${error && error.stack}\n`)
    process.exit(1)
  })
