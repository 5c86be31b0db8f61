import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The log-compaction scenario's records and checks (conformance/common/messages.md, "Log compaction"; this
 * reimplements the log-compaction part of conformance/common/messages.py exactly).
 */
final class LogCompaction {
    static final int DEFAULT_COUNT = 3_000;
    static final int KEYS = 100;
    /** The roll records go out this long after the last update was acknowledged (Kafka then rolls its segment). */
    static final long ROLL_DELAY_MS = 1_000;
    static final long WAIT_MS = 60_000;
    static final long REREAD_INTERVAL_MS = 1_000;

    /** One record; value null is a tombstone. */
    record Update(int partition, byte[] key, byte[] value) {}

    /** A record as produced or consumed, at its offset. */
    record Stored(long offset, byte[] key, byte[] value) {}

    /** The scenario does not hold and never will (a record compaction may not change or remove). */
    static final class Violation extends Exception {
        private static final long serialVersionUID = 1L;

        Violation(String message) {
            super(message);
        }
    }

    private LogCompaction() {}

    static int keyIndex(long seed, long index) {
        return (int) ((index * 37 + (index / 100) * 11 + seed) % KEYS);
    }

    static Update update(long seed, long index) {
        int k = keyIndex(seed, index);
        byte[] value = (index * 13 + seed) % 10 == 0 ? null : ("value-" + index).getBytes(StandardCharsets.US_ASCII);
        return new Update(k % Messages.PARTITIONS, ("key-" + k).getBytes(StandardCharsets.US_ASCII), value);
    }

    static List<Update> updates(long seed, int count) {
        List<Update> out = new ArrayList<>(count);
        for (long i = 0; i < count; i++) {
            out.add(update(seed, i));
        }
        return out;
    }

    static List<Update> rollRecords() {
        List<Update> out = new ArrayList<>();
        for (int p = 0; p < Messages.PARTITIONS; p++) {
            byte[] bytes = ("roll-" + p).getBytes(StandardCharsets.US_ASCII);
            out.add(new Update(p, bytes, bytes));
        }
        return out;
    }

    static String show(byte[] bytes) {
        return bytes == null ? "null" : "'" + new String(bytes, StandardCharsets.US_ASCII) + "'";
    }

    /** The table a compacted log stands for: the latest value of each key; a tombstone removes the key. */
    static Map<String, String> fold(List<Stored> records) {
        Map<String, String> table = new HashMap<>();
        for (Stored record : records) {
            String key = show(record.key());
            if (record.value() == null) {
                table.remove(key);
            } else {
                table.put(key, show(record.value()));
            }
        }
        return table;
    }

    /**
     * One read of the whole topic against what was produced (each partition's records in offset order, offsets
     * 0, 1, 2, ...). Throws Violation for what compaction may never do; returns null when the topic is compacted
     * (each key's latest record alone remains, a latest tombstone may remain or be gone, fewer records than
     * produced), else what is left to clean.
     */
    static String check(Map<Integer, List<Stored>> produced, Map<Integer, List<Stored>> consumed) throws Violation {
        List<String> notYet = new ArrayList<>();
        for (int p = 0; p < Messages.PARTITIONS; p++) {
            List<Stored> sent = produced.get(p);
            Map<String, Long> latestOffset = new HashMap<>();
            for (Stored record : sent) {
                latestOffset.put(show(record.key()), record.offset());
            }
            List<Stored> records = consumed.getOrDefault(p, List.of());
            Set<Long> seen = new HashSet<>();
            long previous = -1;
            for (Stored record : records) {
                String where = "partition " + p + " offset " + record.offset();
                if (record.offset() <= previous) {
                    throw new Violation(where + ": returned after offset " + previous + " (out of order or twice)");
                }
                previous = record.offset();
                if (record.offset() >= sent.size()) {
                    throw new Violation(where + ": no record was produced at this offset (produced 0.." + (sent.size() - 1) + ")");
                }
                Stored expected = sent.get((int) record.offset());
                if (!Arrays.equals(record.key(), expected.key()) || !Arrays.equals(record.value(), expected.value())) {
                    throw new Violation(where + ": key " + show(record.key()) + " value " + show(record.value())
                            + ", produced key " + show(expected.key()) + " value " + show(expected.value()));
                }
                seen.add(record.offset());
            }
            for (Map.Entry<String, Long> latest : latestOffset.entrySet()) {
                if (sent.get(latest.getValue().intValue()).value() != null && !seen.contains(latest.getValue())) {
                    throw new Violation("partition " + p + ": the latest record of key " + latest.getKey() + " (offset "
                            + latest.getValue() + ") is missing: compaction removed a live key's latest value");
                }
            }
            List<Long> stale = new ArrayList<>();
            for (Stored record : records) {
                if (latestOffset.get(show(record.key())) != record.offset()) {
                    stale.add(record.offset());
                }
            }
            if (!stale.isEmpty()) {
                notYet.add("partition " + p + ": " + records.size() + " of " + sent.size() + " records left, "
                        + stale.size() + " superseded (first at offsets " + stale.subList(0, Math.min(5, stale.size())) + ")");
                continue;
            }
            if (!fold(records).equals(fold(sent))) {
                throw new Violation("partition " + p + ": the records left do not fold to the latest values");
            }
            if (records.size() >= sent.size()) {
                throw new Violation("partition " + p + ": " + records.size() + " records left of " + sent.size()
                        + " produced: nothing was compacted");
            }
        }
        return notYet.isEmpty() ? null : String.join("; ", notYet);
    }

    /** An empty per-partition map, partitions 0..2 in order. */
    static Map<Integer, List<Stored>> emptyByPartition() {
        Map<Integer, List<Stored>> out = new LinkedHashMap<>();
        for (int p = 0; p < Messages.PARTITIONS; p++) {
            out.put(p, new ArrayList<>());
        }
        return out;
    }
}
