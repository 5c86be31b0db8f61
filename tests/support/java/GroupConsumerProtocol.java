import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/**
 * GroupConsumerProtocol BOOTSTRAP GROUP TOPIC MEMBERS TIMEOUT_SECONDS [REMOTE_ASSIGNOR]
 *
 * Starts MEMBERS Java consumers in one group on the KIP-848 consumer group protocol
 * (group.protocol=consumer; session timeout, heartbeat interval and assignor are the broker's, except
 * group.remote.assignor when REMOTE_ASSIGNOR is given), each polled by its own thread. Waits until their
 * assignments split TOPIC: disjoint, covering every partition, balanced (sizes differ by at most one).
 * Then closes the last member (it leaves the group) and waits for the remaining members to split TOPIC.
 * Prints one line per member and split, e.g. "split 3 member 0: [0, 1]" then "split 2 member 0: [0, 1, 2]".
 * Exit 0 = both splits reached, 1 = a split not within TIMEOUT_SECONDS or a consumer failed (reason on stderr).
 */
public final class GroupConsumerProtocol {
    /** One consumer polled by its own thread; publishes its current assignment after every poll. */
    private static final class Member {
        final AtomicReference<Set<Integer>> assignment = new AtomicReference<>(Set.of());
        final AtomicBoolean stop = new AtomicBoolean(false);
        final AtomicReference<Throwable> failure = new AtomicReference<>();
        final Thread thread;

        Member(Properties properties, String topic) {
            thread = new Thread(() -> {
                try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(properties)) {
                    consumer.subscribe(List.of(topic));
                    while (!stop.get()) {
                        consumer.poll(Duration.ofMillis(100));
                        Set<Integer> current = new TreeSet<>();
                        for (TopicPartition partition : consumer.assignment()) {
                            current.add(partition.partition());
                        }
                        assignment.set(current);
                    }
                } catch (Throwable error) {
                    failure.set(error);
                }
                // Closed (left the group): it owns nothing any more.
                assignment.set(Set.of());
            });
            thread.start();
        }

        /** Stops polling and closes the consumer, which leaves the group. */
        void close() throws InterruptedException {
            stop.set(true);
            thread.join(30_000);
            if (thread.isAlive()) {
                failure.compareAndSet(null, new IllegalStateException("consumer did not close within 30 s"));
            }
        }
    }

    public static void main(String[] args) throws Exception {
        String bootstrap = args[0];
        String groupId = args[1];
        String topic = args[2];
        int memberCount = Integer.parseInt(args[3]);
        long deadline = System.nanoTime() + Duration.ofSeconds(Long.parseLong(args[4])).toNanos();
        String remoteAssignor = args.length > 5 ? args[5] : null;

        int partitionCount = partitionCount(bootstrap, topic);
        List<Member> allMembers = new ArrayList<>();
        boolean bothSplits = false;
        try {
            for (int i = 0; i < memberCount; i++) {
                allMembers.add(new Member(properties(bootstrap, groupId, remoteAssignor), topic));
            }
            List<Member> active = new ArrayList<>(allMembers);
            boolean firstSplit = awaitSplit(active, partitionCount, deadline);
            report(active);
            if (firstSplit) {
                active.remove(active.size() - 1).close();
                bothSplits = awaitSplit(active, partitionCount, deadline);
                report(active);
            }
        } finally {
            for (Member member : allMembers) {
                member.close();
            }
        }
        boolean failed = false;
        for (int i = 0; i < allMembers.size(); i++) {
            Throwable failure = allMembers.get(i).failure.get();
            if (failure != null) {
                System.err.println("member " + i + " failed: " + failure);
                failed = true;
            }
        }
        if (failed) {
            System.exit(1);
        }
        if (!bothSplits) {
            System.err.println("no disjoint, complete, balanced split of " + partitionCount + " partitions in time");
            System.exit(1);
        }
    }

    /** Waits until the members' assignments are disjoint, cover every partition and are balanced. */
    private static boolean awaitSplit(List<Member> members, int partitionCount, long deadline)
            throws InterruptedException {
        while (System.nanoTime() < deadline) {
            if (members.stream().anyMatch(member -> member.failure.get() != null)) {
                return false;
            }
            Set<Integer> union = new TreeSet<>();
            int total = 0;
            int smallest = Integer.MAX_VALUE;
            int largest = 0;
            for (Member member : members) {
                Set<Integer> assignment = member.assignment.get();
                union.addAll(assignment);
                total += assignment.size();
                smallest = Math.min(smallest, assignment.size());
                largest = Math.max(largest, assignment.size());
            }
            if (union.size() == partitionCount && total == partitionCount && smallest > 0 && largest - smallest <= 1) {
                return true;
            }
            Thread.sleep(100);
        }
        return false;
    }

    private static void report(List<Member> members) {
        for (int i = 0; i < members.size(); i++) {
            System.out.println("split " + members.size() + " member " + i + ": " + members.get(i).assignment.get());
        }
        System.out.flush();
    }

    private static Properties properties(String bootstrap, String groupId, String remoteAssignor) {
        Properties properties = new Properties();
        properties.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        properties.put(ConsumerConfig.GROUP_ID_CONFIG, groupId);
        properties.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, "consumer");
        if (remoteAssignor != null) {
            properties.put(ConsumerConfig.GROUP_REMOTE_ASSIGNOR_CONFIG, remoteAssignor);
        }
        properties.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        properties.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        properties.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        return properties;
    }

    private static int partitionCount(String bootstrap, String topic) {
        Properties properties = new Properties();
        properties.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        properties.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        properties.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(properties)) {
            return consumer.partitionsFor(topic, Duration.ofSeconds(30)).size();
        }
    }
}
