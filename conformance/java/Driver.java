import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.HashSet;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.LogDirDescription;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.RecordsToDelete;
import org.apache.kafka.clients.admin.ReplicaInfo;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.consumer.OffsetAndTimestamp;
import org.apache.kafka.clients.consumer.OffsetOutOfRangeException;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.KafkaFuture;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.InvalidTopicException;
import org.apache.kafka.common.errors.RecordTooLargeException;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.apache.kafka.common.protocol.Errors;
import org.apache.kafka.common.record.TimestampType;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * Conformance driver for the Java client (kafka-clients):
 *   Driver --bootstrap HOST:PORT --scenario NAME --topic TOPIC [--count N] [--seed S]
 * Exit 0 = pass, 1 = fail (reason on stderr), 2 = scenario not supported.
 */
public final class Driver {
    static final int EXIT_PASS = 0;
    static final int EXIT_FAIL = 1;
    static final int EXIT_NOT_SUPPORTED = 2;

    /** Upper bound for one driver run; the scenarios themselves take a few seconds. */
    static final Duration RUN_TIME_LIMIT = Duration.ofSeconds(120);
    /** How long a consumer keeps polling for the records it expects. */
    static final Duration CONSUME_TIME_LIMIT = Duration.ofSeconds(30);
    static final Duration ADMIN_TIME_LIMIT = Duration.ofSeconds(30);
    static final Duration METADATA_SETTLE_LIMIT = Duration.ofSeconds(15);
    /** How long the cluster scenario re-reads the metadata before its checks fail (brokers learn of a new topic a moment apart). */
    static final Duration CLUSTER_METADATA_WAIT = Duration.ofSeconds(30);


    /** A scenario check that did not hold; its message is the reason printed on stderr. */
    static final class Failure extends Exception {
        private static final long serialVersionUID = 1L;

        Failure(String message) {
            super(message);
        }
    }

    final String bootstrap;
    final String topic;
    final long seed;

    Driver(String bootstrap, String topic, long seed) {
        this.bootstrap = bootstrap;
        this.topic = topic;
        this.seed = seed;
    }

    public static void main(String[] args) {
        String bootstrap = null;
        String scenario = null;
        String topic = null;
        Integer count = null;
        long seed = Messages.DEFAULT_SEED;
        try {
            for (int n = 0; n < args.length; n++) {
                String name = args[n];
                if (n + 1 >= args.length) {
                    throw new IllegalArgumentException("missing value for " + name);
                }
                String value = args[++n];
                switch (name) {
                    case "--bootstrap" -> bootstrap = value;
                    case "--scenario" -> scenario = value;
                    case "--topic" -> topic = value;
                    case "--count" -> count = Integer.parseInt(value);
                    case "--seed" -> seed = Long.parseLong(value);
                    default -> throw new IllegalArgumentException("unknown argument " + name);
                }
            }
            if (bootstrap == null || scenario == null || topic == null) {
                throw new IllegalArgumentException("--bootstrap, --scenario and --topic are required");
            }
            if (count != null && count < 0) {
                throw new IllegalArgumentException("--count must be >= 0");
            }
            if (seed < 0 || seed >= (1L << 31)) {
                throw new IllegalArgumentException("--seed must be in 0..2^31-1");
            }
        } catch (IllegalArgumentException e) {
            System.err.println("usage: Driver --bootstrap HOST:PORT --scenario NAME --topic TOPIC [--count N] [--seed S]: "
                    + e.getMessage());
            System.exit(EXIT_FAIL);
        }

        startWatchdog(scenario);
        Driver driver = new Driver(bootstrap, topic, seed);
        String where = "java " + scenario + " on " + bootstrap + " topic " + topic;
        long started = System.nanoTime();
        int exitCode;
        try {
            exitCode = driver.run(scenario, count);
            if (exitCode == EXIT_PASS) {
                System.err.printf("ok: java %s (%.1f s)%n", scenario, (System.nanoTime() - started) / 1e9);
            }
        } catch (Failure e) {
            System.err.println("FAIL: " + where + ": " + e.getMessage());
            exitCode = EXIT_FAIL;
        } catch (Exception e) {
            System.err.println("FAIL: " + where + ": unexpected exception");
            e.printStackTrace();
            exitCode = EXIT_FAIL;
        }
        // System.exit so that no lingering client thread can keep the JVM alive.
        System.exit(exitCode);
    }

    static void startWatchdog(String scenario) {
        Thread watchdog = new Thread(() -> {
            try {
                Thread.sleep(RUN_TIME_LIMIT.toMillis());
            } catch (InterruptedException e) {
                return;
            }
            System.err.println("FAIL: java " + scenario + ": did not finish within " + RUN_TIME_LIMIT.toSeconds() + " s");
            Runtime.getRuntime().halt(EXIT_FAIL);
        }, "watchdog");
        watchdog.setDaemon(true);
        watchdog.start();
    }

    int run(String scenario, Integer count) throws Exception {
        switch (scenario) {
            case "roundtrip" -> roundtrip(count != null ? count : Messages.ROUNDTRIP_DEFAULT_COUNT, "none");
            case "compression-gzip" -> roundtrip(count != null ? count : Messages.COMPRESSION_DEFAULT_COUNT, "gzip");
            case "compression-snappy" -> roundtrip(count != null ? count : Messages.COMPRESSION_DEFAULT_COUNT, "snappy");
            case "compression-lz4" -> roundtrip(count != null ? count : Messages.COMPRESSION_DEFAULT_COUNT, "lz4");
            case "compression-zstd" -> roundtrip(count != null ? count : Messages.COMPRESSION_DEFAULT_COUNT, "zstd");
            case "idempotent-produce" -> idempotentProduce(count != null ? count : Messages.ROUNDTRIP_DEFAULT_COUNT);
            case "consumer-group" -> consumerGroup(count != null ? count : Messages.CONSUMER_GROUP_DEFAULT_COUNT, "classic");
            case "consumer-group-kip848" -> consumerGroup(count != null ? count : Messages.CONSUMER_GROUP_DEFAULT_COUNT, "consumer");
            case "produce" -> produceMessages(count != null ? count : Messages.ROUNDTRIP_DEFAULT_COUNT, "none");
            case "verify" -> consumeAndVerify(count != null ? count : Messages.ROUNDTRIP_DEFAULT_COUNT);
            case "message-too-large" -> messageTooLarge();
            case "offset-out-of-range" -> offsetOutOfRange();
            case "list-offsets" -> listOffsets();
            case "admin-topics" -> adminTopics();
            case "admin-configs-partitions-records" -> adminConfigsPartitionsRecords();
            case "log-compaction" -> logCompaction(count != null ? count : LogCompaction.DEFAULT_COUNT);
            case "cluster" -> cluster(count != null ? count : Messages.CLUSTER_DEFAULT_COUNT);
            default -> {
                System.err.println("n/a: java does not implement scenario " + scenario);
                return EXIT_NOT_SUPPORTED;
            }
        }
        return EXIT_PASS;
    }

    // ---------------------------------------------------------------- clients

