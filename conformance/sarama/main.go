// The sarama conformance driver: runs one scenario of conformance/README.md with github.com/IBM/sarama
// (SyncProducer, Consumer/PartitionConsumer, ConsumerGroup, ClusterAdmin, Client).
//
//	run --bootstrap HOST:PORT --scenario NAME --topic TOPIC [--count N] [--seed S]
//	run --version
package main

import (
	"context"
	"errors"
	"log"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/IBM/sarama"

	c "skein.local/conformance"
)

func main() {
	// sarama's own log (retries, leader changes, reconnections) goes to stderr, which the matrix runner keeps
	// in the cell's log: a failure then shows what the client saw, not only what it returned.
	sarama.Logger = log.New(os.Stderr, "[sarama] ", log.LstdFlags|log.Lmicroseconds)
	c.Main("sarama", version(), map[string]func(c.Args) error{
		"roundtrip":           func(a c.Args) error { return roundtrip(a, sarama.CompressionNone) },
		"compression-gzip":    func(a c.Args) error { return roundtrip(a, sarama.CompressionGZIP) },
		"compression-snappy":  func(a c.Args) error { return roundtrip(a, sarama.CompressionSnappy) },
		"compression-lz4":     func(a c.Args) error { return roundtrip(a, sarama.CompressionLZ4) },
		"compression-zstd":    func(a c.Args) error { return roundtrip(a, sarama.CompressionZSTD) },
		"message-too-large":   messageTooLarge,
		"offset-out-of-range": offsetOutOfRange,
		"list-offsets":        listOffsets,
		"admin-topics":        adminTopics,
		"idempotent-produce":  idempotentProduce,
		"consumer-group":      consumerGroup,
		"consumer-group-kip848": func(c.Args) error {
			return c.NotSupported("sarama has no KIP-848 consumer (group.protocol=consumer); its ConsumerGroup speaks only the classic group protocol")
		},
		"admin-configs-partitions-records": adminConfigsPartitionsRecords,
		"log-compaction":                   logCompaction,
		"cluster":                          cluster,
		"produce":                          produce,
		"verify":                           verify,
	})
}

// version is the sarama module version compiled in (go.mod pins it).
func version() string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range info.Deps {
			if dep.Path == "github.com/IBM/sarama" {
				return strings.TrimPrefix(dep.Version, "v")
			}
		}
	}
	return "unknown"
}

// kafkaVersion is the broker version sarama is told to expect (it picks request versions from it): the
// reference broker's, Apache Kafka 4.3.1.
var kafkaVersion = sarama.V4_3_1_0

// newConfig is the configuration every sarama object of the driver starts from.
func newConfig() *sarama.Config {
	config := sarama.NewConfig()
	config.ClientID = "skein-conformance-sarama"
	config.Version = kafkaVersion
	config.Net.DialTimeout = 10 * time.Second
	config.Net.ReadTimeout = c.CallTimeout
	config.Net.WriteTimeout = 10 * time.Second
	// A metadata request naming a missing topic must not create it (admin-topics checks that it is gone).
	config.Metadata.AllowAutoTopicCreation = false
	config.Admin.Timeout = c.CallTimeout
	config.Consumer.Return.Errors = true
	return config
}

// producerConfig: acks=all, no idempotence, one request in flight per connection (so that a retried
// request cannot reorder records), records to the partition they name, the given codec.
func producerConfig(codec sarama.CompressionCodec) *sarama.Config {
	config := newConfig()
	config.Producer.RequiredAcks = sarama.WaitForAll
	config.Producer.Idempotent = false
	config.Net.MaxOpenRequests = 1
	config.Producer.Partitioner = sarama.NewManualPartitioner
	config.Producer.Compression = codec
	config.Producer.Timeout = 10 * time.Second
	config.Producer.Return.Successes = true
	config.Producer.Return.Errors = true
	return config
}

func newProducer(args c.Args, config *sarama.Config) (sarama.SyncProducer, error) {
	producer, err := sarama.NewSyncProducer([]string{args.Bootstrap}, config)
	if err != nil {
		return nil, c.Failf("cannot create the producer: %v", err)
	}
	return producer, nil
}

