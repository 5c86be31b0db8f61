import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.AlterConfigsOptions;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.CreatePartitionsOptions;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.DescribeProducersResult.PartitionProducerState;
import org.apache.kafka.clients.admin.LogDirDescription;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.ProducerState;
import org.apache.kafka.clients.admin.RecordsToDelete;
import org.apache.kafka.clients.admin.ReplicaInfo;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.admin.TransactionDescription;
import org.apache.kafka.clients.admin.TransactionListing;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.ElectionType;
import org.apache.kafka.common.KafkaFuture;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.utils.ProducerIdAndEpoch;

/**
 * AdminOps BOOTSTRAP PREFIX
 *
 * Runs the Java AdminClient's cluster, topic-config, partition, record, log-dir, leader-election,
 * producer and transaction operations against one broker and prints every outcome as one line
 * "key=value" (a failed call prints "key=error:ExceptionClass: message"); the calling test compares
 * them with what Apache Kafka answers. Topics are named PREFIX-partitions, PREFIX-records and
 * PREFIX-compacted; the transactional id is PREFIX-txn. Each call is bounded (CALL_TIMEOUT_SECONDS) and
 * one failing call does not stop the others. Exit 0 when the program ran to the end (whatever the outcomes).
 * Configs are altered with IncrementalAlterConfigs only: kafka-clients 4.x no longer has the legacy
 * Admin.alterConfigs.
 */
public final class AdminOps {
    static final long CALL_TIMEOUT_SECONDS = 30;
    static final int BROKER_ID = 1;
    /** retention.ms when neither the topic nor the broker sets it (7 days), as both brokers report it. */
    static final long DEFAULT_RETENTION_MS = 604_800_000L;
    /** Records the idempotent producer writes to PREFIX-records partition 0, each VALUE_SIZE bytes. */
    static final int IDEMPOTENT_RECORDS = 7;
    /** Records the transaction writes to PREFIX-records partition 1. */
    static final int TRANSACTION_RECORDS = 3;
    static final int VALUE_SIZE = 100;
    static final Duration TRANSACTION_STATE_WAIT = Duration.ofSeconds(15);

    final Admin admin;
    final String bootstrap;
    final String prefix;

