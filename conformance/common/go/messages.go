package conformance

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"strconv"
)

// The message rules of conformance/common/messages.md.
const (
	BaseTimestampMs           int64 = 1_700_000_000_000
	DefaultSeed               int64 = 1
	Partitions                      = 3
	RoundtripDefaultCount     int64 = 10_000
	CompressionDefaultCount   int64 = 2_000
	ConsumerGroupDefaultCount int64 = 3_000
	LogCompactionDefaultCount int64 = 3_000
	ClusterDefaultCount       int64 = 3_000

	// LargeValueSize is the message-too-large value: 2 MiB, above the broker's default message.max.bytes.
	LargeValueSize = 2 * 1024 * 1024

	OffsetOutOfRangeCount       int64 = 10
	OffsetOutOfRangeFetchOffset int64 = 1000

	ListOffsetsCount           int64 = 100
	ListOffsetsTimestampStepMs int64 = 10
	// ListOffsetsQueryTimestampMs: the first record at or after it is message 51 (timestamp +510).
	ListOffsetsQueryTimestampMs int64 = BaseTimestampMs + 505
	ListOffsetsExpectedOffset   int64 = 51
	// ListOffsetsFarFutureMs is later than every record's timestamp.
	ListOffsetsFarFutureMs int64 = BaseTimestampMs + 1_000_000_000_000
)

// Header is a record header: a UTF-8 key and a byte value.
type Header struct {
	Key   string
	Value []byte
}

// Message is one message as produced.
type Message struct {
	Index       int64
	Partition   int32
	Key         []byte
	Value       []byte // never nil: an empty value is an empty slice
	Headers     []Header
	TimestampMs int64
}

// Consumed is a record as a consumer returned it, normalised by the driver.
type Consumed struct {
	Partition   int32
	Offset      int64
	Key         []byte
	Value       []byte // nil for a null value
	Headers     []Header
	TimestampMs int64
	// TimestampType is "CreateTime" or "LogAppendTime", or "" when the client does not say (sarama): the
	// exact timestamp then stands for it (a LogAppendTime would be the broker's clock, not 2023).
	TimestampType string
}

// MessageKey is the key of message i: `key-{i}`.
func MessageKey(i int64) []byte {
	return []byte("key-" + strconv.FormatInt(i, 10))
}

// MessageValueLength is 0 when i % 97 == 0, else 1 + (i*7919 + seed*13) % 200.
func MessageValueLength(seed, i int64) int {
	if i%97 == 0 {
		return 0
	}
	return int(1 + (i*7919+seed*13)%200)
}

// MessageValue is the value of message i: byte j = (seed*131 + i*31 + j*j + j*17) % 256. Never nil.
func MessageValue(seed, i int64) []byte {
	value := make([]byte, MessageValueLength(seed, i))
	for j := range value {
		k := int64(j)
		value[j] = byte((seed*131 + i*31 + k*k + k*17) % 256)
	}
	return value
}

// MessageHeaders are `h=a`, `h=b`, `idx={i}`: the key h repeats on purpose.
func MessageHeaders(i int64) []Header {
	return []Header{{"h", []byte("a")}, {"h", []byte("b")}, {"idx", []byte(strconv.FormatInt(i, 10))}}
}

// RoundtripMessage is roundtrip message i.
func RoundtripMessage(seed, i int64) Message {
	return Message{
		Index:       i,
		Partition:   int32(i % Partitions),
		Key:         MessageKey(i),
		Value:       MessageValue(seed, i),
		Headers:     MessageHeaders(i),
		TimestampMs: BaseTimestampMs + i,
	}
}

// RoundtripMessages are roundtrip messages first .. first+count-1.
func RoundtripMessages(seed, first, count int64) []Message {
	messages := make([]Message, 0, count)
	for i := first; i < first+count; i++ {
		messages = append(messages, RoundtripMessage(seed, i))
	}
	return messages
}

// SinglePartitionMessages are roundtrip messages 0 .. count-1 all sent to partition 0, with timestamps
// BASE + step*i (offset-out-of-range: step 1, list-offsets: step 10).
func SinglePartitionMessages(seed, count, stepMs int64) []Message {
	messages := make([]Message, 0, count)
	for i := range count {
		message := RoundtripMessage(seed, i)
		message.Partition = 0
		message.TimestampMs = BaseTimestampMs + stepMs*i
		messages = append(messages, message)
	}
	return messages
}

// LargeValue is the 2 MiB value of message-too-large: byte j = j % 251.
func LargeValue() []byte {
	value := make([]byte, LargeValueSize)
	for j := range value {
		value[j] = byte(j % 251)
	}
	return value
}

// LargeMessage is the record message-too-large sends first: key `large`, the large value, no headers,
// partition 0.
func LargeMessage() Message {
	return Message{Index: -1, Partition: 0, Key: []byte("large"), Value: LargeValue(), TimestampMs: BaseTimestampMs}
}

// MessageTooLargeSmallMessage is roundtrip message 1 sent to partition 0.
func MessageTooLargeSmallMessage(seed int64) Message {
	message := RoundtripMessage(seed, 1)
	message.Partition = 0
	return message
}