func newClient(args c.Args) (sarama.Client, error) {
	client, err := sarama.NewClient([]string{args.Bootstrap}, newConfig())
	if err != nil {
		return nil, c.Failf("cannot create the client: %v", err)
	}
	return client, nil
}

func newAdmin(args c.Args) (sarama.ClusterAdmin, error) {
	admin, err := sarama.NewClusterAdmin([]string{args.Bootstrap}, newConfig())
	if err != nil {
		return nil, c.Failf("cannot create the cluster admin: %v", err)
	}
	return admin, nil
}

func producerMessage(topic string, m c.Message) *sarama.ProducerMessage {
	message := &sarama.ProducerMessage{
		Topic:     topic,
		Partition: m.Partition,
		Key:       sarama.ByteEncoder(m.Key),
		Value:     sarama.ByteEncoder(m.Value),
		Timestamp: time.UnixMilli(m.TimestampMs),
	}
	for _, h := range m.Headers {
		message.Headers = append(message.Headers, sarama.RecordHeader{Key: []byte(h.Key), Value: h.Value})
	}
	return message
}

// sendMessages sends the messages in order with SendMessages and returns each one's acknowledgement.
func sendMessages(producer sarama.SyncProducer, messages []*sarama.ProducerMessage) ([]c.Ack, error) {
	if err := producer.SendMessages(messages); err != nil {
		var failed sarama.ProducerErrors
		if errors.As(err, &failed) && len(failed) > 0 {
			first := failed[0]
			return nil, c.Failf("%d of %d records were not acknowledged; first: partition %d: %v",
				len(failed), len(messages), first.Msg.Partition, first.Err)
		}
		return nil, c.Failf("SendMessages failed: %v", err)
	}
	acks := make([]c.Ack, len(messages))
	for n, m := range messages {
		acks[n] = c.Ack{Partition: m.Partition, Offset: m.Offset}
	}
	return acks, nil
}

// produceMessages sends `messages` in order and requires each partition's acknowledgements at first[p],
// first[p]+1, ... in send order.
func produceMessages(producer sarama.SyncProducer, topic string, messages []c.Message, first [c.Partitions]int64) error {
	out := make([]*sarama.ProducerMessage, len(messages))
	for n, m := range messages {
		out[n] = producerMessage(topic, m)
	}
	acks, err := sendMessages(producer, out)
	if err != nil {
		return err
	}
	return c.CheckDeliveryOffsets(messages, acks, first)
}

func produceWith(args c.Args, messages []c.Message, config *sarama.Config) error {
	producer, err := newProducer(args, config)
	if err != nil {
		return err
	}
	defer producer.Close()
	return produceMessages(producer, args.Topic, messages, [c.Partitions]int64{})
}

// consumed normalises a record. sarama does not expose the timestamp type; the exact CreateTime value stands
// for it (a LogAppendTime would be the broker's clock).
func consumed(m *sarama.ConsumerMessage) c.Consumed {
	record := c.Consumed{
		Partition:   m.Partition,
		Offset:      m.Offset,
		Key:         m.Key,
		Value:       m.Value,
		TimestampMs: m.Timestamp.UnixMilli(),
	}
	for _, h := range m.Headers {
		record.Headers = append(record.Headers, c.Header{Key: string(h.Key), Value: h.Value})
	}
	return record
}

// offsetsOf lists the earliest (sarama.OffsetOldest) or latest (sarama.OffsetNewest) offset of partitions.
func offsetsOf(client sarama.Client, topic string, which int64, partitions []int32) (map[int32]int64, error) {
	out := map[int32]int64{}
	for _, p := range partitions {
		offset, err := client.GetOffset(topic, p, which)
		if err != nil {
			return nil, c.Failf("ListOffsets (%d) of partition %d failed: %v", which, p, err)
		}
		out[p] = offset
	}
	return out, nil
}

var allPartitions = []int32{0, 1, 2}

