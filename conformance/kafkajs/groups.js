'use strict'
/**
 * The consumer-group scenarios' bookkeeping (messages.md, "Consumer group scenarios"; conformance/common/groups.py
 * is the Python implementation this mirrors): the group id, and a tally of which member received each
 * (partition, offset) and which partitions each member holds.
 */

const { PARTITIONS, ScenarioFailed } = require('./messages')

/** Classic members learn of a rebalance through their heartbeat; a short interval lets the first member notice
 * the second one quickly. */
const CLASSIC_HEARTBEAT_INTERVAL_MS = 500
/** How long the two first members may take to receive every message and settle their assignments. */
const GROUP_CONSUME_TIMEOUT_MS = 60_000
/** How long the resuming member may take to receive the messages produced after the first two closed. */
const RESUME_CONSUME_TIMEOUT_MS = 30_000
/** After the resuming member received its messages it keeps consuming this long: nothing more may arrive. */
const STRAY_WAIT_MS = 1_000

/** The scenario's group: new for every topic, so no earlier run left offsets in it. */
const groupId = topic => `${topic}-group`

const messageIndex = (partition, offset) => partition + PARTITIONS * offset

/** `${partition}:${offset}` -> message index for messages first..first+count-1 of a topic that holds messages
 * 0, 1, 2, ... in order. */
function roundtripPositions(first, count) {
  const positions = new Map()
  for (let index = first; index < first + count; index++) {
    positions.set(`${index % PARTITIONS}:${Math.floor(index / PARTITIONS)}`, index)
  }
  return positions
}

/** What the members of one group received while the messages at `expected` were to be consumed: each of them
 * exactly once, by some member, and nothing else. */
class GroupTally {
  constructor(members, expected) {
    this.members = [...members]
    this.expected = expected
    const indexes = [...expected.values()]
    this.first = Math.min(...indexes)
    this.last = Math.max(...indexes)
    this.receiver = new Map()
    this.assignment = new Map(members.map(member => [member, new Set()]))
    this.everAssigned = new Map(members.map(member => [member, false]))
  }

  record(member, partition, offset) {
    const position = `${partition}:${offset}`
    if (this.receiver.has(position)) {
      throw new ScenarioFailed(`partition ${partition} offset ${offset} was delivered twice: to ` +
        `${this.receiver.get(position)} and to ${member}`)
    }
    if (!this.expected.has(position)) {
      throw new ScenarioFailed(`${member} received partition ${partition} offset ${offset}; only messages ` +
        `${this.first}..${this.last} were to be consumed now`)
    }
    this.receiver.set(position, member)
  }

  noteAssignment(member, partitions) {
    this.assignment.set(member, new Set(partitions))
    if (partitions.length > 0) this.everAssigned.set(member, true)
  }

  allReceived() {
    return this.receiver.size === this.expected.size
  }

  /** Every member holds at least one partition, no partition is held twice, and together they hold
   * partitions 0..PARTITIONS-1. */
  settled() {
    const held = this.members.map(member => this.assignment.get(member))
    const union = new Set(held.flatMap(partitions => [...partitions]))
    const total = held.reduce((sum, partitions) => sum + partitions.size, 0)
    return held.every(partitions => partitions.size > 0) && total === union.size && union.size === PARTITIONS &&
      [...Array(PARTITIONS).keys()].every(partition => union.has(partition))
  }

  receivedBy(member) {
    let count = 0
    for (const receiver of this.receiver.values()) if (receiver === member) count++
    return count
  }

  /** One line for failure messages and the driver's log. */
  progress() {
    const members = this.members.map(member => {
      const assignment = [...this.assignment.get(member)].sort((a, b) => a - b)
      const never = this.everAssigned.get(member) ? '' : ' (never assigned any partition)'
      return `${member}: ${this.receivedBy(member)} records, assignment [${assignment.join(', ')}]${never}`
    })
    return `${this.receiver.size} of ${this.expected.size} records received (${members.join(', ')})`
  }
}

module.exports = {
  CLASSIC_HEARTBEAT_INTERVAL_MS,
  GROUP_CONSUME_TIMEOUT_MS,
  RESUME_CONSUME_TIMEOUT_MS,
  STRAY_WAIT_MS,
  GroupTally,
  groupId,
  messageIndex,
  roundtripPositions,
}
