package main

// consumer-group and consumer-group-kip848 (conformance/common/messages.md, "Consumer group scenarios"): two
// members of a new group share the topic, committing after every poll batch; a third member that joins after
// both closed receives exactly the messages produced since.

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	c "skein.local/conformance"
)

// batchLimit is the most records one PollRecords call hands over before the member commits them.
const batchLimit = 500

type member struct {
	name   string
	client *kgo.Client
	writes *writeCounter
	mu     sync.Mutex
	held   map[int32]bool
}

func (m *member) partitions() []int32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	var held []int32
	for p := range m.held {
		held = append(held, p)
	}
	slices.Sort(held)
	return held
}

func (m *member) change(topic string, partitions map[string][]int32, assigned bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, p := range partitions[topic] {
		if assigned {
			m.held[p] = true
		} else {
			delete(m.held, p)
		}
	}
}

// newMember subscribes a member to TOPIC in the scenario's group: no auto commit, the earliest offset when
// the group has no commit, rebalances held back while a polled batch is processed (BlockRebalanceOnPoll,
// released after its commit), the assignment followed through the OnPartitions* callbacks. "classic" uses
// kgo's default balancers (cooperative-sticky) and a 500 ms heartbeat interval; "consumer" opts into KIP-848
// with ServerSideBalancer and the sticky balancer (the broker's "uniform" assignor).
func newMember(args c.Args, name, protocol string) (*member, error) {
	m := &member{name: name, writes: newWriteCounter(), held: map[int32]bool{}}
	opts := append(baseOpts(args.Bootstrap),
		kgo.ConsumerGroup(c.GroupID(args.Topic)),
		kgo.ConsumeTopics(args.Topic),
		kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.BlockRebalanceOnPoll(),
		kgo.FetchMaxWait(500*time.Millisecond),
		kgo.WithHooks(m.writes),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, assigned map[string][]int32) {
			m.change(args.Topic, assigned, true)
		}),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, revoked map[string][]int32) {
			m.change(args.Topic, revoked, false)
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
			m.change(args.Topic, lost, false)
		}),
	)
	switch protocol {
	case "classic":
		opts = append(opts, kgo.HeartbeatInterval(c.ClassicHeartbeatInterval))
	case "consumer":
		opts = append(opts, kgo.ServerSideBalancer(), kgo.Balancers(kgo.StickyBalancer()))
	}
	client, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, c.Failf("%s: cannot create the group member: %v", name, err)
	}
	m.client = client
	return m, nil
}

// checkProtocol requires the member to have spoken the scenario's group protocol: kgo falls back to the
// classic protocol by itself when the broker lacks KIP-848 (ConsumerGroupHeartbeat v1).
func (m *member) checkProtocol(protocol string) error {
	joins, heartbeats := m.writes.count(apiJoinGroup), m.writes.count(apiConsumerGroupHeartbeat)
	c.Logf("%s sent %d JoinGroup and %d ConsumerGroupHeartbeat requests", m.name, joins, heartbeats)
	switch {
	case protocol == "classic" && (joins == 0 || heartbeats != 0):
		return c.Failf("%s sent %d JoinGroup and %d ConsumerGroupHeartbeat requests, expected the classic protocol", m.name, joins, heartbeats)
	case protocol == "consumer" && (joins != 0 || heartbeats == 0):
		return c.Failf("%s sent %d JoinGroup and %d ConsumerGroupHeartbeat requests, expected the KIP-848 protocol (kgo falls back to classic when the broker lacks ConsumerGroupHeartbeat v1)",
			m.name, joins, heartbeats)
	}
	return nil
}

// close leaves the group and closes the client.
func (m *member) close() {
	m.client.CloseAllowingRebalance()
}

