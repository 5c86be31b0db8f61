package conformance

import (
	"fmt"
	"maps"
	"strings"
	"time"
)

// The log-compaction scenario (messages.md, "Log compaction"; messages.py).
const (
	LogCompactionKeys = 100
	// LogCompactionRollDelay: the roll records go out this long after the last update was acknowledged, so
	// that Kafka rolls its segment there (more than segment.ms later) and every update becomes cleanable.
	LogCompactionRollDelay = time.Second
	// LogCompactionWait is how long the driver keeps re-reading the topic for it to be compacted.
	LogCompactionWait = 60 * time.Second
	// LogCompactionRereadInterval is the pause between two reads.
	LogCompactionRereadInterval = time.Second
)

// Update is one record of the scenario; a nil Value is a tombstone.
type Update struct {
	Partition int32
	Key       []byte
	Value     []byte
}

// Stored is a record at its offset; a nil Value is a tombstone (null).
type Stored struct {
	Offset int64
	Key    []byte
	Value  []byte
}

// LogCompactionUpdate is update u: key `key-{k}` with k = (u*37 + (u/100)*11 + seed) % 100 to partition
// k % 3, value `value-{u}`, or a tombstone when (u*13 + seed) % 10 == 0.
func LogCompactionUpdate(seed, u int64) Update {
	k := (u*37 + (u/100)*11 + seed) % LogCompactionKeys
	update := Update{Partition: int32(k % Partitions), Key: fmt.Appendf(nil, "key-%d", k)}
	if (u*13+seed)%10 != 0 {
		update.Value = fmt.Appendf(nil, "value-%d", u)
	}
	return update
}

// LogCompactionUpdates are updates 0 .. count-1.
func LogCompactionUpdates(seed, count int64) []Update {
	updates := make([]Update, 0, count)
	for u := range count {
		updates = append(updates, LogCompactionUpdate(seed, u))
	}
	return updates
}

// LogCompactionRollRecords are one record per partition p, key and value `roll-{p}`.
func LogCompactionRollRecords() []Update {
	records := make([]Update, 0, Partitions)
	for p := range int32(Partitions) {
		records = append(records, Update{Partition: p, Key: fmt.Appendf(nil, "roll-%d", p), Value: fmt.Appendf(nil, "roll-%d", p)})
	}
	return records
}

// CheckLogCompactionDeliveries requires sent[n], acknowledged at acks[n], at the next offset of its
// partition after what `produced` holds, and appends it to `produced` (what each partition holds as
// produced).
func CheckLogCompactionDeliveries(sent []Update, acks []Ack, produced *[Partitions][]Stored) error {
	if len(acks) != len(sent) {
		return Failf("%d records sent, %d acknowledged", len(sent), len(acks))
	}
	for n, record := range sent {
		ack := acks[n]
		if ack.Partition != record.Partition {
			return Failf("record %d (key %q) acknowledged on partition %d, sent to %d", n, record.Key, ack.Partition, record.Partition)
		}
		next := int64(len(produced[ack.Partition]))
		if ack.Offset != next {
			return Failf("record %d (key %q) acknowledged at offset %d of partition %d, expected %d",
				n, record.Key, ack.Offset, ack.Partition, next)
		}
		produced[ack.Partition] = append(produced[ack.Partition], Stored{ack.Offset, record.Key, record.Value})
	}
	return nil
}

// foldByKey is the table a compacted log stands for: the latest value of each key; a tombstone removes it.
func foldByKey(records []Stored) map[string]string {
	table := make(map[string]string)
	for _, record := range records {
		if record.Value == nil {
			delete(table, string(record.Key))
		} else {
			table[string(record.Key)] = string(record.Value)
		}
	}
	return table
}

// CheckLogCompaction checks one read of the whole topic against what was produced. It returns an error for
// what compaction may never do (a record that is not the one produced at its offset, a record twice or out
// of order, a live key's latest record missing); else ("", nil) when the topic is compacted (each key's
// latest record alone remains; a latest tombstone may remain or be gone; fewer records than produced), or a
// description of what is left to clean.
func CheckLogCompaction(produced, consumed *[Partitions][]Stored) (string, error) {
	var notYet []string
	for partition := range Partitions {
		sent := produced[partition]
		records := consumed[partition]
		latest := make(map[string]int64)
		for _, record := range sent {
			latest[string(record.Key)] = record.Offset
		}
		seen := make(map[int64]bool)
		previous := int64(-1)
		for _, record := range records {
			where := fmt.Sprintf("partition %d offset %d", partition, record.Offset)
			if record.Offset <= previous {
				return "", Failf("%s: returned after offset %d (out of order or twice)", where, previous)
			}
			previous = record.Offset
			if record.Offset < 0 || record.Offset >= int64(len(sent)) {
				return "", Failf("%s: no record was produced at this offset (produced 0..%d)", where, len(sent)-1)
			}
			want := sent[record.Offset]
			if !sameBytes(record.Key, want.Key) || !sameBytes(record.Value, want.Value) {
				return "", Failf("%s: key %s value %s, produced key %s value %s", where, DescribeBytes(record.Key),
					DescribeBytes(record.Value), DescribeBytes(want.Key), DescribeBytes(want.Value))
			}
			seen[record.Offset] = true
		}
		for key, offset := range latest {
			if sent[offset].Value != nil && !seen[offset] {
				return "", Failf("partition %d: the latest record of key %q (offset %d) is missing: compaction removed a live key's latest value",
					partition, key, offset)
			}
		}
		var stale []int64
		for _, record := range records {
			if latest[string(record.Key)] != record.Offset {
				stale = append(stale, record.Offset)
			}
		}
		if len(stale) > 0 {
			notYet = append(notYet, fmt.Sprintf("partition %d: %d of %d records left, %d superseded (first at offsets %v)",
				partition, len(records), len(sent), len(stale), stale[:min(5, len(stale))]))
			continue
		}
		if !maps.Equal(foldByKey(records), foldByKey(sent)) {
			return "", Failf("partition %d: the records left do not fold to the latest values", partition)
		}
		if len(records) >= len(sent) {
			return "", Failf("partition %d: %d records left of %d produced: nothing was compacted", partition, len(records), len(sent))
		}
	}
	return strings.Join(notYet, "; "), nil
}

// AwaitLogCompaction re-reads the topic every LogCompactionRereadInterval, for at most LogCompactionWait, until
// CheckLogCompaction finds it compacted. read checks the partitions' offsets and returns every record, each
// partition from the beginning to the end produced.
func AwaitLogCompaction(produced *[Partitions][]Stored, read func() (*[Partitions][]Stored, error)) error {
	deadline := time.Now().Add(LogCompactionWait)
	for {
		records, err := read()
		if err != nil {
			return err
		}
		left, err := CheckLogCompaction(produced, records)
		if err != nil {
			return err
		}
		if left == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return Failf("not compacted within %s: %s", LogCompactionWait, left)
		}
		Logf("not compacted yet: %s", left)
		time.Sleep(LogCompactionRereadInterval)
	}
}
