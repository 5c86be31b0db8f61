import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.locks.LockSupport;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.InvalidProducerEpochException;
import org.apache.kafka.common.errors.ProducerFencedException;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * Exactly-once with Kafka transactions (Java kafka-clients): consume, transform, produce.
 *
 * <pre>ExactlyOnce BOOTSTRAP INPUT_TOPIC OUTPUT_TOPIC GROUP_ID INSTANCE_ID TRANSACTIONAL_ID</pre>
 *
 * Reads INPUT_TOPIC in group GROUP_ID (read_committed, static member INSTANCE_ID) and copies every record to
 * the same partition of OUTPUT_TOPIC. Each batch of records returned by poll() is one transaction: the output
 * records and the consumer's offsets after the batch (sendOffsetsToTransaction with the consumer's group
 * metadata) commit together or not at all. A restarted instance (same TRANSACTIONAL_ID) fences the killed one
 * and aborts its open transaction in initTransactions. With Kafka 4 clients and a broker that offers it, the
 * transactions use Transactions V2 (KIP-890). Prints the same batch lines as the Python applications
 * (app_support.py). Exits 0 once it has read the whole input, 1 on a fatal error (e.g. fenced).
 */
public final class ExactlyOnce {
    static final int BATCH_SIZE = 100;
    static final Duration POLL_TIMEOUT = Duration.ofMillis(500);
    /** The "processing" of one record takes this long: it stands for real work (as in app_support.py). */
    static final long WORK_NANOS_PER_RECORD = 200_000;

    public static void main(String[] args) {
        String bootstrap = args[0];
        String inputTopic = args[1];
        String outputTopic = args[2];
        String groupId = args[3];
        String instanceId = args[4];
        String transactionalId = args[5];

        try (KafkaProducer<byte[], byte[]> producer =
                     new KafkaProducer<>(producerProperties(bootstrap, transactionalId));
             KafkaConsumer<byte[], byte[]> consumer =
                     new KafkaConsumer<>(consumerProperties(bootstrap, groupId, instanceId))) {
            // Before the consumer fetches the group's offsets: fence the previous instance, abort its transaction.
            producer.initTransactions();
            consumer.subscribe(List.of(inputTopic));
            log("started");
            while (true) {
                ConsumerRecords<byte[], byte[]> records = consumer.poll(POLL_TIMEOUT);
                if (records.isEmpty()) {
                    if (reachedEnd(consumer)) {
                        break;
                    }
                    continue;
                }
                log("batch begin " + records.count());
                try {
                    producer.beginTransaction();
                    Map<TopicPartition, OffsetAndMetadata> offsets = new HashMap<>();
                    for (ConsumerRecord<byte[], byte[]> record : records) {
                        producer.send(new ProducerRecord<>(outputTopic, record.partition(), null, work(record)));
                        offsets.put(new TopicPartition(record.topic(), record.partition()),
                                new OffsetAndMetadata(record.offset() + 1));
                    }
                    log("batch output produced");
                    producer.sendOffsetsToTransaction(offsets, consumer.groupMetadata());
                    log("batch offsets sent");
                    producer.commitTransaction();
                } catch (ProducerFencedException | InvalidProducerEpochException fenced) {
                    throw fenced; // a newer instance took over: this one must stop
                } catch (KafkaException error) {
                    log("aborting the transaction: " + error);
                    producer.abortTransaction();
                    rewind(consumer);
                    continue;
                }
                log("batch done");
            }
            log("reached the end of the input");
        } catch (KafkaException error) {
            log("fatal: " + error);
            System.exit(1);
        }
    }

    static Properties producerProperties(String bootstrap, String transactionalId) {
        Properties properties = new Properties();
        properties.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        properties.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, transactionalId); // implies enable.idempotence
        properties.put(ProducerConfig.LINGER_MS_CONFIG, 5);
        properties.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        properties.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        return properties;
    }

    static Properties consumerProperties(String bootstrap, String groupId, String instanceId) {
        Properties properties = new Properties();
        properties.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        properties.put(ConsumerConfig.GROUP_ID_CONFIG, groupId);
        // Static membership: a restarted instance takes over its killed predecessor's partitions at once.
        properties.put(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG, instanceId);
        properties.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, 10_000);
        properties.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        properties.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        properties.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        properties.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, BATCH_SIZE);
        properties.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        properties.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        return properties;
    }

    /** Processes one record: the output value (here the input value itself), after WORK_NANOS_PER_RECORD. */
    static byte[] work(ConsumerRecord<byte[], byte[]> record) {
        LockSupport.parkNanos(WORK_NANOS_PER_RECORD);
        return record.value();
    }

    /** True once the consumer's position is at the end (the last stable offset) of every assigned partition. */
    static boolean reachedEnd(KafkaConsumer<byte[], byte[]> consumer) {
        Set<TopicPartition> assignment = consumer.assignment();
        if (assignment.isEmpty()) {
            return false;
        }
        Map<TopicPartition, Long> ends = consumer.endOffsets(assignment);
        for (TopicPartition partition : assignment) {
            if (consumer.position(partition) < ends.get(partition)) {
                return false;
            }
        }
        return true;
    }

    /** After an abort the batch's output is gone: read again from the group's committed offsets. */
    static void rewind(KafkaConsumer<byte[], byte[]> consumer) {
        Map<TopicPartition, OffsetAndMetadata> committed = consumer.committed(consumer.assignment());
        for (TopicPartition partition : consumer.assignment()) {
            OffsetAndMetadata offset = committed.get(partition);
            if (offset == null) {
                consumer.seekToBeginning(List.of(partition));
            } else {
                consumer.seek(partition, offset);
            }
        }
        log("rewound to " + committed);
    }

    static void log(String line) {
        System.out.println(line);
        System.out.flush();
    }
}
