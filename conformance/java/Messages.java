import java.nio.charset.StandardCharsets;

/**
 * The deterministic test messages every conformance driver produces and verifies
 * (conformance/common/messages.md describes them; this reimplements conformance/common/messages.py exactly).
 */
final class Messages {
    static final long BASE_TIMESTAMP_MS = 1_700_000_000_000L;
    static final long DEFAULT_SEED = 1;
    static final int PARTITIONS = 3;
    static final int ROUNDTRIP_DEFAULT_COUNT = 10_000;
    static final int COMPRESSION_DEFAULT_COUNT = 2_000;
    static final int CONSUMER_GROUP_DEFAULT_COUNT = 3_000;
    static final int CLUSTER_DEFAULT_COUNT = 3_000;
    static final int CLUSTER_BROKERS = 3;
    static final int CLUSTER_REPLICATION_FACTOR = 3;
    /** Above the broker's default message.max.bytes (1048588). */
    static final int LARGE_VALUE_SIZE = 2 * 1024 * 1024;
    static final int OFFSET_OUT_OF_RANGE_COUNT = 10;
    static final long OFFSET_OUT_OF_RANGE_FETCH_OFFSET = 1000;
    static final int LIST_OFFSETS_COUNT = 100;
    static final long LIST_OFFSETS_TIMESTAMP_STEP_MS = 10;
    /** The first record at or after this timestamp is i = 51 (timestamp BASE + 510). */
    static final long LIST_OFFSETS_QUERY_TIMESTAMP_MS = BASE_TIMESTAMP_MS + 505;
    static final long LIST_OFFSETS_EXPECTED_OFFSET = 51;
    /** Later than every record's timestamp. */
    static final long LIST_OFFSETS_FAR_FUTURE_MS = BASE_TIMESTAMP_MS + 1_000_000_000_000L;
    /** message-too-large's 2 MiB record: this key, no headers, partition 0. */
    static final String LARGE_KEY = "large";
    /** message-too-large's follow-up: roundtrip message 1, sent to partition 0. */
    static final long SMALL_MESSAGE_INDEX = 1;

    private Messages() {}

    static int partition(long i) {
        return (int) (i % PARTITIONS);
    }

    static byte[] key(long i) {
        return ("key-" + i).getBytes(StandardCharsets.UTF_8);
    }

    static long timestamp(long i) {
        return BASE_TIMESTAMP_MS + i;
    }

    /** Header (name, value) pairs in order; the repeated name "h" is deliberate. */
    static String[] headerNames(long i) {
        return new String[] {"h", "h", "idx"};
    }

    static byte[][] headerValues(long i) {
        return new byte[][] {
            "a".getBytes(StandardCharsets.UTF_8),
            "b".getBytes(StandardCharsets.UTF_8),
            Long.toString(i).getBytes(StandardCharsets.UTF_8),
        };
    }

    /** Value length: 0 when i % 97 == 0, otherwise 1..200. */
    static int valueLength(long seed, long i) {
        if (i % 97 == 0) {
            return 0;
        }
        return (int) (1 + (i * 7919 + seed * 13) % 200);
    }

    /** Value bytes: byte j = (seed*131 + i*31 + j*j + j*17) mod 256, so mostly not valid UTF-8. */
    static byte[] value(long seed, long i) {
        int length = valueLength(seed, i);
        byte[] out = new byte[length];
        for (long j = 0; j < length; j++) {
            out[(int) j] = (byte) ((seed * 131 + i * 31 + j * j + j * 17) % 256);
        }
        return out;
    }

    /** The 2 MiB value of message-too-large: byte j = j mod 251. */
    static byte[] largeValue() {
        byte[] out = new byte[LARGE_VALUE_SIZE];
        for (int j = 0; j < out.length; j++) {
            out[j] = (byte) (j % 251);
        }
        return out;
    }
}