// ExpectedCounts is how many of `messages` go to each partition.
func ExpectedCounts(messages []Message) [Partitions]int64 {
	var counts [Partitions]int64
	for _, message := range messages {
		counts[message.Partition]++
	}
	return counts
}

// DescribeBytes shows bytes for a failure message: null, or the length and the first bytes in hex.
func DescribeBytes(data []byte) string {
	if data == nil {
		return "null"
	}
	const limit = 40
	if len(data) > limit {
		return fmt.Sprintf("%d bytes 0x%s...", len(data), hex.EncodeToString(data[:limit]))
	}
	return fmt.Sprintf("%d bytes 0x%s", len(data), hex.EncodeToString(data))
}

// DescribeHeaders shows headers for a failure message.
func DescribeHeaders(headers []Header) string {
	var out bytes.Buffer
	out.WriteString("[")
	for n, header := range headers {
		if n > 0 {
			out.WriteString(", ")
		}
		fmt.Fprintf(&out, "(%q, %s)", header.Key, DescribeBytes(header.Value))
	}
	out.WriteString("]")
	return out.String()
}

// Ack is where the producer acknowledged one message.
type Ack struct {
	Partition int32
	Offset    int64
}

// CheckDeliveryOffsets requires acks[n] (the acknowledgement of messages[n]) to name the message's partition,
// and each partition's offsets to be first[p], first[p]+1, ... in send order.
func CheckDeliveryOffsets(messages []Message, acks []Ack, first [Partitions]int64) error {
	if len(acks) != len(messages) {
		return Failf("%d messages sent, %d acknowledged", len(messages), len(acks))
	}
	next := first
	for n, message := range messages {
		ack := acks[n]
		if ack.Partition != message.Partition {
			return Failf("message %d acknowledged on partition %d, sent to %d", message.Index, ack.Partition, message.Partition)
		}
		if ack.Offset != next[ack.Partition] {
			return Failf("message %d acknowledged at offset %d in partition %d, expected %d",
				message.Index, ack.Offset, ack.Partition, next[ack.Partition])
		}
		next[ack.Partition]++
	}
	return nil
}

// CheckRecord requires `record` to be `message` at `expectedOffset`: partition, offset, key, value (an empty
// value empty, not null), headers (order and duplicates) and CreateTime timestamp, byte for byte.
func CheckRecord(message Message, record Consumed, expectedOffset int64) error {
	where := fmt.Sprintf("partition %d offset %d (message %d)", record.Partition, record.Offset, message.Index)
	switch {
	case record.Partition != message.Partition:
		return Failf("%s: record is in partition %d, expected %d", where, record.Partition, message.Partition)
	case record.Offset != expectedOffset:
		return Failf("%s: offset %d, expected %d", where, record.Offset, expectedOffset)
	case !sameBytes(record.Key, message.Key):
		return Failf("%s: key %s, expected %s", where, DescribeBytes(record.Key), DescribeBytes(message.Key))
	case !sameBytes(record.Value, message.Value):
		return Failf("%s: value %s, expected %s", where, DescribeBytes(record.Value), DescribeBytes(message.Value))
	case !sameHeaders(record.Headers, message.Headers):
		return Failf("%s: headers %s, expected %s", where, DescribeHeaders(record.Headers), DescribeHeaders(message.Headers))
	case record.TimestampMs != message.TimestampMs:
		return Failf("%s: timestamp %d, expected %d", where, record.TimestampMs, message.TimestampMs)
	case record.TimestampType != "" && record.TimestampType != "CreateTime":
		return Failf("%s: timestamp type %s, expected CreateTime", where, record.TimestampType)
	}
	return nil
}

// sameBytes is byte equality that tells null (nil) from empty.
func sameBytes(a, b []byte) bool {
	return (a == nil) == (b == nil) && bytes.Equal(a, b)
}

func sameHeaders(a, b []Header) bool {
	if len(a) != len(b) {
		return false
	}
	for n := range a {
		if a[n].Key != b[n].Key || !sameBytes(a[n].Value, b[n].Value) {
			return false
		}
	}
	return true
}

// CheckRecordsMatch requires every partition to hold exactly the messages sent to it, in send order, at
// offsets 0, 1, 2, ..., each checked by CheckRecord.
func CheckRecordsMatch(messages []Message, consumed map[int32][]Consumed) error {
	expected := make(map[int32][]Message, Partitions)
	for _, message := range messages {
		expected[message.Partition] = append(expected[message.Partition], message)
	}
	for partition := int32(0); partition < Partitions; partition++ {
		records := consumed[partition]
		for position := 0; position < len(records) && position < len(expected[partition]); position++ {
			if err := CheckRecord(expected[partition][position], records[position], int64(position)); err != nil {
				return err
			}
		}
		if len(records) != len(expected[partition]) {
			return Failf("partition %d: consumed %d records, expected %d", partition, len(records), len(expected[partition]))
		}
	}
	return nil
}
