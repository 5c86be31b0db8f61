package conformance

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"
)

// The check values published in conformance/common/messages.md (seed 1).
func TestRoundtripCheckValues(t *testing.T) {
	cases := []struct {
		i         int64
		partition int32
		key       string
		length    int
		prefix    string
	}{
		{0, 0, "key-0", 0, ""},
		{1, 1, "key-1", 133, "a2b4c8def6102c4a6a8c"},
		{2, 2, "key-2", 52, "c1d3e7fd152f4b6989ab"},
		{5, 2, "key-5", 9, "1e30445a728ca8c6e6"},
		{10, 1, "key-10", 4, "b9cbdff5"},
		{97, 1, "key-97", 0, ""},
	}
	for _, c := range cases {
		m := RoundtripMessage(1, c.i)
		shown := hex.EncodeToString(m.Value[:min(10, len(m.Value))])
		if m.Partition != c.partition || string(m.Key) != c.key || len(m.Value) != c.length || shown != c.prefix {
			t.Errorf("message %d: partition %d key %s length %d value %s", c.i, m.Partition, m.Key, len(m.Value), shown)
		}
		if m.Value == nil {
			t.Errorf("message %d: value is nil, want an empty slice", c.i)
		}
	}
	digest := sha256.New()
	for i := range int64(10_000) {
		digest.Write(MessageValue(1, i))
	}
	if got := hex.EncodeToString(digest.Sum(nil)); got != "bf2a93981e36cd7456ef7708f3f63b332af9f5ee81077ba17b4a1d307ab9b13e" {
		t.Errorf("values 0..9999 hash to %s", got)
	}
	large := sha256.Sum256(LargeValue())
	if got := hex.EncodeToString(large[:]); got != "1e075c8d478ad21844e33e830a695ef03a4d2488b69ee275bd8947618bb1be1e" {
		t.Errorf("large value hashes to %s", got)
	}
}

// messages.md, "Log compaction": for seed 1 and 3000 updates, partitions get 1020, 990, 990 updates; 300 are
// tombstones; all 100 keys are written and 10 end deleted; update 0 is key-1 = value-0 to partition 1.
func TestLogCompactionUpdates(t *testing.T) {
	updates := LogCompactionUpdates(1, 3000)
	var sizes [Partitions]int
	tombstones := 0
	latest := make(map[string][]byte)
	for _, u := range updates {
		sizes[u.Partition]++
		if u.Value == nil {
			tombstones++
		}
		latest[string(u.Key)] = u.Value
	}
	deleted := 0
	for _, value := range latest {
		if value == nil {
			deleted++
		}
	}
	if sizes != [Partitions]int{1020, 990, 990} || tombstones != 300 || len(latest) != 100 || deleted != 10 {
		t.Errorf("sizes %v, %d tombstones, %d keys, %d deleted", sizes, tombstones, len(latest), deleted)
	}
	if u := updates[0]; u.Partition != 1 || string(u.Key) != "key-1" || string(u.Value) != "value-0" {
		t.Errorf("update 0 is %+v", u)
	}
}

func TestFirstOffsets(t *testing.T) {
	if got := FirstOffsets(3000); got != [Partitions]int64{1000, 1000, 1000} {
		t.Errorf("FirstOffsets(3000) = %v", got)
	}
	if got := FirstOffsets(10); got != [Partitions]int64{4, 3, 3} {
		t.Errorf("FirstOffsets(10) = %v", got)
	}
}
