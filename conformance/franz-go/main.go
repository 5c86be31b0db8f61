// The franz-go conformance driver: runs one scenario of conformance/README.md with github.com/twmb/franz-go
// (kgo for producing and consuming, kadm for admin requests).
//
//	run --bootstrap HOST:PORT --scenario NAME --topic TOPIC [--count N] [--seed S]
//	run --version
package main

import (
	"context"
	"errors"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	c "skein.local/conformance"
)

func main() {
	c.Main("franz-go", version(), map[string]func(c.Args) error{
		"roundtrip":                        func(a c.Args) error { return roundtrip(a, "none") },
		"compression-gzip":                 func(a c.Args) error { return roundtrip(a, "gzip") },
		"compression-snappy":               func(a c.Args) error { return roundtrip(a, "snappy") },
		"compression-lz4":                  func(a c.Args) error { return roundtrip(a, "lz4") },
		"compression-zstd":                 func(a c.Args) error { return roundtrip(a, "zstd") },
		"message-too-large":                messageTooLarge,
		"offset-out-of-range":              offsetOutOfRange,
		"list-offsets":                     listOffsets,
		"admin-topics":                     adminTopics,
		"idempotent-produce":               idempotentProduce,
		"consumer-group":                   func(a c.Args) error { return consumerGroup(a, "classic") },
		"consumer-group-kip848":            func(a c.Args) error { return consumerGroup(a, "consumer") },
		"admin-configs-partitions-records": adminConfigsPartitionsRecords,
		"log-compaction":                   logCompaction,
		"cluster":                          cluster,
		"produce":                          func(a c.Args) error { return produce(a, "none") },
		"verify":                           verify,
	})
}

// version is "1.22.3 (kadm 1.20.0)": the module versions compiled in (go.mod pins them).
func version() string {
	versions := map[string]string{}
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range info.Deps {
			versions[dep.Path] = strings.TrimPrefix(dep.Version, "v")
		}
	}
	return versions["github.com/twmb/franz-go"] + " (kadm " + versions["github.com/twmb/franz-go/pkg/kadm"] + ")"
}

const clientID = "skein-conformance-franz-go"

// callContext bounds one client call.
func callContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), c.CallTimeout)
}

func baseOpts(bootstrap string) []kgo.Opt {
	return []kgo.Opt{
		kgo.SeedBrokers(bootstrap),
		kgo.ClientID(clientID),
		kgo.DialTimeout(10 * time.Second),
		kgo.RetryTimeout(c.CallTimeout),
	}
}

// newProducer is a plain producer: acks=all, no idempotence, one produce request in flight per broker (so
// that a retried request cannot reorder records), no compression unless given, records to the partition
// they name. `extra` options come last and win. No RecordDeliveryTimeout: kgo measures a record's age from
// its Timestamp, and the scenarios' timestamps are from 2023 (every record would time out at once); the
// context of each ProduceSync call bounds the wait instead.
func newProducer(args c.Args, compression string, extra ...kgo.Opt) (*kgo.Client, error) {
	codec, err := compressionCodec(compression)
	if err != nil {
		return nil, err
	}
	opts := append(baseOpts(args.Bootstrap),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.DisableIdempotentWrite(),
		kgo.MaxProduceRequestsInflightPerBroker(1),
		kgo.ProducerBatchCompression(codec),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProduceRequestTimeout(10*time.Second),
	)
	opts = append(opts, extra...)
	client, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, c.Failf("cannot create the producer: %v", err)
	}
	return client, nil
}

func compressionCodec(name string) (kgo.CompressionCodec, error) {
	switch name {
	case "none":
		return kgo.NoCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	}
	return kgo.NoCompression(), c.Failf("unknown compression %q", name)
}