    KafkaProducer<byte[], byte[]> newProducer(String compression, Properties extra) {
        Properties props = new Properties();
        props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ProducerConfig.CLIENT_ID_CONFIG, "skein-conformance-java");
        props.put(ProducerConfig.ACKS_CONFIG, "all");
        // Plain produce everywhere except idempotent-produce, which turns idempotence on through `extra`.
        props.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "false");
        // Without idempotence, one request in flight keeps send order even if a request is retried.
        props.put(ProducerConfig.MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION, "1");
        props.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, compression);
        props.put(ProducerConfig.LINGER_MS_CONFIG, "5");
        props.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, "10000");
        props.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "30000");
        props.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "30000");
        props.putAll(extra);
        return new KafkaProducer<>(props, new ByteArraySerializer(), new ByteArraySerializer());
    }

    KafkaConsumer<byte[], byte[]> newConsumer(String autoOffsetReset) {
        Properties props = new Properties();
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ConsumerConfig.CLIENT_ID_CONFIG, "skein-conformance-java");
        // No group.id: partitions are assigned explicitly and no offsets are committed.
        props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, autoOffsetReset);
        props.put(ConsumerConfig.REQUEST_TIMEOUT_MS_CONFIG, "10000");
        props.put(ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "30000");
        return new KafkaConsumer<>(props, new ByteArrayDeserializer(), new ByteArrayDeserializer());
    }

    Admin newAdmin() {
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(AdminClientConfig.CLIENT_ID_CONFIG, "skein-conformance-java");
        props.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "10000");
        props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "30000");
        return Admin.create(props);
    }

    List<TopicPartition> allPartitions() {
        List<TopicPartition> partitions = new ArrayList<>();
        for (int p = 0; p < Messages.PARTITIONS; p++) {
            partitions.add(new TopicPartition(topic, p));
        }
        return partitions;
    }

    // ---------------------------------------------------------------- messages

    ProducerRecord<byte[], byte[]> message(long i, int partition, long timestamp) {
        RecordHeaders headers = new RecordHeaders();
        String[] names = Messages.headerNames(i);
        byte[][] values = Messages.headerValues(i);
        for (int h = 0; h < names.length; h++) {
            headers.add(names[h], values[h]);
        }
        return new ProducerRecord<>(topic, partition, timestamp, Messages.key(i), Messages.value(seed, i), headers);
    }

    ProducerRecord<byte[], byte[]> message(long i) {
        return message(i, Messages.partition(i), Messages.timestamp(i));
    }

    /**
     * A subscribing member of the scenario's group (conformance/common/messages.md, "Consumer group scenarios"):
     * the given group.protocol, no auto commit, earliest when the group has no committed offset.
     */
    KafkaConsumer<byte[], byte[]> newGroupMember(String protocol) {
        Properties props = new Properties();
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ConsumerConfig.CLIENT_ID_CONFIG, "skein-conformance-java");
        props.put(ConsumerConfig.GROUP_ID_CONFIG, GroupTally.groupId(topic));
        props.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, protocol);
        props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        props.put(ConsumerConfig.REQUEST_TIMEOUT_MS_CONFIG, "10000");
        props.put(ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "30000");
        if (protocol.equals("classic")) {
            // A classic member learns of a rebalance through its heartbeat. With group.protocol=consumer the
            // broker sets the interval (the client rejects this setting).
            props.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, Integer.toString(GroupTally.CLASSIC_HEARTBEAT_INTERVAL_MS));
        }
        KafkaConsumer<byte[], byte[]> consumer =
                new KafkaConsumer<>(props, new ByteArrayDeserializer(), new ByteArrayDeserializer());
        consumer.subscribe(List.of(topic));
        return consumer;
    }

    /** Checks key, value, headers (order and duplicates) and CreateTime timestamp of one consumed record. */
    void checkRecord(ConsumerRecord<byte[], byte[]> record, long i, long expectedTimestamp) throws Failure {
        String where = "partition " + record.partition() + " offset " + record.offset() + " (message " + i + ")";
        if (!Arrays.equals(record.key(), Messages.key(i))) {
            throw new Failure(where + ": key " + show(record.key()) + ", expected " + show(Messages.key(i)));
        }
        byte[] expectedValue = Messages.value(seed, i);
        if (!Arrays.equals(record.value(), expectedValue)) {
            throw new Failure(where + ": value " + show(record.value()) + ", expected " + show(expectedValue));
        }
        Header[] headers = record.headers().toArray();
        String[] names = Messages.headerNames(i);
        byte[][] values = Messages.headerValues(i);
        boolean headersMatch = headers.length == names.length;
        for (int h = 0; headersMatch && h < names.length; h++) {
            headersMatch = headers[h].key().equals(names[h]) && Arrays.equals(headers[h].value(), values[h]);
        }
        if (!headersMatch) {
            throw new Failure(where + ": headers " + showHeaders(headers) + ", expected " + showHeaders(names, values));
        }
        if (record.timestampType() != TimestampType.CREATE_TIME || record.timestamp() != expectedTimestamp) {
            throw new Failure(where + ": timestamp " + record.timestamp() + " (" + record.timestampType()
                    + "), expected " + expectedTimestamp + " (CreateTime)");
        }
    }

    static String show(byte[] bytes) {
        if (bytes == null) {
            return "null";
        }
        return bytes.length + " bytes [" + HexFormat.of().formatHex(bytes) + "]";
    }

    static String showHeaders(Header[] headers) {
        List<String> parts = new ArrayList<>();
        for (Header header : headers) {
            parts.add(header.key() + "=" + show(header.value()));
        }
        return parts.toString();
    }

    static String showHeaders(String[] names, byte[][] values) {
        List<String> parts = new ArrayList<>();
        for (int h = 0; h < names.length; h++) {
            parts.add(names[h] + "=" + show(values[h]));
        }
        return parts.toString();
    }

    static long[] expectedCountsPerPartition(int count) {
        long[] counts = new long[Messages.PARTITIONS];
        for (long i = 0; i < count; i++) {
            counts[Messages.partition(i)]++;
        }
        return counts;
    }

    // ---------------------------------------------------------------- scenarios

    void roundtrip(int count, String compression) throws Exception {
        produceMessages(count, compression);
        consumeAndVerify(count);
    }

    /**
     * The roundtrip with the idempotent producer (producer id + per-partition sequence numbers, the client's
     * default) and 5 requests in flight per connection, the most idempotence allows.
     */
    void idempotentProduce(int count) throws Exception {
        Properties idempotent = new Properties();
        idempotent.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
        idempotent.put(ProducerConfig.MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION, "5");
        produceMessages(count, "none", idempotent);
        consumeAndVerify(count);
    }

    void produceMessages(int count, String compression) throws Exception {
        produceMessages(count, compression, new Properties());
    }

    /** Sends messages 0..count-1 with acks=all; every acknowledgement must carry the expected partition and offset. */
    void produceMessages(int count, String compression, Properties extra) throws Exception {
        produceMessages(0, count, compression, extra);
    }

    /**
     * Sends messages first..first+count-1 with acks=all to a topic that holds messages 0..first-1; every
     * acknowledgement must carry the expected partition and offset.
     */
    void produceMessages(long first, int count, String compression, Properties extra) throws Exception {
        try (KafkaProducer<byte[], byte[]> producer = newProducer(compression, extra)) {
            List<Future<RecordMetadata>> acks = new ArrayList<>(count);
            for (long i = first; i < first + count; i++) {
                acks.add(producer.send(message(i)));
            }
            producer.flush();
            for (long i = first; i < first + count; i++) {
                RecordMetadata metadata;
                try {
                    metadata = acks.get((int) (i - first)).get(30, TimeUnit.SECONDS);
                } catch (ExecutionException e) {
                    throw new Failure("message " + i + " was not acknowledged: " + e.getCause());
                }
                // Partition p receives messages p, p+3, p+6, ... in send order at offsets 0, 1, 2, ...
                long expectedOffset = i / Messages.PARTITIONS;
                if (metadata.partition() != Messages.partition(i) || metadata.offset() != expectedOffset) {
                    throw new Failure("message " + i + " acknowledged at partition " + metadata.partition()
                            + " offset " + metadata.offset() + ", expected partition " + Messages.partition(i)
                            + " offset " + expectedOffset);
                }
            }
        }
    }

    /**
     * Each partition's earliest offset is 0 and its latest equals the number of messages sent to it; then
     * partitions 0..2 read from the beginning hold exactly messages 0..count-1, offsets 0,1,2,... in send order.
     */
    void consumeAndVerify(int count) throws Exception {
        long[] expected = expectedCountsPerPartition(count);
        long[] received = new long[Messages.PARTITIONS];
        List<TopicPartition> partitions = allPartitions();
        try (KafkaConsumer<byte[], byte[]> consumer = newConsumer("earliest")) {
            checkOffsetRange(consumer, partitions, expected);
            consumer.assign(partitions);
            consumer.seekToBeginning(partitions);
            long deadline = System.nanoTime() + CONSUME_TIME_LIMIT.toNanos();
            while (!Arrays.equals(received, expected)) {
                if (System.nanoTime() > deadline) {
                    throw new Failure("received " + Arrays.toString(received) + " records per partition within "
                            + CONSUME_TIME_LIMIT.toSeconds() + " s, expected " + Arrays.toString(expected));
                }
                for (ConsumerRecord<byte[], byte[]> record : consumer.poll(Duration.ofMillis(500))) {
                    int p = record.partition();
                    if (record.offset() != received[p]) {
                        throw new Failure("partition " + p + ": record at offset " + record.offset()
                                + ", expected offset " + received[p]);
                    }
                    if (received[p] >= expected[p]) {
                        throw new Failure("partition " + p + ": unexpected extra record at offset " + record.offset());
                    }
                    long i = p + Messages.PARTITIONS * record.offset();
                    checkRecord(record, i, Messages.timestamp(i));
                    received[p]++;
                }
            }
        }
    }

    // ---------------------------------------------------------------- cluster

    /**
     * Bootstrapped at one node of a three-broker cluster: DescribeCluster shows the three brokers and the topic's
     * partitions have three replicas each, all in sync, led by three different brokers; then the roundtrip, whose
     * produce and fetch requests must go to each partition's leader (conformance/common/messages.md, "Cluster scenario").
     */
    void cluster(int count) throws Exception {
        try (Admin admin = newAdmin()) {
            long deadline = System.nanoTime() + CLUSTER_METADATA_WAIT.toNanos();
            while (true) {
                Collection<Node> nodes = adminResult(admin.describeCluster().nodes(), "describeCluster");
                TopicDescription description =
                        adminResult(admin.describeTopics(List.of(topic)).allTopicNames(), "describeTopics").get(topic);
                String problem = clusterProblem(nodes, description);
                if (problem == null) {
                    System.err.println("cluster: brokers " + nodes + ", partitions " + description.partitions());
                    break;
                }
                if (System.nanoTime() > deadline) {
                    throw new Failure(problem);
                }
                Thread.sleep(500);
            }
        }
        roundtrip(count, "none");
    }

    /** The checks of messages.md's "Cluster scenario", step 1: null when they hold, else what is wrong. */
    String clusterProblem(Collection<Node> nodes, TopicDescription description) {
        Map<Integer, String> brokers = new TreeMap<>();
        for (Node node : nodes) {
            brokers.put(node.id(), node.host() + ":" + node.port());
        }
        if (brokers.size() != Messages.CLUSTER_BROKERS) {
            return "metadata lists " + brokers.size() + " brokers, expected " + Messages.CLUSTER_BROKERS + ": " + brokers;
        }
        if (new HashSet<>(brokers.values()).size() != Messages.CLUSTER_BROKERS) {
            return "brokers share an advertised address: " + brokers;
        }
        if (!brokers.containsValue(bootstrap)) {
            return "the bootstrap address " + bootstrap + " is not a listed broker: " + brokers;
        }
        List<TopicPartitionInfo> partitions = description.partitions();
        Set<Integer> leaders = new TreeSet<>();
        for (int p = 0; p < partitions.size(); p++) {
            TopicPartitionInfo info = partitions.get(p);
            if (info.partition() != p) {
                return "partitions " + partitions + ", expected 0.." + (Messages.PARTITIONS - 1);
            }
            List<Integer> replicas = info.replicas().stream().map(Node::id).toList();
            List<Integer> isr = info.isr().stream().map(Node::id).toList();
            Integer leader = info.leader() == null ? null : info.leader().id();
            String where = "partition " + p + " (leader " + leader + ", replicas " + replicas + ", isr " + isr + ")";
            if (replicas.size() != Messages.CLUSTER_REPLICATION_FACTOR || new HashSet<>(replicas).size() != replicas.size()) {
                return where + ": expected " + Messages.CLUSTER_REPLICATION_FACTOR + " distinct replicas";
            }
            if (!brokers.keySet().containsAll(replicas)) {
                return where + ": a replica is not a listed broker " + brokers.keySet();
            }
            if (!new TreeSet<>(isr).equals(new TreeSet<>(replicas)) || isr.size() != replicas.size()) {
                return where + ": the in-sync replicas are not all the replicas";
            }
            if (leader == null || !replicas.contains(leader)) {
                return where + ": the leader is not a replica";
            }
            leaders.add(leader);
        }
        if (partitions.size() != Messages.PARTITIONS) {
            return "topic has " + partitions.size() + " partitions, expected " + Messages.PARTITIONS;
        }
        if (leaders.size() != Messages.PARTITIONS) {
            return "partition leaders " + partitions.stream().map(info -> info.leader() == null ? "none" : Integer.toString(info.leader().id())).toList()
                    + ": expected every partition led by a different broker";
        }
        return null;
    }

    // ---------------------------------------------------------------- log-compaction

    /**
     * Keyed updates and tombstones to a compacted topic, then re-reads until only each key's latest record is
     * left, every record at the offset its acknowledgement gave (conformance/common/messages.md, "Log compaction").
     */
    void logCompaction(int count) throws Exception {
        Map<Integer, List<LogCompaction.Stored>> produced = LogCompaction.emptyByPartition();
        try (KafkaProducer<byte[], byte[]> producer = newProducer("none", new Properties())) {
            sendCompactionRecords(producer, LogCompaction.updates(seed, count), produced);
            Thread.sleep(LogCompaction.ROLL_DELAY_MS);
            sendCompactionRecords(producer, LogCompaction.rollRecords(), produced);
        }
        long[] expectedCounts = new long[Messages.PARTITIONS];
        for (int p = 0; p < Messages.PARTITIONS; p++) {
            expectedCounts[p] = produced.get(p).size();
        }
        long deadline = System.nanoTime() + LogCompaction.WAIT_MS * 1_000_000;
        while (true) {
            Map<Integer, List<LogCompaction.Stored>> consumed = readWholeTopic(expectedCounts);
            String left;
            try {
                left = LogCompaction.check(produced, consumed);
            } catch (LogCompaction.Violation e) {
                throw new Failure(e.getMessage());
            }
            if (left == null) {
                return;
            }
            if (System.nanoTime() > deadline) {
                throw new Failure("not compacted within " + LogCompaction.WAIT_MS / 1000 + " s: " + left);
            }
            System.err.println("not compacted yet: " + left);
            Thread.sleep(LogCompaction.REREAD_INTERVAL_MS);
        }
    }

    /** Sends the records in order and requires each partition's acknowledgements at offsets 0, 1, 2, ... */
    void sendCompactionRecords(KafkaProducer<byte[], byte[]> producer, List<LogCompaction.Update> records,
                               Map<Integer, List<LogCompaction.Stored>> produced) throws Exception {
        List<Future<RecordMetadata>> acks = new ArrayList<>(records.size());
        for (LogCompaction.Update record : records) {
            acks.add(producer.send(new ProducerRecord<>(topic, record.partition(), record.key(), record.value())));
        }
        producer.flush();
        for (int n = 0; n < records.size(); n++) {
            LogCompaction.Update record = records.get(n);
            RecordMetadata metadata;
            try {
                metadata = acks.get(n).get(30, TimeUnit.SECONDS);
            } catch (ExecutionException e) {
                throw new Failure("record " + n + " (key " + LogCompaction.show(record.key()) + ") was not acknowledged: " + e.getCause());
            }
            List<LogCompaction.Stored> partition = produced.get(record.partition());
            if (metadata.partition() != record.partition() || metadata.offset() != partition.size()) {
                throw new Failure("record " + n + " (key " + LogCompaction.show(record.key()) + ") acknowledged at partition "
                        + metadata.partition() + " offset " + metadata.offset() + ", expected partition "
                        + record.partition() + " offset " + partition.size());
            }
            partition.add(new LogCompaction.Stored(metadata.offset(), record.key(), record.value()));
        }
    }

    /**
     * Earliest offset 0 and latest = what was produced, then every record of every partition from its beginning
     * up to its high watermark (the last offset is always there: the roll record).
     */
    Map<Integer, List<LogCompaction.Stored>> readWholeTopic(long[] highWatermarks) throws Exception {
        Map<Integer, List<LogCompaction.Stored>> consumed = LogCompaction.emptyByPartition();
        List<TopicPartition> partitions = allPartitions();
        try (KafkaConsumer<byte[], byte[]> consumer = newConsumer("none")) {
            checkOffsetRange(consumer, partitions, highWatermarks);
            consumer.assign(partitions);
            consumer.seekToBeginning(partitions);
            Set<Integer> done = new TreeSet<>();
            long deadline = System.nanoTime() + CONSUME_TIME_LIMIT.toNanos();
            while (done.size() < Messages.PARTITIONS) {
                if (System.nanoTime() > deadline) {
                    throw new Failure("could not read the topic up to its high watermarks "
                            + Arrays.toString(highWatermarks) + " within " + CONSUME_TIME_LIMIT.toSeconds() + " s");
                }
                for (ConsumerRecord<byte[], byte[]> record : consumer.poll(Duration.ofMillis(500))) {
                    consumed.get(record.partition()).add(
                            new LogCompaction.Stored(record.offset(), record.key(), record.value()));
                    if (record.offset() >= highWatermarks[record.partition()] - 1) {
                        done.add(record.partition());
                    }
                }
            }
        }
        return consumed;
    }

    /** Earliest offset 0 and latest offset expected[p] for every partition p. */
    static void checkOffsetRange(KafkaConsumer<byte[], byte[]> consumer, List<TopicPartition> partitions,
                                 long[] expected) throws Failure {
        Map<TopicPartition, Long> earliest = consumer.beginningOffsets(partitions);
        Map<TopicPartition, Long> latest = consumer.endOffsets(partitions);
        for (TopicPartition partition : partitions) {
            long wantedLatest = expected[partition.partition()];
            if (earliest.get(partition) != 0 || latest.get(partition) != wantedLatest) {
                throw new Failure("partition " + partition.partition() + ": offsets " + earliest.get(partition) + ".."
                        + latest.get(partition) + ", expected 0.." + wantedLatest);
            }
        }
    }

    /**
     * A 2 MiB value exceeds the broker's message.max.bytes (1048588 by default); the broker must answer
     * MESSAGE_TOO_LARGE. The producer's own limits are raised so that it does not reject the record itself.
     */
    void messageTooLarge() throws Exception {
        Properties extra = new Properties();
        extra.put(ProducerConfig.MAX_REQUEST_SIZE_CONFIG, Integer.toString(8 * 1024 * 1024));
        extra.put(ProducerConfig.BUFFER_MEMORY_CONFIG, Long.toString(64L * 1024 * 1024));
        TopicPartition partition0 = new TopicPartition(topic, 0);
        try (KafkaProducer<byte[], byte[]> producer = newProducer("none", extra)) {
            ProducerRecord<byte[], byte[]> large = new ProducerRecord<>(topic, 0,
                    Messages.LARGE_KEY.getBytes(StandardCharsets.UTF_8), Messages.largeValue());
            try {
                RecordMetadata metadata = producer.send(large).get(30, TimeUnit.SECONDS);
                throw new Failure("2 MiB message was accepted at partition " + metadata.partition()
                        + " offset " + metadata.offset() + ", expected MESSAGE_TOO_LARGE");
            } catch (ExecutionException e) {
                Throwable cause = e.getCause();
                if (!(cause instanceof RecordTooLargeException)) {
                    throw new Failure("2 MiB message failed with " + cause + ", expected RecordTooLargeException");
                }
                if (Errors.forException(cause) != Errors.MESSAGE_TOO_LARGE) {
                    throw new Failure("2 MiB message failed with error " + Errors.forException(cause)
                            + ", expected MESSAGE_TOO_LARGE (" + Errors.MESSAGE_TOO_LARGE.code() + ")");
                }
                // The client's local size checks name its own settings; the broker's answer does not.
                String reason = String.valueOf(cause.getMessage());
                if (reason.contains("max.request.size") || reason.contains("buffer.memory")) {
                    throw new Failure("2 MiB message was rejected by the client itself, not the broker: " + reason);
                }
            }

            // The same producer still works: a small message lands at offset 0 of partition 0.
            long small = Messages.SMALL_MESSAGE_INDEX;
            RecordMetadata metadata = producer.send(message(small, 0, Messages.timestamp(small)))
                    .get(30, TimeUnit.SECONDS);
            if (metadata.partition() != 0 || metadata.offset() != 0) {
                throw new Failure("small message acknowledged at partition " + metadata.partition() + " offset "
                        + metadata.offset() + ", expected partition 0 offset 0");
            }
        }
        try (KafkaConsumer<byte[], byte[]> consumer = newConsumer("earliest")) {
            // Partition 0 holds exactly the small message; partitions 1 and 2 stay empty.
            checkOffsetRange(consumer, allPartitions(), new long[] {1, 0, 0});
            consumer.assign(List.of(partition0));
            consumer.seekToBeginning(List.of(partition0));
            List<ConsumerRecord<byte[], byte[]>> records = pollUntil(consumer, 1);
            if (records.size() != 1 || records.get(0).offset() != 0) {
                throw new Failure("partition 0 returned " + records.size() + " records, expected the small message at offset 0");
            }
            checkRecord(records.get(0), Messages.SMALL_MESSAGE_INDEX, Messages.timestamp(Messages.SMALL_MESSAGE_INDEX));
        }
    }

    /**
     * consumer-group / consumer-group-kip848: two members of a new group share the topic, committing after
     * every batch; a third member that joins after both closed receives exactly the messages produced since.
     */
    void consumerGroup(int count, String protocol) throws Exception {
        produceMessages(count, "none");
        Map<String, KafkaConsumer<byte[], byte[]>> members = new LinkedHashMap<>();
        try {
            members.put("member-1", newGroupMember(protocol));
            members.put("member-2", newGroupMember(protocol));
            GroupTally tally = new GroupTally(members.keySet(), 0, count);
            consumeInGroup(members, tally, GroupTally.GROUP_CONSUME_TIME_LIMIT, Duration.ZERO);
        } finally {
            for (KafkaConsumer<byte[], byte[]> member : members.values()) {
                member.close();
            }
        }

        produceMessages(count, GroupTally.RESUME_COUNT, "none", new Properties());
        Map<String, KafkaConsumer<byte[], byte[]>> third = new LinkedHashMap<>();
        try {
            third.put("member-3", newGroupMember(protocol));
            GroupTally tally = new GroupTally(third.keySet(), count, GroupTally.RESUME_COUNT);
            consumeInGroup(third, tally, GroupTally.RESUME_CONSUME_TIME_LIMIT, GroupTally.STRAY_WAIT);
        } finally {
            for (KafkaConsumer<byte[], byte[]> member : third.values()) {
                member.close();
            }
        }
    }

    /**
     * Polls the members in turn until every expected record arrived and their assignments have settled, then
     * (strayWait) a little longer. Each record is checked byte for byte and counted once; after each non-empty
     * batch the member commits, synchronously, the offset after the batch's last record of each partition.
     */
    void consumeInGroup(Map<String, KafkaConsumer<byte[], byte[]>> members, GroupTally tally, Duration limit,
                        Duration strayWait) throws Failure {
        long deadline = System.nanoTime() + limit.toNanos();
        Long straysUntil = null;
        while (true) {
            for (Map.Entry<String, KafkaConsumer<byte[], byte[]>> entry : members.entrySet()) {
                String name = entry.getKey();
                KafkaConsumer<byte[], byte[]> consumer = entry.getValue();
                Map<TopicPartition, OffsetAndMetadata> next = new HashMap<>();
                for (ConsumerRecord<byte[], byte[]> record : consumer.poll(Duration.ofMillis(100))) {
                    tally.record(name, record.partition(), record.offset());
                    long i = GroupTally.messageIndex(record.partition(), record.offset());
                    checkRecord(record, i, Messages.timestamp(i));
                    next.put(new TopicPartition(topic, record.partition()), new OffsetAndMetadata(record.offset() + 1));
                }
                if (!next.isEmpty()) {
                    try {
                        consumer.commitSync(next);
                    } catch (RuntimeException e) {
                        throw new Failure(name + ": commit of " + next + " failed: " + e);
                    }
                }
                Set<Integer> assigned = new TreeSet<>();
                for (TopicPartition partition : consumer.assignment()) {
                    assigned.add(partition.partition());
                }
                tally.noteAssignment(name, assigned);
            }
            if (straysUntil == null && tally.allReceived() && tally.settled()) {
                if (strayWait.isZero()) {
                    break;
                }
                straysUntil = System.nanoTime() + strayWait.toNanos();
            }
            if (straysUntil != null && System.nanoTime() > straysUntil) {
                break;
            }
            if (straysUntil == null && System.nanoTime() > deadline) {
                throw new Failure("not done within " + limit.toSeconds() + " s: " + tally.progress());
            }
        }
        System.err.println("group: " + tally.progress());
    }

    /** Polls until at least `wanted` records arrived or the consume time limit passed. */
    static List<ConsumerRecord<byte[], byte[]>> pollUntil(KafkaConsumer<byte[], byte[]> consumer, int wanted) {
        List<ConsumerRecord<byte[], byte[]>> records = new ArrayList<>();
        long deadline = System.nanoTime() + CONSUME_TIME_LIMIT.toNanos();
        while (records.size() < wanted && System.nanoTime() < deadline) {
            for (ConsumerRecord<byte[], byte[]> record : consumer.poll(Duration.ofMillis(500))) {
                records.add(record);
            }
        }
        return records;
    }

    /** Messages 0..count-1, all to partition 0, timestamp BASE + step*i. */
    void produceToPartition0(int count, long timestampStep) throws Exception {
        try (KafkaProducer<byte[], byte[]> producer = newProducer("none", new Properties())) {
            List<Future<RecordMetadata>> acks = new ArrayList<>();
            for (long i = 0; i < count; i++) {
                acks.add(producer.send(message(i, 0, Messages.BASE_TIMESTAMP_MS + timestampStep * i)));
            }
            producer.flush();
            for (int i = 0; i < count; i++) {
                try {
                    RecordMetadata metadata = acks.get(i).get(30, TimeUnit.SECONDS);
                    if (metadata.partition() != 0 || metadata.offset() != i) {
                        throw new Failure("message " + i + " acknowledged at partition " + metadata.partition()
                                + " offset " + metadata.offset() + ", expected partition 0 offset " + i);
                    }
                } catch (ExecutionException e) {
                    throw new Failure("message " + i + " was not acknowledged: " + e.getCause());
                }
            }
        }
    }

    /** Fetching beyond the log end with auto.offset.reset=none must surface OFFSET_OUT_OF_RANGE. */
    void offsetOutOfRange() throws Exception {
        produceToPartition0(Messages.OFFSET_OUT_OF_RANGE_COUNT, 1);
        TopicPartition partition0 = new TopicPartition(topic, 0);
        try (KafkaConsumer<byte[], byte[]> consumer = newConsumer("none")) {
            consumer.assign(List.of(partition0));
            consumer.seek(partition0, Messages.OFFSET_OUT_OF_RANGE_FETCH_OFFSET);
            long deadline = System.nanoTime() + CONSUME_TIME_LIMIT.toNanos();
            while (System.nanoTime() < deadline) {
                ConsumerRecords<byte[], byte[]> records;
                try {
                    records = consumer.poll(Duration.ofMillis(500));
                } catch (OffsetOutOfRangeException e) {
                    // The consumer's exception for the broker's OFFSET_OUT_OF_RANGE (1) fetch error.
                    Long offset = e.offsetOutOfRangePartitions().get(partition0);
                    if (offset == null || offset != Messages.OFFSET_OUT_OF_RANGE_FETCH_OFFSET) {
                        throw new Failure("OffsetOutOfRangeException names " + e.offsetOutOfRangePartitions()
                                + ", expected " + partition0 + " at offset " + Messages.OFFSET_OUT_OF_RANGE_FETCH_OFFSET);
                    }
                    return;
                }
                if (!records.isEmpty()) {
                    throw new Failure("fetch from offset " + Messages.OFFSET_OUT_OF_RANGE_FETCH_OFFSET + " returned " + records.count()
                            + " records, expected OFFSET_OUT_OF_RANGE");
                }
            }
            throw new Failure("no OFFSET_OUT_OF_RANGE error within " + CONSUME_TIME_LIMIT.toSeconds() + " s");
        }
    }

    /** Earliest, latest and by-timestamp offsets of 100 messages with timestamps 10 ms apart. */
    void listOffsets() throws Exception {
        produceToPartition0(Messages.LIST_OFFSETS_COUNT, Messages.LIST_OFFSETS_TIMESTAMP_STEP_MS);
        TopicPartition partition0 = new TopicPartition(topic, 0);
        try (KafkaConsumer<byte[], byte[]> consumer = newConsumer("none")) {
            // Earliest 0 everywhere; latest 100 for partition 0, 0 for partitions 1 and 2.
            checkOffsetRange(consumer, allPartitions(), new long[] {Messages.LIST_OFFSETS_COUNT, 0, 0});
            long probe = Messages.LIST_OFFSETS_QUERY_TIMESTAMP_MS;
            long expectedOffset = Messages.LIST_OFFSETS_EXPECTED_OFFSET;
            long expectedTimestamp = Messages.BASE_TIMESTAMP_MS + Messages.LIST_OFFSETS_TIMESTAMP_STEP_MS * expectedOffset;
            OffsetAndTimestamp byTime = consumer.offsetsForTimes(Map.of(partition0, probe)).get(partition0);
            if (byTime == null || byTime.offset() != expectedOffset || byTime.timestamp() != expectedTimestamp) {
                throw new Failure("offset for time " + probe + " is " + byTime + ", expected offset " + expectedOffset
                        + " with timestamp " + expectedTimestamp);
            }
            long farFuture = Messages.LIST_OFFSETS_FAR_FUTURE_MS;
            OffsetAndTimestamp future = consumer.offsetsForTimes(Map.of(partition0, farFuture)).get(partition0);
            if (future != null) {
                throw new Failure("offset for time " + farFuture + " is " + future + ", expected none");
            }
        }
    }

    /** Create, describe, create-again, invalid name and delete through the Admin API. */
    void adminTopics() throws Exception {
        long limit = ADMIN_TIME_LIMIT.toMillis();
        try (Admin admin = newAdmin()) {
            try {
                admin.createTopics(List.of(new NewTopic(topic, 3, (short) 1))).all().get(limit, TimeUnit.MILLISECONDS);
            } catch (ExecutionException e) {
                throw new Failure("creating topic '" + topic + "' failed: " + e.getCause());
            }

            TopicDescription description = describeWhenVisible(admin);
            List<Integer> partitionIds = description.partitions().stream().map(p -> p.partition()).toList();
            if (!partitionIds.equals(List.of(0, 1, 2))) {
                throw new Failure("created topic has partitions " + partitionIds + ", expected [0, 1, 2]");
            }
            if (!admin.listTopics().names().get(limit, TimeUnit.MILLISECONDS).contains(topic)) {
                throw new Failure("created topic is missing from listTopics");
            }

            expectCreateError(admin, topic, TopicExistsException.class, Errors.TOPIC_ALREADY_EXISTS);
            expectCreateError(admin, "bad/name", InvalidTopicException.class, Errors.INVALID_TOPIC_EXCEPTION);

            admin.deleteTopics(List.of(topic)).all().get(limit, TimeUnit.MILLISECONDS);
            long deadline = System.nanoTime() + METADATA_SETTLE_LIMIT.toNanos();
            while (true) {
                boolean listed = admin.listTopics().names().get(limit, TimeUnit.MILLISECONDS).contains(topic);
                boolean described = true;
                try {
                    admin.describeTopics(List.of(topic)).allTopicNames().get(limit, TimeUnit.MILLISECONDS);
                } catch (ExecutionException e) {
                    if (!(e.getCause() instanceof UnknownTopicOrPartitionException)) {
                        throw new Failure("describe after delete failed with " + e.getCause()
                                + ", expected UnknownTopicOrPartitionException");
                    }
                    described = false;
                }
                if (!listed && !described) {
                    return;
                }
                if (System.nanoTime() > deadline) {
                    throw new Failure("deleted topic still in metadata after " + METADATA_SETTLE_LIMIT.toSeconds()
                            + " s (listed=" + listed + ", described=" + described + ")");
                }
                Thread.sleep(200);
            }
        }
    }

    /** Describes TOPIC, allowing the broker's metadata a moment to show a just-created topic. */
    TopicDescription describeWhenVisible(Admin admin) throws Exception {
        long deadline = System.nanoTime() + METADATA_SETTLE_LIMIT.toNanos();
        while (true) {
            try {
                return admin.describeTopics(List.of(topic)).allTopicNames()
                        .get(ADMIN_TIME_LIMIT.toMillis(), TimeUnit.MILLISECONDS).get(topic);
            } catch (ExecutionException e) {
                if (!(e.getCause() instanceof UnknownTopicOrPartitionException) || System.nanoTime() > deadline) {
                    throw new Failure("describe of created topic failed: " + e.getCause());
                }
                Thread.sleep(200);
            }
        }
    }

    static void expectCreateError(Admin admin, String name, Class<? extends Exception> expectedType,
                                  Errors expectedError) throws Exception {
        try {
            admin.createTopics(List.of(new NewTopic(name, 3, (short) 1))).all()
                    .get(ADMIN_TIME_LIMIT.toMillis(), TimeUnit.MILLISECONDS);
            throw new Failure("creating topic '" + name + "' succeeded, expected " + expectedError
                    + " (" + expectedError.code() + ")");
        } catch (ExecutionException e) {
            Throwable cause = e.getCause();
            Errors error = Errors.forException(cause);
            if (!expectedType.isInstance(cause) || error != expectedError) {
                throw new Failure("creating topic '" + name + "' failed with " + cause + " (error " + error + " code "
                        + error.code() + "), expected " + expectedError + " (" + expectedError.code() + ")");
            }
        }
    }

    // ---------------------------------------------------------------- admin-configs-partitions-records

    /** conformance/common/messages.md "Admin scenario": 30 messages, 10 per partition. */
    static final int ADMIN_MESSAGE_COUNT = 30;
    static final long ADMIN_DELETE_BEFORE_OFFSET = 5;
    static final int ADMIN_GROWN_PARTITIONS = 5;
    static final List<String> ADMIN_WATCHED_CONFIGS = List.of("retention.ms", "cleanup.policy");
    static final Map<String, String> ADMIN_CONFIG_OVERRIDES = Map.of("retention.ms", "123456", "cleanup.policy", "compact");

    /** The result of an admin call that must succeed. */
    static <T> T adminResult(KafkaFuture<T> future, String what) throws Exception {
        try {
            return future.get(ADMIN_TIME_LIMIT.toMillis(), TimeUnit.MILLISECONDS);
        } catch (ExecutionException e) {
            throw new Failure(what + " failed: " + e.getCause());
        }
    }

    /** An admin call that must fail with `expected`. */
    static void expectAdminError(KafkaFuture<?> future, String what, Errors expected) throws Exception {
        try {
            future.get(ADMIN_TIME_LIMIT.toMillis(), TimeUnit.MILLISECONDS);
        } catch (ExecutionException e) {
            Errors error = Errors.forException(e.getCause());
            if (error != expected) {
                throw new Failure(what + " failed with " + e.getCause() + " (" + error + ", " + error.code()
                        + "), expected " + expected + " (" + expected.code() + ")");
            }
            return;
        }
        throw new Failure(what + " succeeded, expected " + expected + " (" + expected.code() + ")");
    }

    /** name -> "value SOURCE" of the watched configs of TOPIC (DescribeConfigs). */
    Map<String, String> topicConfigs(Admin admin) throws Exception {
        ConfigResource resource = new ConfigResource(ConfigResource.Type.TOPIC, topic);
        Config config = adminResult(admin.describeConfigs(List.of(resource)).all(), "describeConfigs").get(resource);
        Map<String, String> watched = new LinkedHashMap<>();
        for (String name : ADMIN_WATCHED_CONFIGS) {
            ConfigEntry entry = config.get(name);
            if (entry == null) {
                throw new Failure("describeConfigs of " + topic + " lacks " + name);
            }
            watched.put(name, entry.value() + " " + entry.source());
        }
        return watched;
    }

    KafkaFuture<Void> alterTopicConfigs(Admin admin, List<AlterConfigOp> ops) {
        ConfigResource resource = new ConfigResource(ConfigResource.Type.TOPIC, topic);
        return admin.incrementalAlterConfigs(Map.of(resource, ops)).all();
    }

    Map<Integer, Long> partitionOffsets(Admin admin, List<Integer> partitions, OffsetSpec spec) throws Exception {
        Map<TopicPartition, OffsetSpec> wanted = new HashMap<>();
        partitions.forEach(p -> wanted.put(new TopicPartition(topic, p), spec));
        Map<Integer, Long> offsets = new java.util.TreeMap<>();
        adminResult(admin.listOffsets(wanted).all(), "listOffsets").forEach((tp, info) -> offsets.put(tp.partition(), info.offset()));
        return offsets;
    }

    /** Cluster, topic configs, DeleteRecords, DescribeLogDirs and CreatePartitions through the Admin API. */
    void adminConfigsPartitionsRecords() throws Exception {
        try (Admin admin = newAdmin()) {
            // 1. Cluster.
            DescribeClusterResult cluster = admin.describeCluster();
            List<Node> nodes = new ArrayList<>(adminResult(cluster.nodes(), "describeCluster nodes"));
            Node controller = adminResult(cluster.controller(), "describeCluster controller");
            String clusterId = adminResult(cluster.clusterId(), "describeCluster clusterId");
            if (nodes.size() != 1) {
                throw new Failure("describeCluster: " + nodes.size() + " brokers, expected 1: " + nodes);
            }
            int nodeId = nodes.get(0).id();
            if (controller == null || controller.id() != nodeId) {
                throw new Failure("describeCluster: controller " + controller + ", expected broker " + nodes.get(0));
            }
            if (clusterId == null || clusterId.isEmpty()) {
                throw new Failure("describeCluster: empty cluster id");
            }

            // 2. Topic configs.
            Map<String, String> initial = topicConfigs(admin);
            for (String described : initial.values()) {
                if (described.endsWith(" " + ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG)) {
                    throw new Failure("the new topic already has overrides: " + initial);
                }
            }
            List<AlterConfigOp> sets = new ArrayList<>();
            ADMIN_CONFIG_OVERRIDES.forEach((name, value) -> sets.add(new AlterConfigOp(new ConfigEntry(name, value), AlterConfigOp.OpType.SET)));
            adminResult(alterTopicConfigs(admin, sets), "incrementalAlterConfigs SET " + ADMIN_CONFIG_OVERRIDES);
            Map<String, String> overridden = new LinkedHashMap<>();
            for (String name : ADMIN_WATCHED_CONFIGS) {
                overridden.put(name, ADMIN_CONFIG_OVERRIDES.get(name) + " " + ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG);
            }
            if (!topicConfigs(admin).equals(overridden)) {
                throw new Failure("after SET: " + topicConfigs(admin) + ", expected " + overridden);
            }
            // Kafka deletes no records of a topic whose cleanup policy lacks `delete`.
            TopicPartition first = new TopicPartition(topic, 0);
            expectAdminError(admin.deleteRecords(Map.of(first, RecordsToDelete.beforeOffset(0))).lowWatermarks().get(first),
                    "deleteRecords with cleanup.policy=compact", Errors.POLICY_VIOLATION);
            expectAdminError(alterTopicConfigs(admin, List.of(new AlterConfigOp(new ConfigEntry("retention.ms", "abc"), AlterConfigOp.OpType.SET))),
                    "incrementalAlterConfigs SET retention.ms=abc", Errors.INVALID_CONFIG);
            if (!topicConfigs(admin).equals(overridden)) {
                throw new Failure("after the refused SET: " + topicConfigs(admin) + ", expected " + overridden);
            }
            List<AlterConfigOp> deletes = new ArrayList<>();
            ADMIN_WATCHED_CONFIGS.forEach(name -> deletes.add(new AlterConfigOp(new ConfigEntry(name, null), AlterConfigOp.OpType.DELETE)));
            adminResult(alterTopicConfigs(admin, deletes), "incrementalAlterConfigs DELETE " + ADMIN_WATCHED_CONFIGS);
            if (!topicConfigs(admin).equals(initial)) {
                throw new Failure("after DELETE: " + topicConfigs(admin) + ", expected the initial " + initial);
            }

            // 3. Records.
            produceMessages(ADMIN_MESSAGE_COUNT, "none");
            long[] counts = expectedCountsPerPartition(ADMIN_MESSAGE_COUNT);
            TopicPartition partition0 = new TopicPartition(topic, 0);
            TopicPartition partition1 = new TopicPartition(topic, 1);
            TopicPartition partition2 = new TopicPartition(topic, 2);
            // -1: up to the high watermark.
            Map<TopicPartition, KafkaFuture<org.apache.kafka.clients.admin.DeletedRecords>> lowWatermarks = admin.deleteRecords(Map.of(
                    partition0, RecordsToDelete.beforeOffset(ADMIN_DELETE_BEFORE_OFFSET),
                    partition1, RecordsToDelete.beforeOffset(-1))).lowWatermarks();
            long low0 = adminResult(lowWatermarks.get(partition0), "deleteRecords partition 0").lowWatermark();
            long low1 = adminResult(lowWatermarks.get(partition1), "deleteRecords partition 1").lowWatermark();
            if (low0 != ADMIN_DELETE_BEFORE_OFFSET || low1 != counts[1]) {
                throw new Failure("deleteRecords low watermarks " + low0 + ", " + low1 + ", expected "
                        + ADMIN_DELETE_BEFORE_OFFSET + ", " + counts[1]);
            }
            Map<Integer, Long> earliest = partitionOffsets(admin, List.of(0, 1, 2), OffsetSpec.earliest());
            Map<Integer, Long> latest = partitionOffsets(admin, List.of(0, 1, 2), OffsetSpec.latest());
            Map<Integer, Long> expectedEarliest = Map.of(0, ADMIN_DELETE_BEFORE_OFFSET, 1, counts[1], 2, 0L);
            Map<Integer, Long> expectedLatest = Map.of(0, counts[0], 1, counts[1], 2, counts[2]);
            if (!earliest.equals(expectedEarliest) || !latest.equals(expectedLatest)) {
                throw new Failure("after deleteRecords: earliest " + earliest + ", latest " + latest
                        + "; expected earliest " + expectedEarliest + ", latest " + expectedLatest);
            }
            try (KafkaConsumer<byte[], byte[]> consumer = newConsumer("none")) {
                consumer.assign(List.of(partition0));
                consumer.seekToBeginning(List.of(partition0));
                int wanted = (int) (counts[0] - ADMIN_DELETE_BEFORE_OFFSET);
                List<ConsumerRecord<byte[], byte[]>> records = pollUntil(consumer, wanted);
                List<Long> offsets = records.stream().map(ConsumerRecord::offset).toList();
                List<Long> expectedOffsets = new ArrayList<>();
                for (long offset = ADMIN_DELETE_BEFORE_OFFSET; offset < counts[0]; offset++) {
                    expectedOffsets.add(offset);
                }
                if (!offsets.equals(expectedOffsets)) {
                    throw new Failure("partition 0 from the beginning: offsets " + offsets + ", expected " + expectedOffsets);
                }
                for (ConsumerRecord<byte[], byte[]> record : records) {
                    long i = Messages.PARTITIONS * record.offset();
                    checkRecord(record, i, Messages.timestamp(i));
                }
            }
            long beyond = counts[2] + 1;
            expectAdminError(admin.deleteRecords(Map.of(partition2, RecordsToDelete.beforeOffset(beyond))).lowWatermarks().get(partition2),
                    "deleteRecords partition 2 before " + beyond, Errors.OFFSET_OUT_OF_RANGE);
            if (partitionOffsets(admin, List.of(2), OffsetSpec.earliest()).get(2) != 0L) {
                throw new Failure("partition 2's earliest offset moved after the refused deleteRecords");
            }

            // 4. Log dirs.
            Map<String, LogDirDescription> dirs = adminResult(admin.describeLogDirs(List.of(nodeId)).allDescriptions(),
                    "describeLogDirs").get(nodeId);
            if (dirs == null || dirs.size() != 1) {
                throw new Failure("describeLogDirs: " + (dirs == null ? "no answer for broker " + nodeId : dirs.size() + " log dirs") + ", expected 1");
            }
            LogDirDescription dir = dirs.values().iterator().next();
            if (dir.error() != null) {
                throw new Failure("describeLogDirs: log dir error " + dir.error());
            }
            long partition2Bytes = 0;
            for (long i = 0; i < ADMIN_MESSAGE_COUNT; i++) {
                if (Messages.partition(i) == 2) {
                    partition2Bytes += Messages.valueLength(seed, i);
                }
            }
            for (int p = 0; p < Messages.PARTITIONS; p++) {
                if (!dir.replicaInfos().containsKey(new TopicPartition(topic, p))) {
                    throw new Failure("describeLogDirs does not list partition " + p + ": " + dir.replicaInfos().keySet());
                }
            }
            ReplicaInfo replica2 = dir.replicaInfos().get(partition2);
            if (replica2.size() < partition2Bytes) {
                throw new Failure("describeLogDirs: partition 2 size " + replica2.size() + " bytes, expected at least "
                        + partition2Bytes + " (its values)");
            }

            // 5. Partitions.
            adminResult(admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(ADMIN_GROWN_PARTITIONS))).all(),
                    "createPartitions to " + ADMIN_GROWN_PARTITIONS);
            long deadline = System.nanoTime() + METADATA_SETTLE_LIMIT.toNanos();
            while (true) {
                TopicDescription description = describeWhenVisible(admin);
                List<Integer> ids = description.partitions().stream().map(p -> p.partition()).toList();
                boolean led = description.partitions().stream().allMatch(p -> p.leader() != null && p.leader().id() >= 0);
                if (ids.equals(List.of(0, 1, 2, 3, 4)) && led) {
                    break;
                }
                if (System.nanoTime() > deadline) {
                    throw new Failure("after createPartitions: partitions " + ids + " (all led: " + led + "), expected [0, 1, 2, 3, 4]");
                }
                Thread.sleep(200);
            }
            Map<Integer, Long> zeros = Map.of(3, 0L, 4, 0L);
            Map<Integer, Long> newEarliest = partitionOffsets(admin, List.of(3, 4), OffsetSpec.earliest());
            Map<Integer, Long> newLatest = partitionOffsets(admin, List.of(3, 4), OffsetSpec.latest());
            if (!newEarliest.equals(zeros) || !newLatest.equals(zeros)) {
                throw new Failure("new partitions: earliest " + newEarliest + ", latest " + newLatest + ", expected 0");
            }
            expectAdminError(admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(ADMIN_GROWN_PARTITIONS - 1))).all(),
                    "createPartitions to " + (ADMIN_GROWN_PARTITIONS - 1), Errors.INVALID_PARTITIONS);
            int partitionCount = describeWhenVisible(admin).partitions().size();
            if (partitionCount != ADMIN_GROWN_PARTITIONS) {
                throw new Failure("the topic has " + partitionCount + " partitions after the refused shrink, expected " + ADMIN_GROWN_PARTITIONS);
            }
        }
    }
}