    AdminOps(String bootstrap, String prefix) {
        Properties properties = new Properties();
        properties.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        properties.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, 15_000);
        properties.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 30_000);
        this.admin = Admin.create(properties);
        this.bootstrap = bootstrap;
        this.prefix = prefix;
    }

    /** A step whose failure is reported as its outcome. */
    interface Step {
        void run() throws Exception;
    }

    static void print(String key, Object value) {
        System.out.println(key + "=" + value);
    }

    /** Runs a step; an exception is printed under `key` as "error:Class: message" (the cause of an ExecutionException). */
    static void step(String key, Step step) {
        try {
            step.run();
        } catch (Exception e) {
            Throwable cause = e instanceof ExecutionException && e.getCause() != null ? e.getCause() : e;
            print(key, "error:" + cause.getClass().getSimpleName() + ": " + String.valueOf(cause.getMessage()).replace('\n', ' '));
        }
    }

    /** Runs a step expected to fail; prints "ok" under `key` when it did not. */
    static void expectError(String key, Step step) {
        step(key, () -> {
            step.run();
            print(key, "ok");
        });
    }

    static <T> T get(KafkaFuture<T> future) throws Exception {
        return future.get(CALL_TIMEOUT_SECONDS, TimeUnit.SECONDS);
    }

    public static void main(String[] args) throws Exception {
        AdminOps ops = new AdminOps(args[0], args[1]);
        try {
            ops.runAll();
        } finally {
            ops.admin.close(Duration.ofSeconds(10));
        }
        System.out.flush();
        // System.exit so that no lingering client thread can keep the JVM alive.
        System.exit(0);
    }

    void runAll() {
        String partitionsTopic = prefix + "-partitions";
        String recordsTopic = prefix + "-records";
        String compactedTopic = prefix + "-compacted";
        describeCluster();
        partitions(partitionsTopic);
        topicConfigs(partitionsTopic);
        brokerConfigs();
        producersAndTransactions(recordsTopic);
        logDirs(recordsTopic);
        deleteRecords(recordsTopic, compactedTopic);
        reassignmentsAndElections(recordsTopic);
    }

    // ------------------------------------------------------------------------------------ cluster

    void describeCluster() {
        step("cluster", () -> {
            DescribeClusterResult cluster = admin.describeCluster();
            List<String> nodes = new ArrayList<>();
            for (Node node : get(cluster.nodes())) {
                nodes.add(node.id() + "@" + node.host() + ":" + node.port());
            }
            print("cluster.nodes", String.join(",", nodes));
            Node controller = get(cluster.controller());
            print("cluster.controller", controller == null ? "none" : controller.id() + "@" + controller.host() + ":" + controller.port());
            print("cluster.id", get(cluster.clusterId()));
        });
    }

    // --------------------------------------------------------------------------------- partitions

    void createTopic(String topic, int partitions, Map<String, String> configs) throws Exception {
        get(admin.createTopics(List.of(new NewTopic(topic, partitions, (short) 1).configs(configs))).all());
        // Wait until every partition has a leader, as a client would before using the topic.
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(CALL_TIMEOUT_SECONDS);
        while (true) {
            try {
                TopicDescription description = get(admin.describeTopics(List.of(topic)).allTopicNames()).get(topic);
                if (description.partitions().size() == partitions
                        && description.partitions().stream().allMatch(p -> p.leader() != null && p.leader().id() >= 0)) {
                    return;
                }
            } catch (ExecutionException e) {
                if (System.nanoTime() > deadline) {
                    throw e;
                }
            }
            if (System.nanoTime() > deadline) {
                throw new IllegalStateException("topic " + topic + " not ready within " + CALL_TIMEOUT_SECONDS + " s");
            }
            Thread.sleep(100);
        }
    }

    /** "count leaders": the partition count and each partition's leader id in partition order. */
    String partitionLeaders(String topic) throws Exception {
        TopicDescription description = get(admin.describeTopics(List.of(topic)).allTopicNames()).get(topic);
        List<String> leaders = new ArrayList<>();
        description.partitions().forEach(p -> leaders.add(String.valueOf(p.leader() == null ? -1 : p.leader().id())));
        return description.partitions().size() + " " + String.join(",", leaders);
    }

    void partitions(String topic) {
        step("partitions.create-topic", () -> {
            createTopic(topic, 3, Map.of());
            print("partitions.create-topic", "ok");
        });
        step("partitions.grow-3-to-5", () -> {
            get(admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(5))).all());
            print("partitions.grow-3-to-5", "ok");
        });
        step("partitions.after-grow", () -> {
            // The new partitions show up once their leaders are elected.
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(CALL_TIMEOUT_SECONDS);
            String described = partitionLeaders(topic);
            while (!described.equals("5 1,1,1,1,1") && System.nanoTime() < deadline) {
                Thread.sleep(100);
                described = partitionLeaders(topic);
            }
            print("partitions.after-grow", described);
        });
        expectError("partitions.shrink-5-to-4", () -> get(admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(4))).all()));
        expectError("partitions.same-count-5", () -> get(admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(5))).all()));
        expectError("partitions.unknown-topic", () -> get(admin.createPartitions(Map.of(prefix + "-absent", NewPartitions.increaseTo(2))).all()));
        step("partitions.validate-only-6", () -> {
            get(admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(6)),
                    new CreatePartitionsOptions().validateOnly(true)).all());
            print("partitions.validate-only-6", "ok " + partitionLeaders(topic));
        });
    }

    // ------------------------------------------------------------------------------ topic configs

    /** "value source" of one config of a resource, "absent" when the broker does not list it. */
    String configValue(ConfigResource resource, String name) throws Exception {
        Config config = get(admin.describeConfigs(List.of(resource)).all()).get(resource);
        ConfigEntry entry = config.get(name);
        return entry == null ? "absent" : entry.value() + " " + entry.source();
    }

    /**
     * configValue once it reads `expected` (or the call timeout passes): Apache Kafka applies an
     * acknowledged config change to what DescribeConfigs reads a moment later (via its metadata log).
     */
    String settledConfigValue(ConfigResource resource, String name, String expected) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(CALL_TIMEOUT_SECONDS);
        String value = configValue(resource, name);
        while (!value.equals(expected) && System.nanoTime() < deadline) {
            Thread.sleep(100);
            value = configValue(resource, name);
        }
        return value;
    }

    void incrementalAlter(ConfigResource resource, AlterConfigOp... ops) throws Exception {
        get(admin.incrementalAlterConfigs(Map.of(resource, List.of(ops))).all());
    }

    static AlterConfigOp op(String name, String value, AlterConfigOp.OpType type) {
        return new AlterConfigOp(new ConfigEntry(name, value), type);
    }

    void topicConfigs(String topic) {
        ConfigResource resource = new ConfigResource(ConfigResource.Type.TOPIC, topic);
        step("configs.set", () -> {
            incrementalAlter(resource, op("retention.ms", "123456", AlterConfigOp.OpType.SET),
                    op("cleanup.policy", "delete", AlterConfigOp.OpType.SET));
            print("configs.set", "ok");
        });
        step("configs.after-set.retention.ms", () -> print("configs.after-set.retention.ms", settledConfigValue(resource, "retention.ms", "123456 DYNAMIC_TOPIC_CONFIG")));
        step("configs.append", () -> {
            incrementalAlter(resource, op("cleanup.policy", "compact", AlterConfigOp.OpType.APPEND));
            print("configs.append", "ok");
        });
        step("configs.after-append.cleanup.policy", () -> print("configs.after-append.cleanup.policy", settledConfigValue(resource, "cleanup.policy", "delete,compact DYNAMIC_TOPIC_CONFIG")));
        step("configs.subtract", () -> {
            incrementalAlter(resource, op("cleanup.policy", "delete", AlterConfigOp.OpType.SUBTRACT));
            print("configs.subtract", "ok");
        });
        step("configs.after-subtract.cleanup.policy", () -> print("configs.after-subtract.cleanup.policy", settledConfigValue(resource, "cleanup.policy", "compact DYNAMIC_TOPIC_CONFIG")));
        step("configs.delete", () -> {
            incrementalAlter(resource, op("retention.ms", null, AlterConfigOp.OpType.DELETE));
            print("configs.delete", "ok");
        });
        step("configs.after-delete.retention.ms", () -> print("configs.after-delete.retention.ms", settledConfigValue(resource, "retention.ms", DEFAULT_RETENTION_MS + " DEFAULT_CONFIG")));
        expectError("configs.invalid-value", () -> incrementalAlter(resource, op("retention.ms", "abc", AlterConfigOp.OpType.SET)));
        expectError("configs.unknown-name", () -> incrementalAlter(resource, op("no.such.config", "1", AlterConfigOp.OpType.SET)));
        step("configs.validate-only", () -> {
            get(admin.incrementalAlterConfigs(Map.of(resource, List.of(op("retention.ms", "1", AlterConfigOp.OpType.SET))),
                    new AlterConfigsOptions().validateOnly(true)).all());
            print("configs.validate-only", "ok " + configValue(resource, "retention.ms"));
        });
        expectError("configs.unknown-topic", () -> incrementalAlter(new ConfigResource(ConfigResource.Type.TOPIC, prefix + "-absent"),
                op("retention.ms", "1000", AlterConfigOp.OpType.SET)));
    }

    // ----------------------------------------------------------------------------- broker configs

    void brokerConfigs() {
        ConfigResource broker = new ConfigResource(ConfigResource.Type.BROKER, String.valueOf(BROKER_ID));
        step("broker-configs.describe.message.max.bytes", () ->
                print("broker-configs.describe.message.max.bytes", configValue(broker, "message.max.bytes")));
        expectError("broker-configs.incremental-alter", () -> incrementalAlter(broker, op("log.cleaner.threads", "2", AlterConfigOp.OpType.SET)));
    }

    // ------------------------------------------------------------------- producers, transactions

    Properties producerProperties() {
        Properties properties = new Properties();
        properties.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        properties.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        properties.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        properties.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
        properties.put(ProducerConfig.ACKS_CONFIG, "all");
        properties.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, 30_000);
        properties.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, 30_000);
        properties.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, 15_000);
        return properties;
    }

    static byte[] value(int index) {
        byte[] value = new byte[VALUE_SIZE];
        Arrays.fill(value, (byte) ('a' + index % 26));
        return value;
    }

    /**
     * The producer id the broker gave this producer. kafka-clients has no public getter for it, so it is read
     * from the producer's TransactionManager (kafka-clients 4.3.1 internals).
     */
    static long producerId(KafkaProducer<byte[], byte[]> producer) throws ReflectiveOperationException {
        Field field = KafkaProducer.class.getDeclaredField("transactionManager");
        field.setAccessible(true);
        Object transactionManager = field.get(producer);
        Method method = transactionManager.getClass().getDeclaredMethod("producerIdAndEpoch");
        method.setAccessible(true);
        return ((ProducerIdAndEpoch) method.invoke(transactionManager)).producerId;
    }

    /** "producerId epoch lastSequence lastTimestamp txnStartOffset" per active producer of a partition, ";"-separated. */
    String producers(TopicPartition partition) throws Exception {
        PartitionProducerState state = get(admin.describeProducers(List.of(partition)).partitionResult(partition));
        List<String> described = new ArrayList<>();
        for (ProducerState producer : state.activeProducers()) {
            described.add(producer.producerId() + " " + producer.producerEpoch() + " " + producer.lastSequence() + " "
                    + producer.lastTimestamp() + " " + producer.currentTransactionStartOffset());
        }
        return described.size() + (described.isEmpty() ? "" : " " + String.join(";", described));
    }

    void producersAndTransactions(String topic) {
        TopicPartition idempotentPartition = new TopicPartition(topic, 0);
        TopicPartition transactionPartition = new TopicPartition(topic, 1);
        step("records.create-topic", () -> {
            createTopic(topic, 3, Map.of());
            print("records.create-topic", "ok");
        });
        step("producers.idempotent-write", () -> {
            // Explicit CreateTime timestamps, so the broker's lastTimestamp can be checked exactly.
            long firstTimestamp = System.currentTimeMillis() - 60_000;
            try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(producerProperties())) {
                for (int i = 0; i < IDEMPOTENT_RECORDS; i++) {
                    producer.send(new ProducerRecord<>(topic, 0, firstTimestamp + i, ("key-" + i).getBytes(StandardCharsets.UTF_8), value(i))).get();
                }
                print("producers.idempotent-write", "ok " + producerId(producer) + " " + (firstTimestamp + IDEMPOTENT_RECORDS - 1));
            }
        });
        step("producers.idempotent", () -> print("producers.idempotent", producers(idempotentPartition)));

        String transactionalId = prefix + "-txn";
        step("transactions.write", () -> {
            Properties properties = producerProperties();
            properties.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, transactionalId);
            try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(properties)) {
                producer.initTransactions();
                producer.beginTransaction();
                for (int i = 0; i < TRANSACTION_RECORDS; i++) {
                    producer.send(new ProducerRecord<>(topic, 1, ("txn-" + i).getBytes(StandardCharsets.UTF_8), value(i)));
                }
                producer.commitTransaction();
            }
            print("transactions.write", "ok");
        });
        step("transactions.list", () -> {
            // The coordinator completes the commit once the markers are written: wait for CompleteCommit.
            long deadline = System.nanoTime() + TRANSACTION_STATE_WAIT.toNanos();
            String listed = "absent";
            while (System.nanoTime() < deadline) {
                listed = "absent";
                for (TransactionListing listing : get(admin.listTransactions().all())) {
                    if (listing.transactionalId().equals(transactionalId)) {
                        listed = listing.state() + " " + listing.producerId();
                    }
                }
                if (listed.startsWith("CompleteCommit ")) {
                    break;
                }
                Thread.sleep(100);
            }
            print("transactions.list", listed);
        });
        step("transactions.describe", () -> {
            TransactionDescription description = get(admin.describeTransactions(List.of(transactionalId)).description(transactionalId));
            print("transactions.describe", description.state() + " " + description.producerId() + " "
                    + description.producerEpoch() + " " + description.coordinatorId() + " partitions=" + description.topicPartitions().size());
        });
        expectError("transactions.describe-unknown", () ->
                get(admin.describeTransactions(List.of(prefix + "-no-such-txn")).description(prefix + "-no-such-txn")));
        step("producers.transactional", () -> print("producers.transactional", producers(transactionPartition)));
        step("producers.empty-partition", () -> print("producers.empty-partition", producers(new TopicPartition(topic, 2))));
    }

    // ----------------------------------------------------------------------------------- log dirs

    void logDirs(String topic) {
        step("logdirs", () -> {
            Map<String, LogDirDescription> dirs = get(admin.describeLogDirs(List.of(BROKER_ID)).allDescriptions()).get(BROKER_ID);
            print("logdirs.count", dirs.size());
            for (Map.Entry<String, LogDirDescription> dir : dirs.entrySet()) {
                LogDirDescription description = dir.getValue();
                print("logdirs.error", description.error() == null ? "none" : description.error().getClass().getSimpleName());
                print("logdirs.total-bytes", description.totalBytes().isPresent() ? description.totalBytes().getAsLong() : "absent");
                print("logdirs.usable-bytes", description.usableBytes().isPresent() ? description.usableBytes().getAsLong() : "absent");
                for (int partition = 0; partition < 3; partition++) {
                    ReplicaInfo replica = description.replicaInfos().get(new TopicPartition(topic, partition));
                    print("logdirs.size.p" + partition, replica == null ? "absent" : String.valueOf(replica.size()));
                }
            }
        });
    }

    // ----------------------------------------------------------------------------- delete records

    long offset(TopicPartition partition, OffsetSpec spec) throws Exception {
        return get(admin.listOffsets(Map.of(partition, spec)).partitionResult(partition)).offset();
    }

    void deleteRecords(String topic, String compactedTopic) {
        TopicPartition first = new TopicPartition(topic, 0);
        TopicPartition second = new TopicPartition(topic, 1);
        step("delete-records.before-5", () -> print("delete-records.before-5",
                get(admin.deleteRecords(Map.of(first, RecordsToDelete.beforeOffset(5))).lowWatermarks().get(first)).lowWatermark()));
        step("delete-records.offsets.p0", () -> print("delete-records.offsets.p0",
                offset(first, OffsetSpec.earliest()) + " " + offset(first, OffsetSpec.latest())));
        // -1: up to the high watermark.
        step("delete-records.to-high-watermark", () -> print("delete-records.to-high-watermark",
                get(admin.deleteRecords(Map.of(second, RecordsToDelete.beforeOffset(-1))).lowWatermarks().get(second)).lowWatermark()));
        step("delete-records.offsets.p1", () -> print("delete-records.offsets.p1",
                offset(second, OffsetSpec.earliest()) + " " + offset(second, OffsetSpec.latest())));
        expectError("delete-records.beyond-high-watermark", () ->
                get(admin.deleteRecords(Map.of(first, RecordsToDelete.beforeOffset(1000))).lowWatermarks().get(first)));
        step("delete-records.compacted-topic-setup", () -> {
            createTopic(compactedTopic, 1, Map.of("cleanup.policy", "compact"));
            try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(producerProperties())) {
                for (int i = 0; i < 2; i++) {
                    producer.send(new ProducerRecord<>(compactedTopic, 0, ("key-" + i).getBytes(StandardCharsets.UTF_8), value(i))).get();
                }
            }
            print("delete-records.compacted-topic-setup", "ok");
        });
        // Kafka refuses to delete records of a compacted topic (POLICY_VIOLATION).
        TopicPartition compacted = new TopicPartition(compactedTopic, 0);
        expectError("delete-records.compacted-topic", () ->
                get(admin.deleteRecords(Map.of(compacted, RecordsToDelete.beforeOffset(1))).lowWatermarks().get(compacted)));
        step("delete-records.compacted-topic.earliest", () -> print("delete-records.compacted-topic.earliest", offset(compacted, OffsetSpec.earliest())));
    }

    // ------------------------------------------------------------- reassignments, leader election

    static String electionOutcome(Map<TopicPartition, Optional<Throwable>> results) {
        List<String> outcomes = new ArrayList<>();
        results.forEach((partition, error) -> outcomes.add(partition.partition() + ":"
                + error.map(e -> e.getClass().getSimpleName()).orElse("elected")));
        return String.join(",", outcomes);
    }

    void reassignmentsAndElections(String topic) {
        step("reassignments", () -> print("reassignments", get(admin.listPartitionReassignments().reassignments()).size()));
        step("reassignments.topic", () -> print("reassignments.topic",
                get(admin.listPartitionReassignments(Set.of(new TopicPartition(topic, 0))).reassignments()).size()));
        step("elect.preferred", () -> print("elect.preferred",
                electionOutcome(get(admin.electLeaders(ElectionType.PREFERRED, Set.of(new TopicPartition(topic, 0))).partitions()))));
        step("elect.unclean", () -> print("elect.unclean",
                electionOutcome(get(admin.electLeaders(ElectionType.UNCLEAN, Set.of(new TopicPartition(topic, 1))).partitions()))));
        step("elect.unknown-partition", () -> print("elect.unknown-partition",
                electionOutcome(get(admin.electLeaders(ElectionType.PREFERRED, Set.of(new TopicPartition(topic, 99))).partitions()))));
    }
}
