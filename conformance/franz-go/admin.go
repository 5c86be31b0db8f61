package main

// admin-configs-partitions-records (conformance/common/messages.md, "Admin scenario"), log-compaction and
// cluster.

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	c "skein.local/conformance"
)

const (
	adminMessageCount       = 30
	adminDeleteBeforeOffset = 5
	adminGrownPartitions    = 5
	// metadataSettleLimit bounds the wait for new partitions to show in the metadata with a leader.
	metadataSettleLimit = 15 * time.Second
)

var adminWatchedConfigs = []string{"retention.ms", "cleanup.policy"}

// topicConfigs describes TOPIC's watched configs as "value SOURCE".
func topicConfigs(admin *kadm.Client, topic string) (map[string]string, error) {
	ctx, cancel := callContext()
	defer cancel()
	described, err := admin.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		return nil, c.Failf("DescribeConfigs of %s failed: %v", topic, err)
	}
	config, err := described.On(topic, nil)
	if err == nil {
		err = config.Err
	}
	if err != nil {
		return nil, c.Failf("DescribeConfigs of %s: %v %s", topic, err, config.ErrMessage)
	}
	watched := map[string]string{}
	for _, entry := range config.Configs {
		if slices.Contains(adminWatchedConfigs, entry.Key) {
			value := "null"
			if entry.Value != nil {
				value = *entry.Value
			}
			watched[entry.Key] = value + " " + entry.Source.String()
		}
	}
	for _, name := range adminWatchedConfigs {
		if _, ok := watched[name]; !ok {
			return nil, c.Failf("DescribeConfigs of %s lacks %s", topic, name)
		}
	}
	return watched, nil
}

// configSettleLimit bounds the wait for an altered topic config to show: Apache Kafka answers
// IncrementalAlterConfigs once its controller has committed the change, and its broker applies the change to
// what DescribeConfigs shows a moment later.
const configSettleLimit = 10 * time.Second

