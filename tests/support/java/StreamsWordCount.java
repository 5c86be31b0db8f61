import java.time.Duration;
import java.time.LocalTime;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.state.Stores;

/**
 * StreamsWordCount BOOTSTRAP APPLICATION_ID INPUT_TOPIC OUTPUT_TOPIC STATE_DIR REPLICATION_FACTOR
 *
 * A Kafka Streams word count with processing.guarantee=exactly_once_v2. Input records carry one word as
 * their value (the key is not the word); the topology re-keys them by word, which makes Streams write and
 * read a repartition topic (APPLICATION_ID-by-word-repartition), counts them in a persistent (RocksDB) store
 * backed by a changelog topic (APPLICATION_ID-counts-changelog), and writes every new count to OUTPUT_TOPIC
 * as key = word, value = the count in decimal. The record cache is off (statestore.cache.max.bytes=0), so
 * every input record yields exactly one output record: with exactly-once the counts of a word in the output
 * are 1, 2, 3, ... without a gap or a repeat. Internal topics get REPLICATION_FACTOR replicas.
 *
 * Prints "state NEW from OLD at TIME" on every state change (REBALANCING, RUNNING, ...) and the stack trace
 * of any exception that ends a stream thread (which is then replaced). On SIGTERM it closes the Streams
 * client (at most CLOSE_TIMEOUT) and exits 0 when that completed and the client ended NOT_RUNNING, else 1.
 * Streams' own logging goes to slf4j-nop (conformance/java/pom.xml); to read it, put an SLF4J 1.7 backend
 * such as slf4j-simple-1.7.36.jar on the classpath before .tools/java/libs.
 */
public final class StreamsWordCount {
    static final Duration CLOSE_TIMEOUT = Duration.ofSeconds(30);
    static final int COMMIT_INTERVAL_MS = 100;
    // A killed instance leaves the group after this; its successor's rebalance waits that long. 6 s is the
    // smallest session Apache Kafka's brokers accept by default (group.min.session.timeout.ms).
    static final int SESSION_TIMEOUT_MS = 6000;
    static final int HEARTBEAT_INTERVAL_MS = 1500;

    public static void main(String[] args) throws InterruptedException {
        String bootstrap = args[0];
        String applicationId = args[1];
        String inputTopic = args[2];
        String outputTopic = args[3];
        String stateDir = args[4];
        int replicationFactor = Integer.parseInt(args[5]);

        Properties properties = new Properties();
        properties.put(StreamsConfig.APPLICATION_ID_CONFIG, applicationId);
        properties.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        properties.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.EXACTLY_ONCE_V2);
        properties.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, COMMIT_INTERVAL_MS);
        properties.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, 0);
        properties.put(StreamsConfig.STATE_DIR_CONFIG, stateDir);
        properties.put(StreamsConfig.REPLICATION_FACTOR_CONFIG, replicationFactor);
        properties.put(StreamsConfig.consumerPrefix(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG), SESSION_TIMEOUT_MS);
        properties.put(StreamsConfig.consumerPrefix(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG),
                HEARTBEAT_INTERVAL_MS);
        // Records go to the broker as they are produced rather than in one batch just before the commit, so the
        // application mostly has a transaction open whose records the broker already holds: test_kafka_streams.py
        // catches it in that state (frozen with SIGSTOP) for its SIGKILL, and the broker has to abort them.
        properties.put(StreamsConfig.producerPrefix(ProducerConfig.LINGER_MS_CONFIG), 0);

        StreamsBuilder builder = new StreamsBuilder();
        builder.stream(inputTopic, Consumed.with(Serdes.String(), Serdes.String()))
                .groupBy((key, word) -> word, Grouped.with("by-word", Serdes.String(), Serdes.String()))
                .count(Materialized.<String, Long>as(Stores.persistentKeyValueStore("counts"))
                        .withKeySerde(Serdes.String())
                        .withValueSerde(Serdes.Long()))
                .toStream()
                .mapValues(count -> Long.toString(count))
                .to(outputTopic, Produced.with(Serdes.String(), Serdes.String()));

        KafkaStreams streams = new KafkaStreams(builder.build(), properties);
        streams.setStateListener((newState, oldState) -> {
            System.out.println("state " + newState + " from " + oldState + " at " + LocalTime.now());
            System.out.flush();
        });
        streams.setUncaughtExceptionHandler(exception -> {
            System.out.println("stream thread failed at " + LocalTime.now() + ", replacing it:");
            exception.printStackTrace(System.out);
            System.out.flush();
            return StreamThreadExceptionResponse.REPLACE_THREAD;
        });

        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            boolean closed = streams.close(CLOSE_TIMEOUT);
            KafkaStreams.State state = streams.state();
            System.out.println("closed " + closed + " state " + state);
            System.out.flush();
            stopped.countDown();
            // A JVM ended by SIGTERM exits 143 whatever happened; say instead whether the close was clean.
            Runtime.getRuntime().halt(closed && state == KafkaStreams.State.NOT_RUNNING ? 0 : 1);
        }, "streams-close"));

        streams.start();
        stopped.await();
    }
}
