import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/**
 * GroupSplit BOOTSTRAP GROUP TOPIC MEMBERS TIMEOUT_SECONDS
 *
 * Starts MEMBERS Java consumers (classic group protocol, range assignor) in one group, each polled by
 * its own thread, and waits until their assignments are disjoint and cover every partition of TOPIC.
 * Prints one line per member with its sorted partitions, e.g. "member 0: [0, 1]".
 * Exit 0 = split reached, 1 = not within TIMEOUT_SECONDS or a consumer failed (reason on stderr).
 */
public final class GroupSplit {
    public static void main(String[] args) throws Exception {
        String bootstrap = args[0];
        String groupId = args[1];
        String topic = args[2];
        int memberCount = Integer.parseInt(args[3]);
        long deadline = System.nanoTime() + Duration.ofSeconds(Long.parseLong(args[4])).toNanos();

        List<Set<Integer>> assignments = new ArrayList<>();
        ConcurrentHashMap<Integer, Throwable> failures = new ConcurrentHashMap<>();
        AtomicBoolean stop = new AtomicBoolean(false);
        List<Thread> threads = new ArrayList<>();
        for (int i = 0; i < memberCount; i++) {
            Set<Integer> assignment = ConcurrentHashMap.newKeySet();
            assignments.add(assignment);
            int member = i;
            Thread thread = new Thread(() -> {
                try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(properties(bootstrap, groupId))) {
                    consumer.subscribe(List.of(topic));
                    while (!stop.get()) {
                        consumer.poll(Duration.ofMillis(100));
                        Set<Integer> current = new TreeSet<>();
                        for (TopicPartition partition : consumer.assignment()) {
                            current.add(partition.partition());
                        }
                        assignment.retainAll(current);
                        assignment.addAll(current);
                    }
                } catch (Throwable error) {
                    failures.put(member, error);
                }
            });
            thread.start();
            threads.add(thread);
        }

        int partitionCount = partitionCount(bootstrap, topic);
        boolean split = false;
        while (!split && failures.isEmpty() && System.nanoTime() < deadline) {
            Thread.sleep(100);
            Set<Integer> union = new TreeSet<>();
            int total = 0;
            for (Set<Integer> assignment : assignments) {
                union.addAll(assignment);
                total += assignment.size();
            }
            split = union.size() == partitionCount && total == partitionCount
                    && assignments.stream().noneMatch(Set::isEmpty);
        }
        stop.set(true);
        for (Thread thread : threads) {
            thread.join(30_000);
        }
        for (int i = 0; i < memberCount; i++) {
            System.out.println("member " + i + ": " + new TreeSet<>(assignments.get(i)));
        }
        if (!failures.isEmpty()) {
            failures.forEach((member, error) -> System.err.println("member " + member + " failed: " + error));
            System.exit(1);
        }
        if (!split) {
            System.err.println("no disjoint, complete split of " + partitionCount + " partitions in time");
            System.exit(1);
        }
    }

    private static Properties properties(String bootstrap, String groupId) {
        Properties properties = new Properties();
        properties.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        properties.put(ConsumerConfig.GROUP_ID_CONFIG, groupId);
        properties.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, "classic");
        properties.put(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG,
                "org.apache.kafka.clients.consumer.RangeAssignor");
        properties.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, 6000);
        properties.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, 500);
        properties.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        properties.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        properties.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        return properties;
    }

    private static int partitionCount(String bootstrap, String topic) {
        Properties properties = properties(bootstrap, "unused");
        properties.remove(ConsumerConfig.GROUP_ID_CONFIG);
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(properties)) {
            return consumer.partitionsFor(topic, Duration.ofSeconds(30)).size();
        }
    }
}