// waitForConfigs re-describes TOPIC until its watched configs are `want`, for up to configSettleLimit.
func waitForConfigs(admin *kadm.Client, topic, what string, want map[string]string) error {
	deadline := time.Now().Add(configSettleLimit)
	for {
		got, err := topicConfigs(admin, topic)
		if err != nil {
			return err
		}
		if maps.Equal(got, want) {
			return nil
		}
		if time.Now().After(deadline) {
			return c.Failf("%s: %v, expected %v", what, got, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// alterTopicConfigs sends one IncrementalAlterConfigs request for TOPIC.
func alterTopicConfigs(admin *kadm.Client, topic string, ops []kadm.AlterConfig) error {
	ctx, cancel := callContext()
	defer cancel()
	responses, err := admin.AlterTopicConfigs(ctx, ops, topic)
	if err != nil {
		return err
	}
	response, err := responses.On(topic, nil)
	if err != nil {
		return err
	}
	if response.Err != nil {
		return fmt.Errorf("%w (%s)", response.Err, response.ErrMessage)
	}
	return nil
}

// deleteRecords sends one DeleteRecords request and returns each partition's result.
func deleteRecords(admin *kadm.Client, topic string, before map[int32]int64) (map[int32]kadm.DeleteRecordsResponse, error) {
	ctx, cancel := callContext()
	defer cancel()
	var offsets kadm.Offsets
	for p, offset := range before {
		offsets.Add(kadm.Offset{Topic: topic, Partition: p, At: offset, LeaderEpoch: -1})
	}
	responses, err := admin.DeleteRecords(ctx, offsets)
	if err != nil {
		return nil, c.Failf("DeleteRecords %v failed: %v", before, err)
	}
	out := map[int32]kadm.DeleteRecordsResponse{}
	for p := range before {
		response, ok := responses.Lookup(topic, p)
		if !ok {
			return nil, c.Failf("DeleteRecords %v: no answer for partition %d", before, p)
		}
		out[p] = response
	}
	return out, nil
}

func expectError(what string, err, expected error, code int) error {
	if !errors.Is(err, expected) {
		return c.Failf("%s: %v, expected %v (%d)", what, err, expected, code)
	}
	return nil
}

// adminConfigsPartitionsRecords: cluster, topic configs, DeleteRecords, DescribeLogDirs and
// CreatePartitions through kadm.
func adminConfigsPartitionsRecords(args c.Args) error {
	admin, client, err := newAdmin(args)
	if err != nil {
		return err
	}
	defer client.Close()
	topic := args.Topic

	// 1. Cluster: kadm has no DescribeCluster call; its Metadata gives the brokers, controller and cluster id.
	ctx, cancel := callContext()
	metadata, err := admin.BrokerMetadata(ctx)
	cancel()
	if err != nil {
		return c.Failf("metadata request failed: %v", err)
	}
	if len(metadata.Brokers) != 1 {
		return c.Failf("the cluster has %d brokers, expected 1: %v", len(metadata.Brokers), metadata.Brokers)
	}
	nodeID := metadata.Brokers[0].NodeID
	if metadata.Controller != nodeID {
		return c.Failf("the controller is %d, expected the broker %d", metadata.Controller, nodeID)
	}
	if metadata.Cluster == "" {
		return c.Failf("empty cluster id")
	}

	// 2. Topic configs.
	initial, err := topicConfigs(admin, topic)
	if err != nil {
		return err
	}
	dynamic := kmsg.ConfigSourceDynamicTopicConfig.String()
	for name, described := range initial {
		if described[len(described)-len(dynamic):] == dynamic {
			return c.Failf("the new topic already has an override of %s: %s", name, described)
		}
	}
	set := func(value string) *string { return &value }
	overrides := []kadm.AlterConfig{
		{Op: kadm.SetConfig, Name: "retention.ms", Value: set("123456")},
		{Op: kadm.SetConfig, Name: "cleanup.policy", Value: set("compact")},
	}
	if err := alterTopicConfigs(admin, topic, overrides); err != nil {
		return c.Failf("IncrementalAlterConfigs SET retention.ms=123456, cleanup.policy=compact: %v", err)
	}
	overridden := map[string]string{"retention.ms": "123456 " + dynamic, "cleanup.policy": "compact " + dynamic}
	if err := waitForConfigs(admin, topic, "after SET", overridden); err != nil {
		return err
	}
	// Kafka deletes no records of a topic whose cleanup policy lacks `delete`.
	refused, err := deleteRecords(admin, topic, map[int32]int64{0: 0})
	if err != nil {
		return err
	}
	if err := expectError("DeleteRecords with cleanup.policy=compact", refused[0].Err, kerr.PolicyViolation, 44); err != nil {
		return err
	}
	err = alterTopicConfigs(admin, topic, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: set("abc")}})
	if err := expectError("IncrementalAlterConfigs SET retention.ms=abc", err, kerr.InvalidConfig, 40); err != nil {
		return err
	}
	if got, err := topicConfigs(admin, topic); err != nil || !maps.Equal(got, overridden) {
		return c.Failf("after the refused SET: %v (%v), expected %v", got, err, overridden)
	}
	deletes := []kadm.AlterConfig{{Op: kadm.DeleteConfig, Name: "retention.ms"}, {Op: kadm.DeleteConfig, Name: "cleanup.policy"}}
	if err := alterTopicConfigs(admin, topic, deletes); err != nil {
		return c.Failf("IncrementalAlterConfigs DELETE retention.ms, cleanup.policy: %v", err)
	}
	if err := waitForConfigs(admin, topic, "after DELETE", initial); err != nil {
		return err
	}

	// 3. Records.
	messages := c.RoundtripMessages(args.Seed, 0, adminMessageCount)
	if err := produceWith(args, messages, "none"); err != nil {
		return err
	}
	counts := c.ExpectedCounts(messages)
	deleted, err := deleteRecords(admin, topic, map[int32]int64{0: adminDeleteBeforeOffset, 1: -1})
	if err != nil {
		return err
	}
	for p, want := range map[int32]int64{0: adminDeleteBeforeOffset, 1: counts[1]} {
		if deleted[p].Err != nil || deleted[p].LowWatermark != want {
			return c.Failf("DeleteRecords partition %d: low watermark %d, error %v; expected %d", p, deleted[p].LowWatermark, deleted[p].Err, want)
		}
	}
	if err := checkOffsets(admin, topic, [c.Partitions]int64{adminDeleteBeforeOffset, counts[1], 0}, counts); err != nil {
		return c.Failf("after DeleteRecords: %v", err)
	}
	records, err := readPartitions(args, map[int32]int64{0: fromLogStart}, map[int32]int64{0: counts[0]})
	if err != nil {
		return err
	}
	var offsetsRead []int64
	for _, r := range records[0] {
		offsetsRead = append(offsetsRead, r.Offset)
	}
	if want := []int64{5, 6, 7, 8, 9}; !slices.Equal(offsetsRead, want) {
		return c.Failf("partition 0 from the beginning: offsets %v, expected %v", offsetsRead, want)
	}
	for _, r := range records[0] {
		if err := c.CheckRecord(c.RoundtripMessage(args.Seed, c.MessageIndex(0, r.Offset)), consumed(r), r.Offset); err != nil {
			return err
		}
	}
	beyond := counts[2] + 1
	refused, err = deleteRecords(admin, topic, map[int32]int64{2: beyond})
	if err != nil {
		return err
	}
	if err := expectError(fmt.Sprintf("DeleteRecords partition 2 before %d", beyond), refused[2].Err, kerr.OffsetOutOfRange, 1); err != nil {
		return err
	}
	if start, err := offsets(admin, topic, false); err != nil || start[2] != 0 {
		return c.Failf("partition 2's earliest offset after the refused DeleteRecords: %v (%v), expected 0", start[2], err)
	}

	// 4. Log dirs.
	ctx, cancel = callContext()
	dirs, err := admin.DescribeBrokerLogDirs(ctx, nodeID, nil)
	cancel()
	if err != nil {
		return c.Failf("DescribeLogDirs failed: %v", err)
	}
	if len(dirs) != 1 {
		return c.Failf("DescribeLogDirs: %d log dirs, expected 1: %v", len(dirs), slices.Collect(maps.Keys(dirs)))
	}
	for _, dir := range dirs {
		if dir.Err != nil {
			return c.Failf("DescribeLogDirs: log dir %s error %v", dir.Dir, dir.Err)
		}
		partitions := dir.Topics[topic]
		for p := range int32(c.Partitions) {
			if _, ok := partitions[p]; !ok {
				return c.Failf("DescribeLogDirs does not list partition %d of %s: %v", p, topic, slices.Collect(maps.Keys(partitions)))
			}
		}
		var valueBytes int64
		for _, m := range messages {
			if m.Partition == 2 {
				valueBytes += int64(len(m.Value))
			}
		}
		if size := partitions[2].Size; size < valueBytes {
			return c.Failf("DescribeLogDirs: partition 2 size %d bytes, expected at least %d (its values)", size, valueBytes)
		}
	}

	// 5. Partitions.
	ctx, cancel = callContext()
	grown, err := admin.UpdatePartitions(ctx, adminGrownPartitions, topic)
	cancel()
	if err == nil {
		err = grown.Error()
	}
	if err != nil {
		return c.Failf("CreatePartitions to %d: %v", adminGrownPartitions, err)
	}
	deadline := time.Now().Add(metadataSettleLimit)
	for {
		ctx, cancel := callContext()
		described, err := admin.Metadata(ctx, topic)
		cancel()
		if err != nil {
			return c.Failf("metadata request failed: %v", err)
		}
		detail := described.Topics[topic]
		var ids []int32
		led := true
		for _, p := range detail.Partitions.Sorted() {
			ids = append(ids, p.Partition)
			led = led && p.Leader >= 0 && p.Err == nil
		}
		if slices.Equal(ids, []int32{0, 1, 2, 3, 4}) && led {
			break
		}
		if time.Now().After(deadline) {
			return c.Failf("after CreatePartitions: partitions %v (all led: %v), expected [0 1 2 3 4]", ids, led)
		}
		time.Sleep(200 * time.Millisecond)
	}
	start, err := offsets(admin, topic, false)
	if err != nil {
		return err
	}
	end, err := offsets(admin, topic, true)
	if err != nil {
		return err
	}
	for _, p := range []int32{3, 4} {
		if s, ok := start[p]; !ok || s != 0 || end[p] != 0 {
			return c.Failf("new partition %d: earliest %d latest %d (listed: %v), expected 0", p, start[p], end[p], ok)
		}
	}
	ctx, cancel = callContext()
	shrunk, err := admin.UpdatePartitions(ctx, adminGrownPartitions-1, topic)
	cancel()
	if err == nil {
		err = shrunk.Error()
	}
	if err := expectError(fmt.Sprintf("CreatePartitions to %d", adminGrownPartitions-1), err, kerr.InvalidPartitions, 37); err != nil {
		return err
	}
	ctx, cancel = callContext()
	described, err := admin.Metadata(ctx, topic)
	cancel()
	if err != nil {
		return c.Failf("metadata request failed: %v", err)
	}
	if n := len(described.Topics[topic].Partitions); n != adminGrownPartitions {
		return c.Failf("the topic has %d partitions after the refused shrink, expected %d", n, adminGrownPartitions)
	}
	return nil
}

// sendUpdates produces the log-compaction records in order (a nil value is a tombstone: a null value) and
// checks their acknowledgements against what `produced` holds.
func sendUpdates(client *kgo.Client, topic string, updates []c.Update, produced *[c.Partitions][]c.Stored) error {
	records := make([]*kgo.Record, len(updates))
	for n, u := range updates {
		records[n] = &kgo.Record{Topic: topic, Partition: u.Partition, Key: u.Key, Value: u.Value}
	}
	acks, err := produceRecords(client, records)
	if err != nil {
		return err
	}
	return c.CheckLogCompactionDeliveries(updates, acks, produced)
}

// logCompaction (messages.md, "Log compaction").
func logCompaction(args c.Args) error {
	producer, err := newProducer(args, "none")
	if err != nil {
		return err
	}
	defer producer.Close()
	var produced [c.Partitions][]c.Stored
	if err := sendUpdates(producer, args.Topic, c.LogCompactionUpdates(args.Seed, args.Count), &produced); err != nil {
		return err
	}
	time.Sleep(c.LogCompactionRollDelay)
	if err := sendUpdates(producer, args.Topic, c.LogCompactionRollRecords(), &produced); err != nil {
		return err
	}
	admin, client, err := newAdmin(args)
	if err != nil {
		return err
	}
	defer client.Close()
	var high [c.Partitions]int64
	from, until := map[int32]int64{}, map[int32]int64{}
	for p := range int32(c.Partitions) {
		high[p] = int64(len(produced[p]))
		from[p], until[p] = 0, high[p]
	}
	return c.AwaitLogCompaction(&produced, func() (*[c.Partitions][]c.Stored, error) {
		if err := checkOffsets(admin, args.Topic, [c.Partitions]int64{}, high); err != nil {
			return nil, err
		}
		records, err := readPartitions(args, from, until)
		if err != nil {
			return nil, err
		}
		var read [c.Partitions][]c.Stored
		for p, rs := range records {
			for _, r := range rs {
				read[p] = append(read[p], c.Stored{Offset: r.Offset, Key: r.Key, Value: r.Value})
			}
		}
		return &read, nil
	})
}

// cluster: kadm's Metadata of all topics (naming the topic could auto-create it) shows three brokers and
// TOPIC's partitions with three in-sync replicas each, led by three different brokers; then the roundtrip.
func cluster(args c.Args) error {
	admin, client, err := newAdmin(args)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(c.ClusterMetadataWait)
	for {
		ctx, cancel := callContext()
		metadata, err := admin.Metadata(ctx)
		cancel()
		if err != nil {
			client.Close()
			return c.Failf("metadata request failed: %v", err)
		}
		brokers := map[int32]string{}
		for _, b := range metadata.Brokers {
			brokers[b.NodeID] = c.HostPort(b.Host, b.Port)
		}
		partitions := map[int32]c.PartitionInfo{}
		if detail, ok := metadata.Topics[args.Topic]; ok && detail.Err == nil {
			for _, p := range detail.Partitions {
				partitions[p.Partition] = c.PartitionInfo{Leader: p.Leader, Replicas: p.Replicas, ISR: p.ISR}
			}
		}
		err = c.CheckClusterMetadata(args.Bootstrap, brokers, partitions)
		if err == nil {
			c.Logf("cluster: brokers %v, partitions %v", brokers, partitions)
			break
		}
		if time.Now().After(deadline) {
			client.Close()
			return err
		}
		time.Sleep(c.ClusterMetadataInterval)
	}
	client.Close()
	return roundtrip(args, "none")
}