// checkOffsets requires the earliest and latest offsets of partitions 0..2 to be `earliest` and `latest`.
func checkOffsets(client sarama.Client, topic string, earliest, latest [c.Partitions]int64) error {
	start, err := offsetsOf(client, topic, sarama.OffsetOldest, allPartitions)
	if err != nil {
		return err
	}
	end, err := offsetsOf(client, topic, sarama.OffsetNewest, allPartitions)
	if err != nil {
		return err
	}
	for _, p := range allPartitions {
		if start[p] != earliest[p] || end[p] != latest[p] {
			return c.Failf("partition %d: earliest/latest offsets %d/%d, expected %d/%d", p, start[p], end[p], earliest[p], latest[p])
		}
	}
	return nil
}

// readPartitions consumes, with one PartitionConsumer per partition (no group, read concurrently), each
// partition p of `from` from offset from[p] (sarama.OffsetOldest: its log start) until it returned the
// record at offset until[p]-1, within 30 s. Partitions with nothing to read are not consumed.
func readPartitions(args c.Args, from, until map[int32]int64) (map[int32][]*sarama.ConsumerMessage, error) {
	consumer, err := sarama.NewConsumer([]string{args.Bootstrap}, newConfig())
	if err != nil {
		return nil, c.Failf("cannot create the consumer: %v", err)
	}
	defer consumer.Close()
	type result struct {
		partition int32
		records   []*sarama.ConsumerMessage
		err       error
	}
	results := make(chan result, len(from))
	// Every reader stops at the same deadline (a closed channel, seen by all of them).
	ctx, cancel := context.WithTimeout(context.Background(), c.CallTimeout)
	defer cancel()
	started := 0
	for p, start := range from {
		if until[p] <= 0 || (start >= 0 && until[p] <= start) {
			continue
		}
		partitionConsumer, err := consumer.ConsumePartition(args.Topic, p, start)
		if err != nil {
			return nil, c.Failf("cannot consume partition %d from %d: %v", p, start, err)
		}
		started++
		go func() {
			var records []*sarama.ConsumerMessage
			for len(records) == 0 || records[len(records)-1].Offset < until[p]-1 {
				select {
				case m := <-partitionConsumer.Messages():
					records = append(records, m)
				case e := <-partitionConsumer.Errors():
					results <- result{p, records, c.Failf("consumer error on partition %d: %v", p, e.Err)}
					return
				case <-ctx.Done():
					results <- result{p, records, c.Failf("reading back partition %d did not reach offset %d within %s (%d records)",
						p, until[p]-1, c.CallTimeout, len(records))}
					return
				}
			}
			results <- result{p, records, nil}
		}()
	}
	out := map[int32][]*sarama.ConsumerMessage{}
	var failure error
	for range started {
		r := <-results
		out[r.partition] = r.records
		if failure == nil {
			failure = r.err
		}
	}
	return out, failure
}

