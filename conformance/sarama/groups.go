package main

// consumer-group (conformance/common/messages.md, "Consumer group scenarios"): two members of a new group
// share the topic, committing after every batch; a third member that joins after both closed receives
// exactly the messages produced since. sarama has no KIP-848 consumer.

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/IBM/sarama"

	c "skein.local/conformance"
)

// batchLimit is the most records a member takes from a claim before it commits them.
const batchLimit = 500

// member is one sarama ConsumerGroup running its Consume loop in its own goroutine.
type member struct {
	name    string
	group   sarama.ConsumerGroup
	cancel  context.CancelFunc
	done    chan struct{}
	mu      sync.Mutex
	failure error
}

func (m *member) fail(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failure == nil {
		m.failure = err
	}
}

func (m *member) err() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.failure
}

// close leaves the group (ConsumerGroup.Close) and waits for the Consume loop to end.
func (m *member) close() {
	if err := m.group.Close(); err != nil {
		m.fail(c.Failf("%s: close failed: %v", m.name, err))
	}
	m.cancel()
	select {
	case <-m.done:
	case <-time.After(c.CallTimeout):
		m.fail(c.Failf("%s: the Consume loop did not end within %s of Close", m.name, c.CallTimeout))
	}
}

// handler is the member's sarama.ConsumerGroupHandler.
type handler struct {
	args  c.Args
	m     *member
	tally *c.GroupTally
}

// Setup records the session's claims as the member's assignment.
func (h *handler) Setup(session sarama.ConsumerGroupSession) error {
	h.tally.NoteAssignment(h.m.name, session.Claims()[h.args.Topic])
	return nil
}

// Cleanup: the session ended (a rebalance or close); the member holds nothing until the next Setup.
func (h *handler) Cleanup(sarama.ConsumerGroupSession) error {
	h.tally.NoteAssignment(h.m.name, nil)
	return nil
}

// ConsumeClaim takes what the claim has ready (up to batchLimit records), checks each record against the
// tally and the roundtrip message at its position, marks the last one and commits synchronously
// (session.Commit; a failed commit arrives on the group's Errors channel).
func (h *handler) ConsumeClaim(session sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for {
		var batch []*sarama.ConsumerMessage
		select {
		case m, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			batch = append(batch, m)
		case <-session.Context().Done():
			return nil
		}
	drain:
		for len(batch) < batchLimit {
			select {
			case m, ok := <-claim.Messages():
				if !ok {
					break drain
				}
				batch = append(batch, m)
			default:
				break drain
			}
		}
		for _, m := range batch {
			if err := h.tally.Record(h.m.name, m.Partition, m.Offset); err != nil {
				h.m.fail(err)
				return err
			}
			message := c.RoundtripMessage(h.args.Seed, c.MessageIndex(m.Partition, m.Offset))
			if err := c.CheckRecord(message, consumed(m), m.Offset); err != nil {
				h.m.fail(err)
				return err
			}
		}
		session.MarkMessage(batch[len(batch)-1], "")
		session.Commit()
	}
}

// newMember joins the scenario's group with the classic protocol: Range assignment (sarama's default),
// auto commit off, the oldest offset when the group has no commit, a 500 ms heartbeat interval.
func newMember(args c.Args, name string, tally *c.GroupTally) (*member, error) {
	config := newConfig()
	config.Consumer.Group.Heartbeat.Interval = c.ClassicHeartbeatInterval
	config.Consumer.Offsets.Initial = sarama.OffsetOldest
	config.Consumer.Offsets.AutoCommit.Enable = false
	config.Consumer.Return.Errors = true
	group, err := sarama.NewConsumerGroup([]string{args.Bootstrap}, c.GroupID(args.Topic), config)
	if err != nil {
		return nil, c.Failf("%s: cannot create the consumer group: %v", name, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &member{name: name, group: group, cancel: cancel, done: make(chan struct{})}
	go func() {
		for err := range group.Errors() {
			m.fail(c.Failf("%s: consumer group error: %v", name, err))
		}
	}()
	go func() {
		defer close(m.done)
		h := &handler{args: args, m: m, tally: tally}
		// Consume returns at every rebalance; it is called again until the member is closed.
		for ctx.Err() == nil {
			err := group.Consume(ctx, []string{args.Topic}, h)
			if errors.Is(err, sarama.ErrClosedConsumerGroup) {
				return
			}
			if err != nil {
				m.fail(c.Failf("%s: Consume failed: %v", name, err))
				return
			}
		}
	}()
	return m, nil
}

// waitInGroup waits until every expected record arrived and the assignments have settled, then
// (strayWait) a little longer; any member's failure ends it.
func waitInGroup(members []*member, tally *c.GroupTally, limit, strayWait time.Duration) error {
	deadline := time.Now().Add(limit)
	var straysUntil time.Time
	for {
		for _, m := range members {
			if err := m.err(); err != nil {
				return err
			}
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
		time.Sleep(20 * time.Millisecond)
	}
	c.Logf("group: %s", tally.Progress())
	return nil
}

// closeAll closes the members and returns the first failure any of them reported.
func closeAll(members []*member) error {
	for _, m := range members {
		m.close()
	}
	for _, m := range members {
		if err := m.err(); err != nil {
			return err
		}
	}
	return nil
}

func consumerGroup(args c.Args) error {
	producer, err := newProducer(args, producerConfig(sarama.CompressionNone))
	if err != nil {
		return err
	}
	defer producer.Close()
	if err := produceMessages(producer, args.Topic, c.RoundtripMessages(args.Seed, 0, args.Count), [c.Partitions]int64{}); err != nil {
		return err
	}

	tally := c.NewGroupTally([]string{"member-1", "member-2"}, 0, args.Count)
	var members []*member
	for _, name := range []string{"member-1", "member-2"} {
		m, err := newMember(args, name, tally)
		if err != nil {
			_ = closeAll(members)
			return err
		}
		members = append(members, m)
	}
	waited := waitInGroup(members, tally, c.GroupConsumeTimeout, 0)
	closed := closeAll(members)
	if err := errors.Join(waited, closed); err != nil {
		return err
	}

	resume := c.RoundtripMessages(args.Seed, args.Count, c.ConsumerGroupResumeCount)
	if err := produceMessages(producer, args.Topic, resume, c.FirstOffsets(args.Count)); err != nil {
		return err
	}
	tally = c.NewGroupTally([]string{"member-3"}, args.Count, c.ConsumerGroupResumeCount)
	third, err := newMember(args, "member-3", tally)
	if err != nil {
		return err
	}
	waited = waitInGroup([]*member{third}, tally, c.ResumeConsumeTimeout, c.StrayWait)
	return errors.Join(waited, closeAll([]*member{third}))
}
