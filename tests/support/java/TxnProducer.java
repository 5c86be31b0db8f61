import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Properties;

import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * TxnProducer BOOTSTRAP TOPIC TRANSACTIONAL_ID COMMIT_COUNT ABORT_COUNT
 *
 * A transactional kafka-clients producer that runs COMMIT_COUNT + ABORT_COUNT transactions, committing
 * and aborting alternately (transaction t commits when t is even and commits remain, or when no aborts
 * remain). Each transaction sends MESSAGES_PER_TRANSACTION records, record i to partition
 * i % partitions, with the value "java-T-commit-I" or "java-T-abort-I"; the records of a transaction
 * that is aborted are flushed to the broker first, so the abort has something to undo.
 * Prints one summary line: "committed C aborted A messages_per_transaction M".
 * Exit 0 = every transaction ended as planned, 1 = a client error (stack trace on stderr).
 */
public final class TxnProducer {
    static final int MESSAGES_PER_TRANSACTION = 10;

    public static void main(String[] args) {
        String bootstrap = args[0];
        String topic = args[1];
        String transactionalId = args[2];
        int commitCount = Integer.parseInt(args[3]);
        int abortCount = Integer.parseInt(args[4]);

        Properties properties = new Properties();
        properties.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        properties.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, transactionalId);
        properties.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        properties.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        properties.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, 30_000);

        int committed = 0;
        int aborted = 0;
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(properties)) {
            int partitions = producer.partitionsFor(topic).size();
            producer.initTransactions();
            for (int transaction = 0; transaction < commitCount + abortCount; transaction++) {
                boolean commit = (transaction % 2 == 0 && committed < commitCount) || aborted == abortCount;
                String outcome = commit ? "commit" : "abort";
                producer.beginTransaction();
                for (int i = 0; i < MESSAGES_PER_TRANSACTION; i++) {
                    byte[] value = ("java-" + transaction + "-" + outcome + "-" + i).getBytes(StandardCharsets.UTF_8);
                    producer.send(new ProducerRecord<>(topic, i % partitions, null, value));
                }
                if (commit) {
                    producer.commitTransaction();
                    committed++;
                } else {
                    producer.flush();
                    producer.abortTransaction();
                    aborted++;
                }
            }
            producer.close(Duration.ofSeconds(30));
        }
        System.out.println("committed " + committed + " aborted " + aborted
                + " messages_per_transaction " + MESSAGES_PER_TRANSACTION);
    }
}