// verifyMessages runs the roundtrip checks 2 and 3 of messages.md: earliest 0 and latest = the messages
// sent to each partition, then every record read back byte for byte.
func verifyMessages(args c.Args, messages []c.Message) error {
	client, err := newClient(args)
	if err != nil {
		return err
	}
	defer client.Close()
	counts := c.ExpectedCounts(messages)
	if err := checkOffsets(client, args.Topic, [c.Partitions]int64{}, counts); err != nil {
		return err
	}
	from, until := map[int32]int64{}, map[int32]int64{}
	for _, p := range allPartitions {
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

// roundtrip and compression-*: produce `count` messages with the codec, then verify.
func roundtrip(args c.Args, codec sarama.CompressionCodec) error {
	messages := c.RoundtripMessages(args.Seed, 0, args.Count)
	if err := produceWith(args, messages, producerConfig(codec)); err != nil {
		return err
	}
	return verifyMessages(args, messages)
}

// produce: the roundtrip messages with acks=all, all acknowledged at the expected offsets.
func produce(args c.Args) error {
	return produceWith(args, c.RoundtripMessages(args.Seed, 0, args.Count), producerConfig(sarama.CompressionNone))
}

// verify: exactly the `count` roundtrip messages, once each, in order.
func verify(args c.Args) error {
	return verifyMessages(args, c.RoundtripMessages(args.Seed, 0, args.Count))
}

// idempotent-produce: Producer.Idempotent (the producer obtains a producer id with InitProducerId when it
// is created). sarama requires Net.MaxOpenRequests = 1 for an idempotent producer: one request in flight.
func idempotentProduce(args c.Args) error {
	config := producerConfig(sarama.CompressionNone)
	config.Producer.Idempotent = true
	config.Net.MaxOpenRequests = 1
	messages := c.RoundtripMessages(args.Seed, 0, args.Count)
	if err := produceWith(args, messages, config); err != nil {
		return err
	}
	return verifyMessages(args, messages)
}

// message-too-large: the producer's own limit (Producer.MaxMessageBytes, which it reports as a
// ConfigurationError) is raised to 10 MiB so that the 2 MiB record reaches the broker, which must reject it
// with MESSAGE_TOO_LARGE (sarama.ErrMessageSizeTooLarge, 10). The same producer then delivers message 1 to
// partition 0 at offset 0.
func messageTooLarge(args c.Args) error {
	config := producerConfig(sarama.CompressionNone)
	config.Producer.MaxMessageBytes = 10 << 20
	producer, err := newProducer(args, config)
	if err != nil {
		return err
	}
	defer producer.Close()
	large := c.LargeMessage()
	partition, offset, err := producer.SendMessage(&sarama.ProducerMessage{
		Topic: args.Topic, Partition: 0, Key: sarama.ByteEncoder(large.Key), Value: sarama.ByteEncoder(large.Value),
		Timestamp: time.UnixMilli(large.TimestampMs),
	})
	var configErr sarama.ConfigurationError
	switch {
	case err == nil:
		return c.Failf("the 2 MiB record was accepted at partition %d offset %d, expected MESSAGE_TOO_LARGE (10)", partition, offset)
	case errors.As(err, &configErr):
		return c.Failf("the producer refused the 2 MiB record itself: %v", err)
	case !errors.Is(err, sarama.ErrMessageSizeTooLarge):
		return c.Failf("the 2 MiB record failed with %v, expected MESSAGE_TOO_LARGE (10)", err)
	}
	small := c.MessageTooLargeSmallMessage(args.Seed)
	if err := produceMessages(producer, args.Topic, []c.Message{small}, [c.Partitions]int64{}); err != nil {
		return c.Failf("the small record after the rejected one: %v", err)
	}
	client, err := newClient(args)
	if err != nil {
		return err
	}
	defer client.Close()
	if err := checkOffsets(client, args.Topic, [c.Partitions]int64{}, [c.Partitions]int64{1, 0, 0}); err != nil {
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

// offset-out-of-range: 10 records in partition 0, then ConsumePartition(partition 0, offset 1000). sarama
// never resets an explicit start offset: it checks the offset against the partition's earliest and latest
// offsets (ListOffsets) and refuses it with sarama.ErrOffsetOutOfRange (1) before any fetch.
func offsetOutOfRange(args c.Args) error {
	if err := produceWith(args, c.SinglePartitionMessages(args.Seed, c.OffsetOutOfRangeCount, 1), producerConfig(sarama.CompressionNone)); err != nil {
		return err
	}
	consumer, err := sarama.NewConsumer([]string{args.Bootstrap}, newConfig())
	if err != nil {
		return c.Failf("cannot create the consumer: %v", err)
	}
	defer consumer.Close()
	partitionConsumer, err := consumer.ConsumePartition(args.Topic, 0, c.OffsetOutOfRangeFetchOffset)
	if err == nil {
		defer partitionConsumer.Close()
		select {
		case m := <-partitionConsumer.Messages():
			return c.Failf("got a record at offset %d instead of OFFSET_OUT_OF_RANGE", m.Offset)
		case e := <-partitionConsumer.Errors():
			err = e.Err
		case <-time.After(c.CallTimeout):
			return c.Failf("no OFFSET_OUT_OF_RANGE error within %s", c.CallTimeout)
		}
	}
	if !errors.Is(err, sarama.ErrOffsetOutOfRange) {
		return c.Failf("consuming partition 0 from offset %d: %v, expected OFFSET_OUT_OF_RANGE (1)", c.OffsetOutOfRangeFetchOffset, err)
	}
	return nil
}

// list-offsets: 100 records in partition 0 with timestamps BASE + 10*i; Client.GetOffset with
// sarama.OffsetOldest, sarama.OffsetNewest and timestamps (-1 for a time after every record).
func listOffsets(args c.Args) error {
	messages := c.SinglePartitionMessages(args.Seed, c.ListOffsetsCount, c.ListOffsetsTimestampStepMs)
	if err := produceWith(args, messages, producerConfig(sarama.CompressionNone)); err != nil {
		return err
	}
	client, err := newClient(args)
	if err != nil {
		return err
	}
	defer client.Close()
	if err := checkOffsets(client, args.Topic, [c.Partitions]int64{}, [c.Partitions]int64{c.ListOffsetsCount, 0, 0}); err != nil {
		return err
	}
	cases := []struct{ timestampMs, offset int64 }{
		{c.ListOffsetsQueryTimestampMs, c.ListOffsetsExpectedOffset},
		{c.BaseTimestampMs + 500, 50},
		{c.BaseTimestampMs, 0},
		{c.ListOffsetsFarFutureMs, -1},
	}
	for _, want := range cases {
		got, err := client.GetOffset(args.Topic, 0, want.timestampMs)
		if err != nil {
			return c.Failf("GetOffset(partition 0, %d) failed: %v", want.timestampMs, err)
		}
		if got != want.offset {
			return c.Failf("GetOffset(partition 0, %d) = %d, expected %d", want.timestampMs, got, want.offset)
		}
	}
	return nil
}

// waitForTopic re-reads the topic list (ClusterAdmin.ListTopics: metadata of all topics) until `condition`
// holds for the topic's partition count (-1 when absent), for up to 30 s.
func waitForTopic(admin sarama.ClusterAdmin, topic, what string, condition func(partitions int) bool) error {
	deadline := time.Now().Add(c.CallTimeout)
	for {
		topics, err := admin.ListTopics()
		if err != nil {
			return c.Failf("ListTopics failed: %v", err)
		}
		partitions := -1
		if detail, ok := topics[topic]; ok {
			partitions = int(detail.NumPartitions)
		}
		if condition(partitions) {
			return nil
		}
		if time.Now().After(deadline) {
			return c.Failf("the topic list never showed %s (last partition count seen: %d)", what, partitions)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// admin-topics: create (3 partitions), create again, an invalid name, delete.
func adminTopics(args c.Args) error {
	admin, err := newAdmin(args)
	if err != nil {
		return err
	}
	defer admin.Close()
	detail := &sarama.TopicDetail{NumPartitions: 3, ReplicationFactor: 1}
	if err := admin.CreateTopic(args.Topic, detail, false); err != nil {
		return c.Failf("create %s: %v", args.Topic, err)
	}
	if err := waitForTopic(admin, args.Topic, "3 partitions", func(n int) bool { return n == 3 }); err != nil {
		return err
	}
	if err := admin.CreateTopic(args.Topic, detail, false); !errors.Is(err, sarama.ErrTopicAlreadyExists) {
		return c.Failf("create %s again: %v, expected TOPIC_ALREADY_EXISTS (36)", args.Topic, err)
	}
	const badName = "bad/name"
	if err := admin.CreateTopic(badName, detail, false); !errors.Is(err, sarama.ErrInvalidTopic) {
		return c.Failf("create %s: %v, expected INVALID_TOPIC_EXCEPTION (17)", badName, err)
	}
	if err := admin.DeleteTopic(args.Topic); err != nil {
		return c.Failf("delete %s: %v", args.Topic, err)
	}
	return waitForTopic(admin, args.Topic, "the topic gone", func(n int) bool { return n == -1 })
}