// pollBatch takes up to batchLimit records from one member, waiting up to 100 ms; checks each against the
// tally and the roundtrip message at its position, commits them synchronously, then lets a pending
// rebalance go ahead.
func pollBatch(args c.Args, m *member, tally *c.GroupTally) error {
	defer m.client.AllowRebalance()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	fetches := m.client.PollRecords(ctx, batchLimit)
	cancel()
	var failure error
	fetches.EachError(func(topic string, partition int32, err error) {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			return
		}
		failure = c.Failf("%s: fetch error on %s partition %d: %v", m.name, topic, partition, err)
	})
	if failure != nil {
		return failure
	}
	batch := fetches.Records()
	for _, r := range batch {
		if err := tally.Record(m.name, r.Partition, r.Offset); err != nil {
			return err
		}
		message := c.RoundtripMessage(args.Seed, c.MessageIndex(r.Partition, r.Offset))
		if err := c.CheckRecord(message, consumed(r), r.Offset); err != nil {
			return err
		}
	}
	if len(batch) > 0 {
		commitCtx, commitCancel := callContext()
		defer commitCancel()
		// CommitRecords commits, per partition, the offset after the batch's last record of it.
		if err := m.client.CommitRecords(commitCtx, batch...); err != nil {
			return c.Failf("%s: commit of %d records failed: %v", m.name, len(batch), err)
		}
	}
	return nil
}

// consumeInGroup polls the members in turn until every expected record arrived and their assignments have
// settled, then (strayWait) a little longer.
func consumeInGroup(args c.Args, members []*member, tally *c.GroupTally, limit, strayWait time.Duration) error {
	deadline := time.Now().Add(limit)
	var straysUntil time.Time
	for {
		for _, m := range members {
			if err := pollBatch(args, m, tally); err != nil {
				return err
			}
			tally.NoteAssignment(m.name, m.partitions())
		}
		now := time.Now()
		if straysUntil.IsZero() && tally.AllReceived() && tally.Settled() {
			if strayWait == 0 {
				break
			}
			straysUntil = now.Add(strayWait)
		}
		if !straysUntil.IsZero() && now.After(straysUntil) {
			break
		}
		if straysUntil.IsZero() && now.After(deadline) {
			return c.Failf("not done within %s: %s", limit, tally.Progress())
		}
	}
	c.Logf("group: %s", tally.Progress())
	return nil
}

// consumerGroup: `protocol` "classic" (consumer-group) or "consumer" (consumer-group-kip848).
func consumerGroup(args c.Args, protocol string) error {
	producer, err := newProducer(args, "none")
	if err != nil {
		return err
	}
	defer producer.Close()
	if _, err := produceMessages(producer, args.Topic, c.RoundtripMessages(args.Seed, 0, args.Count), [c.Partitions]int64{}); err != nil {
		return err
	}

	var members []*member
	defer func() {
		for _, m := range members {
			m.close()
		}
	}()
	for _, name := range []string{"member-1", "member-2"} {
		m, err := newMember(args, name, protocol)
		if err != nil {
			return err
		}
		members = append(members, m)
	}
	tally := c.NewGroupTally([]string{"member-1", "member-2"}, 0, args.Count)
	if err := consumeInGroup(args, members, tally, c.GroupConsumeTimeout, 0); err != nil {
		return err
	}
	closed := members
	members = nil
	for _, m := range closed {
		m.close()
	}
	for _, m := range closed {
		if err := m.checkProtocol(protocol); err != nil {
			return err
		}
	}

	resume := c.RoundtripMessages(args.Seed, args.Count, c.ConsumerGroupResumeCount)
	if _, err := produceMessages(producer, args.Topic, resume, c.FirstOffsets(args.Count)); err != nil {
		return err
	}
	third, err := newMember(args, "member-3", protocol)
	if err != nil {
		return err
	}
	members = []*member{third}
	tally = c.NewGroupTally([]string{"member-3"}, args.Count, c.ConsumerGroupResumeCount)
	if err := consumeInGroup(args, members, tally, c.ResumeConsumeTimeout, c.StrayWait); err != nil {
		return err
	}
	return third.checkProtocol(protocol)
}
