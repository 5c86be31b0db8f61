package main

// admin-configs-partitions-records (conformance/common/messages.md, "Admin scenario"), log-compaction and
// cluster.

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/IBM/sarama"

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

// topicConfigs describes TOPIC's watched configs as "value SOURCE" (sarama's names of the config sources:
// "Topic" is DYNAMIC_TOPIC_CONFIG).
func topicConfigs(admin sarama.ClusterAdmin, topic string) (map[string]string, error) {
	entries, err := admin.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: topic})
	if err != nil {
		return nil, c.Failf("DescribeConfigs of %s failed: %v", topic, err)
	}
	watched := map[string]string{}
	for _, entry := range entries {
		if slices.Contains(adminWatchedConfigs, entry.Name) {
			watched[entry.Name] = entry.Value + " " + entry.Source.String()
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
func waitForConfigs(admin sarama.ClusterAdmin, topic, what string, want map[string]string) error {
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

func expectError(what string, err, expected error, code int) error {
	if !errors.Is(err, expected) {
		return c.Failf("%s: %v, expected %v (%d)", what, err, expected, code)
	}
	return nil
}

// partitionsOf describes TOPIC (a metadata request naming it; sarama's requests never auto-create).
func partitionsOf(admin sarama.ClusterAdmin, topic string) ([]*sarama.PartitionMetadata, error) {
	described, err := admin.DescribeTopics([]string{topic})
	if err != nil {
		return nil, c.Failf("DescribeTopics of %s failed: %v", topic, err)
	}
	for _, t := range described {
		if t.Name == topic {
			if !errors.Is(t.Err, sarama.ErrNoError) {
				return nil, c.Failf("DescribeTopics of %s: %v", topic, t.Err)
			}
			partitions := slices.Clone(t.Partitions)
			slices.SortFunc(partitions, func(a, b *sarama.PartitionMetadata) int { return int(a.ID - b.ID) })
			return partitions, nil
		}
	}
	return nil, c.Failf("DescribeTopics does not list %s", topic)
}

// adminConfigsPartitionsRecords: cluster, topic configs, DeleteRecords, DescribeLogDirs and
// CreatePartitions through ClusterAdmin (earliest and latest offsets through Client.GetOffset).
func adminConfigsPartitionsRecords(args c.Args) error {
	admin, err := newAdmin(args)
	if err != nil {
		return err
	}
	defer admin.Close()
	client, err := newClient(args)
	if err != nil {
		return err
	}
	defer client.Close()
	topic := args.Topic

	// 1. Cluster (DescribeCluster; sarama does not return the cluster id, so that check is skipped).
	brokers, controller, err := admin.DescribeCluster()
	if err != nil {
		return c.Failf("DescribeCluster failed: %v", err)
	}
	if len(brokers) != 1 {
		return c.Failf("DescribeCluster: %d brokers, expected 1", len(brokers))
	}
	nodeID := brokers[0].ID()
	if controller != nodeID {
		return c.Failf("DescribeCluster: controller %d, expected the broker %d", controller, nodeID)
	}

	// 2. Topic configs.
	initial, err := topicConfigs(admin, topic)
	if err != nil {
		return err
	}
	dynamic := sarama.SourceTopic.String()
	for name, described := range initial {
		if described[len(described)-len(dynamic)-1:] == " "+dynamic {
			return c.Failf("the new topic already has an override of %s: %s", name, described)
		}
	}
	set := func(value string) sarama.IncrementalAlterConfigsEntry {
		return sarama.IncrementalAlterConfigsEntry{Operation: sarama.IncrementalAlterConfigsOperationSet, Value: &value}
	}
	overrides := map[string]sarama.IncrementalAlterConfigsEntry{"retention.ms": set("123456"), "cleanup.policy": set("compact")}
	if err := admin.IncrementalAlterConfig(sarama.TopicResource, topic, overrides, false); err != nil {
		return c.Failf("IncrementalAlterConfigs SET retention.ms=123456, cleanup.policy=compact: %v", err)
	}
	overridden := map[string]string{"retention.ms": "123456 " + dynamic, "cleanup.policy": "compact " + dynamic}
	if err := waitForConfigs(admin, topic, "after SET", overridden); err != nil {
		return err
	}
	// Kafka deletes no records of a topic whose cleanup policy lacks `delete`.
	err = admin.DeleteRecords(topic, map[int32]int64{0: 0})
	if err := expectError("DeleteRecords with cleanup.policy=compact", err, sarama.ErrPolicyViolation, 44); err != nil {
		return err
	}
	err = admin.IncrementalAlterConfig(sarama.TopicResource, topic, map[string]sarama.IncrementalAlterConfigsEntry{"retention.ms": set("abc")}, false)
	if err := expectError("IncrementalAlterConfigs SET retention.ms=abc", err, sarama.ErrInvalidConfig, 40); err != nil {
		return err
	}
	if got, err := topicConfigs(admin, topic); err != nil || !maps.Equal(got, overridden) {
		return c.Failf("after the refused SET: %v (%v), expected %v", got, err, overridden)
	}
	remove := sarama.IncrementalAlterConfigsEntry{Operation: sarama.IncrementalAlterConfigsOperationDelete}
	deletes := map[string]sarama.IncrementalAlterConfigsEntry{"retention.ms": remove, "cleanup.policy": remove}
	if err := admin.IncrementalAlterConfig(sarama.TopicResource, topic, deletes, false); err != nil {
		return c.Failf("IncrementalAlterConfigs DELETE retention.ms, cleanup.policy: %v", err)
	}
	if err := waitForConfigs(admin, topic, "after DELETE", initial); err != nil {
		return err
	}

	// 3. Records. sarama's DeleteRecords returns no low watermarks: they are read with GetOffset(OffsetOldest).
	messages := c.RoundtripMessages(args.Seed, 0, adminMessageCount)
	if err := produceWith(args, messages, producerConfig(sarama.CompressionNone)); err != nil {
		return err
	}
	counts := c.ExpectedCounts(messages)
	if err := admin.DeleteRecords(topic, map[int32]int64{0: adminDeleteBeforeOffset, 1: -1}); err != nil {
		return c.Failf("DeleteRecords partition 0 before %d, partition 1 before -1: %v", adminDeleteBeforeOffset, err)
	}
	if err := checkOffsets(client, topic, [c.Partitions]int64{adminDeleteBeforeOffset, counts[1], 0}, counts); err != nil {
		return c.Failf("after DeleteRecords: %v", err)
	}
	records, err := readPartitions(args, map[int32]int64{0: sarama.OffsetOldest}, map[int32]int64{0: counts[0]})
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
	err = admin.DeleteRecords(topic, map[int32]int64{2: beyond})
	if err := expectError(fmt.Sprintf("DeleteRecords partition 2 before %d", beyond), err, sarama.ErrOffsetOutOfRange, 1); err != nil {
		return err
	}
	if start, err := client.GetOffset(topic, 2, sarama.OffsetOldest); err != nil || start != 0 {
		return c.Failf("partition 2's earliest offset after the refused DeleteRecords: %d (%v), expected 0", start, err)
	}

	// 4. Log dirs.
	described, err := admin.DescribeLogDirs([]int32{nodeID})
	if err != nil {
		return c.Failf("DescribeLogDirs failed: %v", err)
	}
	dirs := described[nodeID]
	if len(dirs) != 1 {
		return c.Failf("DescribeLogDirs: %d log dirs for broker %d, expected 1", len(dirs), nodeID)
	}
	dir := dirs[0]
	if !errors.Is(dir.ErrorCode, sarama.ErrNoError) {
		return c.Failf("DescribeLogDirs: log dir %s error %v", dir.Path, dir.ErrorCode)
	}
	sizes := map[int32]int64{}
	for _, t := range dir.Topics {
		if t.Topic == topic {
			for _, p := range t.Partitions {
				sizes[p.PartitionID] = p.Size
			}
		}
	}
	for _, p := range allPartitions {
		if _, ok := sizes[p]; !ok {
			return c.Failf("DescribeLogDirs does not list partition %d of %s: %v", p, topic, sizes)
		}
	}
	var valueBytes int64
	for _, m := range messages {
		if m.Partition == 2 {
			valueBytes += int64(len(m.Value))
		}
	}
	if sizes[2] < valueBytes {
		return c.Failf("DescribeLogDirs: partition 2 size %d bytes, expected at least %d (its values)", sizes[2], valueBytes)
	}

	// 5. Partitions.
	if err := admin.CreatePartitions(topic, adminGrownPartitions, nil, false); err != nil {
		return c.Failf("CreatePartitions to %d: %v", adminGrownPartitions, err)
	}
	deadline := time.Now().Add(metadataSettleLimit)
	for {
		partitions, err := partitionsOf(admin, topic)
		if err != nil {
			return err
		}
		var ids []int32
		led := true
		for _, p := range partitions {
			ids = append(ids, p.ID)
			led = led && p.Leader >= 0 && errors.Is(p.Err, sarama.ErrNoError)
		}
		if slices.Equal(ids, []int32{0, 1, 2, 3, 4}) && led {
			break
		}
		if time.Now().After(deadline) {
			return c.Failf("after CreatePartitions: partitions %v (all led: %v), expected [0 1 2 3 4]", ids, led)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, p := range []int32{3, 4} {
		start, err := newPartitionOffset(client, topic, p, sarama.OffsetOldest)
		if err != nil {
			return c.Failf("earliest offset of new partition %d: %v", p, err)
		}
		end, err := newPartitionOffset(client, topic, p, sarama.OffsetNewest)
		if err != nil {
			return c.Failf("latest offset of new partition %d: %v", p, err)
		}
		if start != 0 || end != 0 {
			return c.Failf("new partition %d: earliest %d latest %d, expected 0", p, start, end)
		}
	}
	err = admin.CreatePartitions(topic, adminGrownPartitions-1, nil, false)
	if err := expectError(fmt.Sprintf("CreatePartitions to %d", adminGrownPartitions-1), err, sarama.ErrInvalidPartitions, 37); err != nil {
		return err
	}
	partitions, err := partitionsOf(admin, topic)
	if err != nil {
		return err
	}
	if len(partitions) != adminGrownPartitions {
		return c.Failf("the topic has %d partitions after the refused shrink, expected %d", len(partitions), adminGrownPartitions)
	}
	return nil
}

// newPartitionOffset is Client.GetOffset for a partition CreatePartitions just added. Apache Kafka lists it
// in the metadata with its leader a moment before that broker serves it (NOT_LEADER_OR_FOLLOWER); GetOffset
// retries once after a metadata refresh, this retries those answers for up to metadataSettleLimit.
func newPartitionOffset(client sarama.Client, topic string, partition int32, which int64) (int64, error) {
	deadline := time.Now().Add(metadataSettleLimit)
	for {
		offset, err := client.GetOffset(topic, partition, which)
		retriable := errors.Is(err, sarama.ErrNotLeaderForPartition) || errors.Is(err, sarama.ErrLeaderNotAvailable) ||
			errors.Is(err, sarama.ErrUnknownTopicOrPartition)
		if !retriable || time.Now().After(deadline) {
			return offset, err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// sendUpdates produces the log-compaction records in order (a tombstone is a message without a Value: a
// null value) and checks their acknowledgements against what `produced` holds.
func sendUpdates(producer sarama.SyncProducer, topic string, updates []c.Update, produced *[c.Partitions][]c.Stored) error {
	messages := make([]*sarama.ProducerMessage, len(updates))
	for n, u := range updates {
		messages[n] = &sarama.ProducerMessage{Topic: topic, Partition: u.Partition, Key: sarama.ByteEncoder(u.Key)}
		if u.Value != nil {
			messages[n].Value = sarama.ByteEncoder(u.Value)
		}
	}
	acks, err := sendMessages(producer, messages)
	if err != nil {
		return err
	}
	return c.CheckLogCompactionDeliveries(updates, acks, produced)
}

// logCompaction (messages.md, "Log compaction").
func logCompaction(args c.Args) error {
	producer, err := newProducer(args, producerConfig(sarama.CompressionNone))
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
	client, err := newClient(args)
	if err != nil {
		return err
	}
	defer client.Close()
	var high [c.Partitions]int64
	from, until := map[int32]int64{}, map[int32]int64{}
	for _, p := range allPartitions {
		high[p] = int64(len(produced[p]))
		from[p], until[p] = sarama.OffsetOldest, high[p]
	}
	return c.AwaitLogCompaction(&produced, func() (*[c.Partitions][]c.Stored, error) {
		if err := checkOffsets(client, args.Topic, [c.Partitions]int64{}, high); err != nil {
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

// cluster: ClusterAdmin.DescribeCluster (the brokers) and DescribeTopics (TOPIC's partitions) show three
// brokers and three in-sync replicas per partition, led by three different brokers; then the roundtrip.
func cluster(args c.Args) error {
	admin, err := newAdmin(args)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(c.ClusterMetadataWait)
	for {
		described, _, err := admin.DescribeCluster()
		if err != nil {
			admin.Close()
			return c.Failf("DescribeCluster failed: %v", err)
		}
		brokers := map[int32]string{}
		for _, b := range described {
			brokers[b.ID()] = b.Addr()
		}
		partitions := map[int32]c.PartitionInfo{}
		if metadata, err := partitionsOf(admin, args.Topic); err == nil {
			for _, p := range metadata {
				partitions[p.ID] = c.PartitionInfo{Leader: p.Leader, Replicas: p.Replicas, ISR: p.Isr}
			}
		}
		err = c.CheckClusterMetadata(args.Bootstrap, brokers, partitions)
		if err == nil {
			c.Logf("cluster: brokers %v, partitions %v", brokers, partitions)
			break
		}
		if time.Now().After(deadline) {
			admin.Close()
			return err
		}
		time.Sleep(c.ClusterMetadataInterval)
	}
	admin.Close()
	return roundtrip(args, sarama.CompressionNone)
}