// compressionAttr is the codec number a record's attributes show (RecordAttrs.CompressionType).
var compressionAttr = map[string]uint8{"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}

// newAdmin is a kadm client. kadm answers metadata questions from the client's metadata cache, refreshed at
// most every MetadataMinAge (5 s by default): 250 ms lets the loops that wait for a metadata change see it
// promptly.
func newAdmin(args c.Args) (*kadm.Client, *kgo.Client, error) {
	client, err := kgo.NewClient(append(baseOpts(args.Bootstrap), kgo.MetadataMinAge(250*time.Millisecond))...)
	if err != nil {
		return nil, nil, c.Failf("cannot create the admin client: %v", err)
	}
	admin := kadm.NewClient(client)
	admin.SetTimeoutMillis(int32(c.CallTimeout / time.Millisecond))
	return admin, client, nil
}

func record(topic string, m c.Message) *kgo.Record {
	r := &kgo.Record{
		Topic:     topic,
		Partition: m.Partition,
		Key:       m.Key,
		Value:     m.Value,
		Timestamp: time.UnixMilli(m.TimestampMs),
	}
	for _, h := range m.Headers {
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
	}
	return r
}

// produceRecords sends the records in order with ProduceSync and returns each one's acknowledgement
// (in input order), failing on any record error.
func produceRecords(client *kgo.Client, records []*kgo.Record) ([]c.Ack, error) {
	ctx, cancel := callContext()
	defer cancel()
	position := make(map[*kgo.Record]int, len(records))
	for n, r := range records {
		position[r] = n
	}
	results := client.ProduceSync(ctx, records...)
	acks := make([]c.Ack, len(records))
	acked := 0
	for _, result := range results {
		n, ok := position[result.Record]
		if !ok {
			return nil, c.Failf("a produce result for a record that was not sent")
		}
		if result.Err != nil {
			return nil, c.Failf("record %d (partition %d) was not acknowledged: %v", n, records[n].Partition, result.Err)
		}
		acks[n] = c.Ack{Partition: result.Record.Partition, Offset: result.Record.Offset}
		acked++
	}
	if acked != len(records) {
		return nil, c.Failf("%d records sent, %d produce results", len(records), acked)
	}
	return acks, nil
}

// produceMessages sends `messages` in order and requires each partition's acknowledgements at first[p],
// first[p]+1, ... in send order.
func produceMessages(client *kgo.Client, topic string, messages []c.Message, first [c.Partitions]int64) ([]*kgo.Record, error) {
	records := make([]*kgo.Record, len(messages))
	for n, m := range messages {
		records[n] = record(topic, m)
	}
	acks, err := produceRecords(client, records)
	if err != nil {
		return nil, err
	}
	return records, c.CheckDeliveryOffsets(messages, acks, first)
}

func consumed(r *kgo.Record) c.Consumed {
	record := c.Consumed{
		Partition:   r.Partition,
		Offset:      r.Offset,
		Key:         r.Key,
		Value:       r.Value,
		TimestampMs: r.Timestamp.UnixMilli(),
	}
	for _, h := range r.Headers {
		record.Headers = append(record.Headers, c.Header{Key: h.Key, Value: h.Value})
	}
	switch r.Attrs.TimestampType() {
	case 0:
		record.TimestampType = "CreateTime"
	case 1:
		record.TimestampType = "LogAppendTime"
	default:
		record.TimestampType = "none"
	}
	return record
}

// offsets lists earliest (ListStartOffsets) or latest (ListEndOffsets) offsets of the topic's partitions.
func offsets(admin *kadm.Client, topic string, latest bool) (map[int32]int64, error) {
	ctx, cancel := callContext()
	defer cancel()
	list, what := admin.ListStartOffsets, "earliest"
	if latest {
		list, what = admin.ListEndOffsets, "latest"
	}
	listed, err := list(ctx, topic)
	if err == nil {
		err = listed.Error()
	}
	if err != nil {
		return nil, c.Failf("listing the %s offsets failed: %v", what, err)
	}
	out := map[int32]int64{}
	listed.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out, nil
}

// checkOffsets requires the earliest and latest offsets of partitions 0..2 to be `earliest` and `latest`.
func checkOffsets(admin *kadm.Client, topic string, earliest, latest [c.Partitions]int64) error {
	start, err := offsets(admin, topic, false)
	if err != nil {
		return err
	}
	end, err := offsets(admin, topic, true)
	if err != nil {
		return err
	}
	for p := range int32(c.Partitions) {
		gotStart, okStart := start[p]
		gotEnd, okEnd := end[p]
		if !okStart || !okEnd || gotStart != earliest[p] || gotEnd != latest[p] {
			return c.Failf("partition %d: earliest/latest offsets %d/%d (listed: %v/%v), expected %d/%d",
				p, gotStart, gotEnd, okStart, okEnd, earliest[p], latest[p])
		}
	}
	return nil
}

// fromLogStart, as a start offset of readPartitions, is the partition's log start offset (kgo's AtStart).
const fromLogStart = -2

// readPartitions consumes, by direct assignment (no group), each partition p of `from` from offset from[p]
// (or its log start: fromLogStart) until it returned the record at offset until[p]-1, within 30 s.
// Partitions with nothing to read from an exact offset are not assigned. A fetch error fails the read.
func readPartitions(args c.Args, from, until map[int32]int64) (map[int32][]*kgo.Record, error) {
	assign := map[int32]kgo.Offset{}
	for p, start := range from {
		switch {
		case start == fromLogStart:
			assign[p] = kgo.NewOffset().AtStart()
		case until[p] > start:
			assign[p] = kgo.NewOffset().At(start)
		}
	}
	out := map[int32][]*kgo.Record{}
	if len(assign) == 0 {
		return out, nil
	}
	client, err := kgo.NewClient(append(baseOpts(args.Bootstrap),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{args.Topic: assign}),
		kgo.ConsumeResetOffset(kgo.NoResetOffset()),
		kgo.FetchMaxWait(500*time.Millisecond),
	)...)
	if err != nil {
		return nil, c.Failf("cannot create the consumer: %v", err)
	}
	defer client.Close()
	ctx, cancel := callContext()
	defer cancel()
	done := func() bool {
		for p := range assign {
			records := out[p]
			if len(records) == 0 || records[len(records)-1].Offset < until[p]-1 {
				return false
			}
		}
		return true
	}
	for !done() {
		fetches := client.PollFetches(ctx)
		if ctx.Err() != nil {
			counts := map[int32]int{}
			for p, records := range out {
				counts[p] = len(records)
			}
			return nil, c.Failf("reading back did not reach offsets %v from %v within %s (records per partition: %v)", until, from, c.CallTimeout, counts)
		}
		var fetchErr error
		fetches.EachError(func(topic string, partition int32, err error) {
			fetchErr = c.Failf("fetch error on %s partition %d: %v", topic, partition, err)
		})
		if fetchErr != nil {
			return nil, fetchErr
		}
		fetches.EachRecord(func(r *kgo.Record) { out[r.Partition] = append(out[r.Partition], r) })
	}
	return out, nil
}

