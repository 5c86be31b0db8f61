import java.io.BufferedOutputStream;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

import org.apache.kafka.clients.consumer.CloseOptions;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerGroupMetadata;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.AuthorizationException;
import org.apache.kafka.common.errors.InvalidPidMappingException;
import org.apache.kafka.common.errors.OutOfOrderSequenceException;
import org.apache.kafka.common.errors.ProducerFencedException;
import org.apache.kafka.common.errors.RetriableException;
import org.apache.kafka.common.errors.UnsupportedVersionException;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * EosPipeline BOOTSTRAP INPUT_TOPIC OUTPUT_TOPIC GROUP_ID TRANSACTIONAL_ID
 *
 * tests/support/eos_app.py on the Java kafka-clients: a consume-transform-produce application with
 * exactly-once semantics. Consumes INPUT_TOPIC in group GROUP_ID (read_committed, no automatic commits)
 * and, in one transaction per poll (up to BATCH_SIZE records), produces "processed-VALUE" for every input
 * record to the same partition of OUTPUT_TOPIC, adds the consumer's positions to the transaction as the
 * group's offsets (sendOffsetsToTransaction with consumer.groupMetadata(), so a member fenced by a
 * rebalance cannot commit), then commits. A restarted instance (same TRANSACTIONAL_ID) fences its
 * predecessor and aborts its open transaction in initTransactions, then resumes from the group's committed
 * offsets (a read_committed consumer fetches stable offsets only), so every input record ends up in the
 * committed output exactly once however often the application or a broker is killed.
 *
 * Prints the lines eos_app.py prints, one per event, flushed at once:
 *   committed RECORDS positions P:OFFSET,...   a transaction committed (partitions in order)
 *   aborting the transaction: ERROR            then "rewound to P:OFFSET,..." (the group's committed offsets)
 *   retrying CALL: ERROR                       a retriable error (a timeout), retried for up to RETRY_TIME
 *   consumer error: ERROR                      a retriable error out of poll, which goes on
 *   fatal: ERROR                               then exit 1
 *   watchdog: CALL blocked for more than 20s; exiting   then exit 3
 * Runs until SIGTERM or SIGINT: the current transaction ends, the consumer leaves the group, exit 0. An
 * abortable error aborts the transaction and rewinds the consumer to the group's committed offsets; a
 * retriable one is retried; a fatal one (fenced by a newer instance, out-of-order sequence, authorization,
 * unsupported version, an unknown producer id mapping, an abort that fails, or a retriable error for longer
 * than RETRY_TIME) exits 1. A client call that blocks far past its timeout makes the application exit 3 (see
 * Watchdog), for its supervisor to restart it.
 */
public final class EosPipeline {
    static final int BATCH_SIZE = 200;
    static final Duration CLIENT_TIMEOUT = Duration.ofSeconds(10);
    static final Duration POLL_TIMEOUT = Duration.ofMillis(200);
    /** A single client call blocked this long is stuck, not slow. */
    static final long STUCK_CALL_SECONDS = 2 * CLIENT_TIMEOUT.toSeconds();
    /** How long a retriable error (e.g. the broker is down) is retried before the application gives up. */
    static final Duration RETRY_TIME = Duration.ofSeconds(120);
    static final long RETRY_BACKOFF_MS = 500;
    static final byte[] PREFIX = "processed-".getBytes(StandardCharsets.UTF_8);

    static final int EXIT_FATAL = 1;
    static final int EXIT_STUCK = 3;

    static final PrintStream OUT = new PrintStream(
            new BufferedOutputStream(new FileOutputStream(FileDescriptor.out), 1 << 16), false,
            StandardCharsets.UTF_8);

    static void log(String line) {
        synchronized (OUT) {
            OUT.println(line);
            OUT.flush();
        }
    }

    /** Ends the JVM at once with `code` (no shutdown hooks: the stop hook may be waiting for the main thread). */
    static void exit(int code) {
        synchronized (OUT) {
            OUT.flush();
        }
        System.err.flush();
        Runtime.getRuntime().halt(code);
    }

    /**
     * Exits the process (code 3) when a client call runs far past its timeout. eos_app.py needs it for
     * librdkafka calls that can block for good; here every blocking call has a timeout, so it is the same
     * safety net: a stuck application is restarted, and the restarted instance recovers the transaction
     * state from the broker.
     */
    static final class Watchdog {
        private String call;
        private long startedNanos;

        void start() {
            Thread thread = new Thread(this::watch, "watchdog");
            thread.setDaemon(true);
            thread.start();
        }

        private void watch() {
            while (true) {
                try {
                    Thread.sleep(1000);
                } catch (InterruptedException interrupted) {
                    Thread.currentThread().interrupt();
                    return;
                }
                synchronized (this) {
                    if (call != null
                            && System.nanoTime() - startedNanos > TimeUnit.SECONDS.toNanos(STUCK_CALL_SECONDS)) {
                        log("watchdog: " + call + " blocked for more than " + STUCK_CALL_SECONDS + "s; exiting");
                        exit(EXIT_STUCK);
                    }
                }
            }
        }

        <T> T run(String what, Supplier<T> operation) {
            synchronized (this) {
                call = what;
                startedNanos = System.nanoTime();
            }
            try {
                return operation.get();
            } finally {
                synchronized (this) {
                    call = null;
                }
            }
        }

        void run(String what, Runnable operation) {
            run(what, () -> {
                operation.run();
                return null;
            });
        }
    }

    static final Watchdog WATCHDOG = new Watchdog();

    /** Runs `operation` again while it fails with a retriable error, for up to RETRY_TIME. */
    static <T> T retried(String what, Supplier<T> operation) throws InterruptedException {
        long deadline = System.nanoTime() + RETRY_TIME.toNanos();
        while (true) {
            try {
                return WATCHDOG.run(what, operation);
            } catch (RetriableException error) {
                if (System.nanoTime() - deadline > 0) {
                    throw error;
                }
                log("retrying " + what + ": " + error);
                Thread.sleep(RETRY_BACKOFF_MS);
            }
        }
    }

    static void retried(String what, Runnable operation) throws InterruptedException {
        retried(what, () -> {
            operation.run();
            return null;
        });
    }

    /**
     * Whether `error` (or a cause: a producer in an error state wraps the error that put it there) is one no
     * abort recovers from: kafka-clients' fatal producer errors.
     */
    static boolean isFatal(Throwable error) {
        for (Throwable e = error; e != null; e = e.getCause() == e ? null : e.getCause()) {
            if (e instanceof ProducerFencedException || e instanceof OutOfOrderSequenceException
                    || e instanceof AuthorizationException || e instanceof UnsupportedVersionException
                    || e instanceof InvalidPidMappingException) {
                return true;
            }
        }
        return false;
    }

    static byte[] transform(byte[] value) {
        byte[] out = new byte[PREFIX.length + value.length];
        System.arraycopy(PREFIX, 0, out, 0, PREFIX.length);
        System.arraycopy(value, 0, out, PREFIX.length, value.length);
        return out;
    }

    static String describe(Map<TopicPartition, Long> offsets) {
        List<String> parts = new ArrayList<>();
        offsets.forEach((partition, offset) -> parts.add(partition.partition() + ":" + offset));
        return String.join(",", parts);
    }

    static Map<TopicPartition, Long> byPartition() {
        return new TreeMap<>(Comparator.comparing(TopicPartition::topic).thenComparingInt(TopicPartition::partition));
    }

    private final String inputTopic;
    private final String outputTopic;
    private final KafkaProducer<byte[], byte[]> producer;
    private final KafkaConsumer<byte[], byte[]> consumer;
    private volatile boolean stopping = false;

    EosPipeline(String bootstrap, String inputTopic, String outputTopic, String groupId, String transactionalId) {
        this.inputTopic = inputTopic;
        this.outputTopic = outputTopic;

        Properties producerProperties = new Properties();
        producerProperties.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        producerProperties.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, transactionalId);
        producerProperties.put(ProducerConfig.LINGER_MS_CONFIG, 5);
        // initTransactions, sendOffsetsToTransaction, commitTransaction and abortTransaction (and send, waiting
        // for metadata) give up after this with a TimeoutException; each is retried (see retried).
        producerProperties.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, (int) CLIENT_TIMEOUT.toMillis());
        producerProperties.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        producerProperties.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        this.producer = new KafkaProducer<>(producerProperties);

        Properties consumerProperties = new Properties();
        consumerProperties.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        consumerProperties.put(ConsumerConfig.GROUP_ID_CONFIG, groupId);
        // Never read another producer's uncommitted or aborted output (and fetch only stable group offsets:
        // none of a transaction still pending).
        consumerProperties.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        consumerProperties.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        consumerProperties.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        consumerProperties.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, 6000);
        consumerProperties.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, 500);
        consumerProperties.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, BATCH_SIZE);
        consumerProperties.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        consumerProperties.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG,
                ByteArrayDeserializer.class.getName());
        KafkaConsumer<byte[], byte[]> created;
        try {
            created = new KafkaConsumer<>(consumerProperties);
        } catch (KafkaException error) {
            producer.close(Duration.ZERO);
            throw error;
        }
        this.consumer = created;
    }

    void stop() {
        stopping = true;
    }

    void run() throws InterruptedException {
        try {
            // Before the consumer fetches the group's offsets: fences the previous instance and aborts its open
            // transaction (and the offsets in it).
            retried("initTransactions", producer::initTransactions);
            consumer.subscribe(List.of(inputTopic));
            while (!stopping) {
                ConsumerRecords<byte[], byte[]> records;
                try {
                    records = WATCHDOG.run("poll", () -> consumer.poll(POLL_TIMEOUT));
                } catch (RetriableException error) {
                    log("consumer error: " + error);
                    continue;
                }
                if (!records.isEmpty()) {
                    process(records);
                }
            }
        } finally {
            close();
        }
    }

    /** Leaves the group at once and closes the producer (each within CLIENT_TIMEOUT); failures are logged. */
    private void close() {
        try {
            WATCHDOG.run("consumer close", () -> consumer.close(CloseOptions.timeout(CLIENT_TIMEOUT)));
        } catch (KafkaException error) {
            log("consumer close: " + error);
        }
        try {
            WATCHDOG.run("producer close", () -> producer.close(CLIENT_TIMEOUT));
        } catch (KafkaException error) {
            log("producer close: " + error);
        }
    }

    private void process(ConsumerRecords<byte[], byte[]> records) throws InterruptedException {
        Map<TopicPartition, OffsetAndMetadata> positions;
        try {
            producer.beginTransaction();
            for (ConsumerRecord<byte[], byte[]> record : records) {
                // A failed send puts the producer in an abortable error state: commitTransaction throws.
                ProducerRecord<byte[], byte[]> output =
                        new ProducerRecord<>(outputTopic, record.partition(), null, transform(record.value()));
                WATCHDOG.run("send", () -> producer.send(output));
            }
            positions = retried("position", this::positions);
            ConsumerGroupMetadata groupMetadata = consumer.groupMetadata();
            Map<TopicPartition, OffsetAndMetadata> offsets = positions;
            retried("sendOffsetsToTransaction", () -> producer.sendOffsetsToTransaction(offsets, groupMetadata));
            retried("commitTransaction", producer::commitTransaction);
        } catch (KafkaException error) {
            // A retriable error here was retried for RETRY_TIME already.
            if (isFatal(error) || error instanceof RetriableException) {
                throw error;
            }
            log("aborting the transaction: " + error);
            retried("abortTransaction", producer::abortTransaction);
            rewind();
            return;
        }
        Map<TopicPartition, Long> committed = byPartition();
        positions.forEach((partition, offset) -> committed.put(partition, offset.offset()));
        log("committed " + records.count() + " positions " + describe(committed));
    }

    /** The consumer's position in every assigned partition (each found within CLIENT_TIMEOUT). */
    private Map<TopicPartition, OffsetAndMetadata> positions() {
        Map<TopicPartition, OffsetAndMetadata> positions = new TreeMap<>(
                Comparator.comparing(TopicPartition::topic).thenComparingInt(TopicPartition::partition));
        for (TopicPartition partition : consumer.assignment()) {
            positions.put(partition, new OffsetAndMetadata(consumer.position(partition, CLIENT_TIMEOUT)));
        }
        return positions;
    }

    /**
     * After an abort: the records of the aborted transaction were consumed but their output is gone; consume
     * again from the group's committed offsets (the beginning where the group has none).
     */
    private void rewind() throws InterruptedException {
        Set<TopicPartition> assignment = consumer.assignment();
        Map<TopicPartition, OffsetAndMetadata> committed =
                retried("committed", () -> consumer.committed(assignment, CLIENT_TIMEOUT));
        Map<TopicPartition, Long> rewound = byPartition();
        for (TopicPartition partition : assignment) {
            OffsetAndMetadata offset = committed.get(partition);
            if (offset == null) {
                consumer.seekToBeginning(List.of(partition));
                rewound.put(partition, -2L); // eos_app.py logs librdkafka's OFFSET_BEGINNING
            } else {
                consumer.seek(partition, offset.offset());
                rewound.put(partition, offset.offset());
            }
        }
        log("rewound to " + describe(rewound));
    }

    public static void main(String[] args) {
        if (args.length != 5) {
            System.err.println("usage: EosPipeline BOOTSTRAP INPUT_TOPIC OUTPUT_TOPIC GROUP_ID TRANSACTIONAL_ID");
            exit(2);
            return;
        }
        WATCHDOG.start();
        int code;
        try {
            EosPipeline pipeline = new EosPipeline(args[0], args[1], args[2], args[3], args[4]);
            Thread main = Thread.currentThread();
            // SIGTERM and SIGINT run this hook: the main thread finishes its transaction, closes the clients and
            // ends the JVM itself (exit 0); the hook waits for that (a JVM ended by a signal exits 143 otherwise).
            Runtime.getRuntime().addShutdownHook(new Thread(() -> {
                pipeline.stop();
                try {
                    main.join();
                } catch (InterruptedException interrupted) {
                    Thread.currentThread().interrupt();
                }
            }, "stop"));
            pipeline.run();
            code = 0;
        } catch (KafkaException | IllegalStateException error) {
            log("fatal: " + error);
            code = EXIT_FATAL;
        } catch (InterruptedException error) {
            log("fatal: interrupted: " + error);
            code = EXIT_FATAL;
        } catch (RuntimeException error) {
            log("fatal: unexpected " + error);
            error.printStackTrace(System.err);
            code = EXIT_FATAL;
        }
        exit(code);
    }
}
