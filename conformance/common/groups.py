"""The consumer-group scenarios' bookkeeping, shared by the Python drivers (messages.md, "Consumer group
scenarios", is the normative description): the group id, and a tally of which member received each
(partition, offset) and which partitions each member holds."""

from __future__ import annotations

from .messages import PARTITIONS, ScenarioFailed

# Matrix scenario -> the group.protocol its consumers use.
GROUP_PROTOCOLS = {"consumer-group": "classic", "consumer-group-kip848": "consumer"}
# Classic members learn of a rebalance through their heartbeat; a short interval lets the first member
# notice the second one quickly. (With group.protocol=consumer the broker sets the interval.)
CLASSIC_HEARTBEAT_INTERVAL_MS = 500
# How long the two first members may take to receive every message and settle their assignments.
GROUP_CONSUME_TIMEOUT_SECONDS = 60.0
# How long the resuming member may take to receive the messages produced after the first two closed.
RESUME_CONSUME_TIMEOUT_SECONDS = 30.0
# After the resuming member received its messages it keeps polling this long: nothing more may arrive.
STRAY_WAIT_SECONDS = 1.0
ALL_PARTITIONS = frozenset(range(PARTITIONS))


def group_id(topic: str) -> str:
    """The scenario's group: new for every topic, so no earlier run left offsets in it."""
    return f"{topic}-group"


def message_position(index: int) -> tuple[int, int]:
    """(partition, offset) of roundtrip message `index` in a topic that holds messages 0, 1, 2, ... in order."""
    return index % PARTITIONS, index // PARTITIONS


def message_index(partition: int, offset: int) -> int:
    return partition + PARTITIONS * offset


def roundtrip_positions(first: int, count: int) -> dict[tuple[int, int], int]:
    """(partition, offset) -> message index for messages first..first+count-1 of a topic that holds messages
    0, 1, 2, ... in order."""
    return {message_position(index): index for index in range(first, first + count)}


class GroupTally:
    """What the members of one group received while the messages at `expected` ((partition, offset) ->
    message index) were to be consumed: each of them exactly once, by some member, and nothing else."""

    def __init__(self, members: list[str], expected: dict[tuple[int, int], int]):
        self.members = list(members)
        self.expected = dict(expected)
        self.first, self.last = min(expected.values()), max(expected.values())
        self.receiver: dict[tuple[int, int], str] = {}
        self.assignment: dict[str, frozenset[int]] = {member: frozenset() for member in members}
        self.ever_assigned: dict[str, bool] = {member: False for member in members}

    def record(self, member: str, partition: int, offset: int) -> None:
        position = (partition, offset)
        if position in self.receiver:
            raise ScenarioFailed(f"partition {partition} offset {offset} was delivered twice: to "
                                 f"{self.receiver[position]} and to {member}")
        if position not in self.expected:
            raise ScenarioFailed(f"{member} received partition {partition} offset {offset}; only messages "
                                 f"{self.first}..{self.last} were to be consumed now")
        self.receiver[position] = member

    def note_assignment(self, member: str, partitions) -> None:
        self.assignment[member] = frozenset(partitions)
        if self.assignment[member]:
            self.ever_assigned[member] = True

    def all_received(self) -> bool:
        return len(self.receiver) == len(self.expected)

    def settled(self) -> bool:
        """Every member holds at least one partition, no partition is held twice, and together they hold
        partitions 0..PARTITIONS-1."""
        held = [self.assignment[member] for member in self.members]
        disjoint = sum(len(partitions) for partitions in held) == len(frozenset().union(*held))
        return all(held) and disjoint and frozenset().union(*held) == ALL_PARTITIONS

    def received_by(self, member: str) -> int:
        return sum(1 for receiver in self.receiver.values() if receiver == member)

    def progress(self) -> str:
        """One line for failure messages and the driver's log."""
        members = ", ".join(
            f"{member}: {self.received_by(member)} records, assignment {sorted(self.assignment[member])}"
            f"{'' if self.ever_assigned[member] else ' (never assigned any partition)'}"
            for member in self.members)
        return f"{len(self.receiver)} of {len(self.expected)} records received ({members})"