// verifyMessages runs the roundtrip checks 2 and 3 of messages.md: earliest 0 and latest = the messages
// sent to each partition, then every record read back byte for byte.
func verifyMessages(args c.Args, messages []c.Message) error {
	admin, client, err := newAdmin(args)
	if err != nil {
		return err
	}
	defer client.Close()
	counts := c.ExpectedCounts(messages)
	if err := checkOffsets(admin, args.Topic, [c.Partitions]int64{}, counts); err != nil {
		return err
	}
	from, until := map[int32]int64{}, map[int32]int64{}
	for p := range int32(c.Partitions) {
		from[p], until[p] = 0, counts[p]
	}
	records, err := readPartitions(args, from, until)
	if err != nil {
		return err
	}
	byPartition := map[int32][]c.Consumed{}
	for p, rs := range records {
		for _, r := range rs {
			byPartition[p] = append(byPartition[p], consumed(r))
		}
	}
	return c.CheckRecordsMatch(messages, byPartition)
}

// checkCompression requires the records read back to have been stored with `codec` (kgo compresses a batch
// only when that makes it smaller, so a batch of the wrong codec would mean the scenario tested nothing).
func checkCompression(args c.Args, messages []c.Message, codec string) error {
	counts := c.ExpectedCounts(messages)
	from, until := map[int32]int64{}, map[int32]int64{}
	for p := range int32(c.Partitions) {
		from[p], until[p] = 0, counts[p]
	}
	records, err := readPartitions(args, from, until)
	if err != nil {
		return err
	}
	compressed := 0
	for _, rs := range records {
		for _, r := range rs {
			switch r.Attrs.CompressionType() {
			case compressionAttr[codec]:
				compressed++
			case 0:
			default:
				return c.Failf("partition %d offset %d was stored with codec %d, expected %s or none", r.Partition, r.Offset, r.Attrs.CompressionType(), codec)
			}
		}
	}
	c.Logf("%d of %d records were stored in %s batches", compressed, len(messages), codec)
	if compressed == 0 {
		return c.Failf("no record was stored compressed with %s", codec)
	}
	return nil
}

