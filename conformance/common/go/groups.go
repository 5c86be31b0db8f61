package conformance

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// The consumer-group scenarios (messages.md, "Consumer group scenarios"; groups.py).
const (
	// ConsumerGroupResumeCount messages are produced after the first two members closed.
	ConsumerGroupResumeCount int64 = 10
	// ClassicHeartbeatInterval: a classic member learns of a rebalance through its heartbeat.
	ClassicHeartbeatInterval = 500 * time.Millisecond
	// GroupConsumeTimeout bounds how long the first two members may take to receive every message and settle.
	GroupConsumeTimeout = 60 * time.Second
	// ResumeConsumeTimeout bounds how long the resuming member may take.
	ResumeConsumeTimeout = 30 * time.Second
	// StrayWait: after the resuming member received its messages it keeps polling this long.
	StrayWait = time.Second
)

// GroupID is the scenario's group: new for every topic.
func GroupID(topic string) string {
	return topic + "-group"
}

// MessageIndex is the roundtrip message at `offset` of `partition` in a topic holding messages 0, 1, 2, ...
func MessageIndex(partition int32, offset int64) int64 {
	return int64(partition) + Partitions*offset
}

// FirstOffsets are the offsets at which messages from `first` on land in a topic holding messages
// 0 .. first-1: partition p holds the messages i < first with i % 3 == p.
func FirstOffsets(first int64) [Partitions]int64 {
	var offsets [Partitions]int64
	for p := range offsets {
		offsets[p] = (first + Partitions - 1 - int64(p)) / Partitions
	}
	return offsets
}

type position struct {
	partition int32
	offset    int64
}

// GroupTally records which member received each (partition, offset) of messages first .. first+count-1 and
// which partitions each member holds. Safe for concurrent use.
type GroupTally struct {
	mu           sync.Mutex
	members      []string
	first, count int64
	expected     map[position]bool
	receiver     map[position]string
	assignment   map[string][]int32
	everAssigned map[string]bool
}

// NewGroupTally tallies messages first .. first+count-1 among `members`.
func NewGroupTally(members []string, first, count int64) *GroupTally {
	tally := &GroupTally{
		members:      members,
		first:        first,
		count:        count,
		expected:     make(map[position]bool),
		receiver:     make(map[position]string),
		assignment:   make(map[string][]int32),
		everAssigned: make(map[string]bool),
	}
	for i := first; i < first+count; i++ {
		tally.expected[position{int32(i % Partitions), i / Partitions}] = true
	}
	return tally
}

// Record counts one delivery: a second delivery of the same (partition, offset), or one outside the
// expected messages, fails the scenario.
func (t *GroupTally) Record(member string, partition int32, offset int64) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	at := position{partition, offset}
	if earlier, ok := t.receiver[at]; ok {
		return Failf("partition %d offset %d was delivered twice: to %s and to %s", partition, offset, earlier, member)
	}
	if !t.expected[at] {
		return Failf("%s received partition %d offset %d (message %d); only messages %d..%d were to be consumed now",
			member, partition, offset, MessageIndex(partition, offset), t.first, t.first+t.count-1)
	}
	t.receiver[at] = member
	return nil
}

// NoteAssignment records the partitions `member` holds now.
func (t *GroupTally) NoteAssignment(member string, partitions []int32) {
	t.mu.Lock()
	defer t.mu.Unlock()
	held := slices.Clone(partitions)
	slices.Sort(held)
	t.assignment[member] = held
	if len(held) > 0 {
		t.everAssigned[member] = true
	}
}

// AllReceived: every expected message arrived.
func (t *GroupTally) AllReceived() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.receiver) == len(t.expected)
}

// Settled: every member holds at least one partition, none is held twice, together they hold 0..2.
func (t *GroupTally) Settled() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	held := make(map[int32]int)
	for _, member := range t.members {
		if len(t.assignment[member]) == 0 {
			return false
		}
		for _, partition := range t.assignment[member] {
			held[partition]++
		}
	}
	if len(held) != Partitions {
		return false
	}
	for partition, times := range held {
		if partition < 0 || partition >= Partitions || times != 1 {
			return false
		}
	}
	return true
}

// Assignment is the partitions `member` holds now.
func (t *GroupTally) Assignment(member string) []int32 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.assignment[member])
}

// Progress is one line for failure messages and the driver's log.
func (t *GroupTally) Progress() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	parts := make([]string, 0, len(t.members))
	for _, member := range t.members {
		received := 0
		for _, receiver := range t.receiver {
			if receiver == member {
				received++
			}
		}
		never := ""
		if !t.everAssigned[member] {
			never = " (never assigned any partition)"
		}
		parts = append(parts, fmt.Sprintf("%s: %d records, assignment %v%s", member, received, t.assignment[member], never))
	}
	return fmt.Sprintf("%d of %d records received (%s)", len(t.receiver), len(t.expected), strings.Join(parts, ", "))
}