// roundtrip and compression-*: produce `count` messages with the codec, then verify.
func roundtrip(args c.Args, compression string) error {
	messages := c.RoundtripMessages(args.Seed, 0, args.Count)
	if err := produceWith(args, messages, compression); err != nil {
		return err
	}
	if err := verifyMessages(args, messages); err != nil {
		return err
	}
	if compression != "none" {
		return checkCompression(args, messages, compression)
	}
	return nil
}

func produceWith(args c.Args, messages []c.Message, compression string, extra ...kgo.Opt) error {
	client, err := newProducer(args, compression, extra...)
	if err != nil {
		return err
	}
	defer client.Close()
	_, err = produceMessages(client, args.Topic, messages, [c.Partitions]int64{})
	return err
}

// produce: the roundtrip messages with acks=all, all acknowledged at the expected offsets.
func produce(args c.Args, compression string) error {
	return produceWith(args, c.RoundtripMessages(args.Seed, 0, args.Count), compression)
}

// verify: exactly the `count` roundtrip messages, once each, in order.
func verify(args c.Args) error {
	return verifyMessages(args, c.RoundtripMessages(args.Seed, 0, args.Count))
}

// idempotent-produce: kgo's idempotent producer (its default; kgo then keeps up to 5 produce requests in
// flight per broker and offers no setting for it). Every record must carry the producer id the client
// obtained with InitProducerId.
func idempotentProduce(args c.Args) error {
	messages := c.RoundtripMessages(args.Seed, 0, args.Count)
	codec, _ := compressionCodec("none")
	client, err := kgo.NewClient(append(baseOpts(args.Bootstrap),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerBatchCompression(codec),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProduceRequestTimeout(10*time.Second),
	)...)
	if err != nil {
		return c.Failf("cannot create the idempotent producer: %v", err)
	}
	defer client.Close()
	records, err := produceMessages(client, args.Topic, messages, [c.Partitions]int64{})
	if err != nil {
		return err
	}
	ctx, cancel := callContext()
	defer cancel()
	id, epoch, err := client.ProducerID(ctx)
	if err != nil || id < 0 {
		return c.Failf("the producer has no producer id (%d, epoch %d): %v", id, epoch, err)
	}
	for n, r := range records {
		if r.ProducerID != id {
			return c.Failf("record %d was produced with producer id %d, the client's is %d", n, r.ProducerID, id)
		}
	}
	c.Logf("producer id %d epoch %d", id, epoch)
	return verifyMessages(args, messages)
}

// writeCounter is a kgo hook that counts the requests written to brokers by API key, and the largest
// Produce request.
type writeCounter struct {
	mu           sync.Mutex
	byKey        map[int16]int
	largestWrite map[int16]int
}

func newWriteCounter() *writeCounter {
	return &writeCounter{byKey: map[int16]int{}, largestWrite: map[int16]int{}}
}

func (w *writeCounter) OnBrokerWrite(_ kgo.BrokerMetadata, key int16, bytesWritten int, _, _ time.Duration, err error) {
	if err != nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.byKey[key]++
	w.largestWrite[key] = max(w.largestWrite[key], bytesWritten)
}

func (w *writeCounter) count(key int16) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.byKey[key]
}

func (w *writeCounter) largest(key int16) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.largestWrite[key]
}

const (
	apiProduce                = 0
	apiJoinGroup              = 11
	apiConsumerGroupHeartbeat = 68
)

// message-too-large: the producer's own limit (ProducerBatchMaxBytes) is raised to 10 MiB, so the 2 MiB
// record reaches the broker, which rejects it with MESSAGE_TOO_LARGE (a write hook confirms that a Produce
// request that large was written). The same producer then delivers message 1 to partition 0 at offset 0.
func messageTooLarge(args c.Args) error {
	writes := newWriteCounter()
	client, err := newProducer(args, "none", kgo.ProducerBatchMaxBytes(10<<20), kgo.WithHooks(writes))
	if err != nil {
		return err
	}
	defer client.Close()
	large := c.LargeMessage()
	ctx, cancel := callContext()
	defer cancel()
	result := client.ProduceSync(ctx, record(args.Topic, large))
	if len(result) != 1 {
		return c.Failf("%d produce results for the 2 MiB record", len(result))
	}
	switch err := result[0].Err; {
	case err == nil:
		return c.Failf("the 2 MiB record was accepted at partition %d offset %d, expected MESSAGE_TOO_LARGE (10)",
			result[0].Record.Partition, result[0].Record.Offset)
	case !errors.Is(err, kerr.MessageTooLarge):
		return c.Failf("the 2 MiB record failed with %v, expected MESSAGE_TOO_LARGE (10)", err)
	}
	largest := writes.largest(apiProduce)
	c.Logf("the broker refused the record with %v; the largest Produce request written was %d bytes", result[0].Err, largest)
	if largest < c.LargeValueSize {
		return c.Failf("MESSAGE_TOO_LARGE but the largest Produce request written was %d bytes: the client refused the record itself", largest)
	}
	small := c.MessageTooLargeSmallMessage(args.Seed)
	if _, err := produceMessages(client, args.Topic, []c.Message{small}, [c.Partitions]int64{}); err != nil {
		return c.Failf("the small record after the rejected one: %v", err)
	}
	// Partition 0 holds exactly that record; partitions 1 and 2 stay empty.
	admin, adminClient, err := newAdmin(args)
	if err != nil {
		return err
	}
	defer adminClient.Close()
	if err := checkOffsets(admin, args.Topic, [c.Partitions]int64{}, [c.Partitions]int64{1, 0, 0}); err != nil {
		return err
	}
	records, err := readPartitions(args, map[int32]int64{0: 0}, map[int32]int64{0: 1})
	if err != nil {
		return err
	}
	if len(records[0]) != 1 {
		return c.Failf("partition 0 returned %d records, expected 1", len(records[0]))
	}
	return c.CheckRecord(small, consumed(records[0][0]), 0)
}

// offset-out-of-range: 10 records in partition 0, then a consumer assigned partition 0 at offset 1000 with
// NoResetOffset (kgo's auto.offset.reset=none) must report OFFSET_OUT_OF_RANGE and return no record.
func offsetOutOfRange(args c.Args) error {
	messages := c.SinglePartitionMessages(args.Seed, c.OffsetOutOfRangeCount, 1)
	if err := produceWith(args, messages, "none"); err != nil {
		return err
	}
	client, err := kgo.NewClient(append(baseOpts(args.Bootstrap),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{args.Topic: {0: kgo.NewOffset().At(c.OffsetOutOfRangeFetchOffset)}}),
		kgo.ConsumeResetOffset(kgo.NoResetOffset()),
		kgo.FetchMaxWait(500*time.Millisecond),
	)...)
	if err != nil {
		return c.Failf("cannot create the consumer: %v", err)
	}
	defer client.Close()
	ctx, cancel := callContext()
	defer cancel()
	for {
		fetches := client.PollFetches(ctx)
		if ctx.Err() != nil {
			return c.Failf("no OFFSET_OUT_OF_RANGE error within %s", c.CallTimeout)
		}
		if n := fetches.NumRecords(); n > 0 {
			return c.Failf("got %d records (first at offset %d) instead of an out-of-range error", n, fetches.Records()[0].Offset)
		}
		var result error
		found := false
		fetches.EachError(func(topic string, partition int32, err error) {
			switch {
			case topic == args.Topic && partition == 0 && errors.Is(err, kerr.OffsetOutOfRange):
				found = true
			default:
				result = c.Failf("fetch error on %s partition %d: %v, expected OFFSET_OUT_OF_RANGE (1)", topic, partition, err)
			}
		})
		if result != nil {
			return result
		}
		if found {
			return nil
		}
	}
}

// list-offsets: 100 records in partition 0 with timestamps BASE + 10*i, then kadm's ListStartOffsets,
// ListEndOffsets and ListOffsetsAfterMilli. For a time after every record kadm documents the end offset
// as its answer (with timestamp -1): the broker's -1 ("none") makes it ask for the latest offset.
func listOffsets(args c.Args) error {
	messages := c.SinglePartitionMessages(args.Seed, c.ListOffsetsCount, c.ListOffsetsTimestampStepMs)
	if err := produceWith(args, messages, "none"); err != nil {
		return err
	}
	admin, client, err := newAdmin(args)
	if err != nil {
		return err
	}
	defer client.Close()
	if err := checkOffsets(admin, args.Topic, [c.Partitions]int64{}, [c.Partitions]int64{c.ListOffsetsCount, 0, 0}); err != nil {
		return err
	}
	cases := []struct {
		timestampMs, offset, foundTimestampMs int64
	}{
		{c.ListOffsetsQueryTimestampMs, c.ListOffsetsExpectedOffset, c.BaseTimestampMs + 10*c.ListOffsetsExpectedOffset},
		{c.BaseTimestampMs + 500, 50, c.BaseTimestampMs + 500},
		{c.BaseTimestampMs, 0, c.BaseTimestampMs},
		{c.ListOffsetsFarFutureMs, c.ListOffsetsCount, -1},
	}
	for _, want := range cases {
		ctx, cancel := callContext()
		listed, err := admin.ListOffsetsAfterMilli(ctx, want.timestampMs, args.Topic)
		cancel()
		if err == nil {
			err = listed.Error()
		}
		if err != nil {
			return c.Failf("ListOffsetsAfterMilli(%d) failed: %v", want.timestampMs, err)
		}
		got, ok := listed.Lookup(args.Topic, 0)
		if !ok || got.Offset != want.offset || got.Timestamp != want.foundTimestampMs {
			return c.Failf("ListOffsetsAfterMilli(%d) partition 0: offset %d timestamp %d (listed: %v), expected offset %d timestamp %d",
				want.timestampMs, got.Offset, got.Timestamp, ok, want.offset, want.foundTimestampMs)
		}
		for p := int32(1); p < c.Partitions; p++ {
			if got, ok := listed.Lookup(args.Topic, p); !ok || got.Offset != 0 {
				return c.Failf("ListOffsetsAfterMilli(%d) partition %d: offset %d (listed: %v), expected 0 (empty partition)",
					want.timestampMs, p, got.Offset, ok)
			}
		}
	}
	return nil
}

// waitForTopic re-reads the metadata of all topics (naming the topic could auto-create it) until
// `condition` holds for the topic's partition count (-1 when absent), for up to 30 s.
func waitForTopic(admin *kadm.Client, topic, what string, condition func(partitions int) bool) error {
	deadline := time.Now().Add(c.CallTimeout)
	last := -2
	for {
		ctx, cancel := callContext()
		topics, err := admin.ListTopics(ctx)
		cancel()
		if err != nil {
			return c.Failf("metadata request failed: %v", err)
		}
		partitions := -1
		if detail, ok := topics[topic]; ok && detail.Err == nil {
			partitions = len(detail.Partitions)
		}
		if condition(partitions) {
			return nil
		}
		last = partitions
		if time.Now().After(deadline) {
			return c.Failf("the metadata never showed %s (last partition count seen: %d)", what, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// admin-topics: create (3 partitions), create again, an invalid name, delete.
func adminTopics(args c.Args) error {
	admin, client, err := newAdmin(args)
	if err != nil {
		return err
	}
	defer client.Close()
	create := func(name string) (kadm.CreateTopicResponse, error) {
		ctx, cancel := callContext()
		defer cancel()
		return admin.CreateTopic(ctx, 3, 1, nil, name)
	}
	created, err := create(args.Topic)
	if err != nil || created.Err != nil {
		return c.Failf("create %s: %v / %v %s", args.Topic, err, created.Err, created.ErrMessage)
	}
	if err := waitForTopic(admin, args.Topic, "3 partitions", func(n int) bool { return n == 3 }); err != nil {
		return err
	}
	again, err := create(args.Topic)
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return c.Failf("create %s again: request failed: %v", args.Topic, err)
	}
	if !errors.Is(again.Err, kerr.TopicAlreadyExists) {
		return c.Failf("create %s again: %v, expected TOPIC_ALREADY_EXISTS (36)", args.Topic, again.Err)
	}
	const badName = "bad/name"
	bad, err := create(badName)
	if err != nil && !errors.Is(err, kerr.InvalidTopicException) {
		return c.Failf("create %s: request failed: %v", badName, err)
	}
	if !errors.Is(bad.Err, kerr.InvalidTopicException) {
		return c.Failf("create %s: %v, expected INVALID_TOPIC_EXCEPTION (17)", badName, bad.Err)
	}
	ctx, cancel := callContext()
	deleted, err := admin.DeleteTopic(ctx, args.Topic)
	cancel()
	if err != nil || deleted.Err != nil {
		return c.Failf("delete %s: %v / %v %s", args.Topic, err, deleted.Err, deleted.ErrMessage)
	}
	return waitForTopic(admin, args.Topic, "the topic gone", func(n int) bool { return n == -1 })
}
