import java.io.BufferedOutputStream;
import java.io.BufferedReader;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;

import org.apache.kafka.clients.producer.Callback;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * ReplicatedProducer BOOTSTRAP TOPIC PARTITIONS RATE
 *
 * The Java half of the replication fault tests' load (tests/support/replication_checker.py, JavaWorkload):
 * one idempotent acks=all kafka-clients producer sending RATE records per second, round-robin over
 * partitions 0..PARTITIONS-1 (each record to an explicit partition), keyed "p<partition>" with the
 * value "p<partition>-<seq>" (seq counts up per partition from 0), until a line "stop" arrives on stdin
 * or stdin closes; then flush() and close().
 *
 * stdout, one line per event, flushed at once:
 *   ACK <partition> <seq> <offset> <elapsed_ms_since_send>   (offset -1: acknowledged without one)
 *   FAIL <partition> <seq> <ExceptionSimpleName> <elapsed_ms_since_send>
 *   FATAL <ExceptionSimpleName>   the producer is unusable (fatal error): it is closed, a new one goes on
 *   DONE <sent>                   the end: every one of the <sent> records had its ACK or FAIL line
 * Every record gets one outcome line (a FAIL may be followed by an ACK if the client changes its mind;
 * the ACK then counts). Details of failures go to stderr. Exit 0 unless the program itself broke.
 */
public final class ReplicatedProducer {
    /** Errors after which a producer is replaced (kafka-clients raises them to the application). */
    static final Set<String> FATAL_ERRORS = Set.of(
            "ProducerFencedException", "OutOfOrderSequenceException", "InvalidProducerEpochException",
            "UnknownProducerIdException", "InvalidPidMappingException", "ClusterAuthorizationException",
            "TransactionalIdAuthorizationException", "UnsupportedVersionException", "AuthenticationException",
            "IllegalStateException");
    static final long CLOSE_SECONDS = 10;

    static final PrintStream OUT = new PrintStream(
            new BufferedOutputStream(new FileOutputStream(FileDescriptor.out), 1 << 16), false,
            StandardCharsets.UTF_8);
    static final Object OUT_LOCK = new Object();

    static volatile boolean stopping = false;
    /** The generation of the producer that hit a fatal error (-1: none yet). */
    static final AtomicInteger fatalGeneration = new AtomicInteger(-1);

    static void emit(String line) {
        synchronized (OUT_LOCK) {
            OUT.println(line);
            OUT.flush();
        }
    }

    /** The fatal error among the exception and its causes, or null. */
    static String fatalName(Throwable error) {
        for (Throwable e = error; e != null; e = e.getCause()) {
            if (FATAL_ERRORS.contains(e.getClass().getSimpleName())) {
                return e.getClass().getSimpleName();
            }
            if (e.getCause() == e) {
                break;
            }
        }
        return null;
    }

    /** Marks producer `generation` as ended by a fatal error (once; an older producer's late reports never). */
    static void noteFatal(int generation, String name) {
        int current;
        do {
            current = fatalGeneration.get();
            if (current >= generation) {
                return;
            }
        } while (!fatalGeneration.compareAndSet(current, generation));
        emit("FATAL " + name);
    }

    /** The outcome of one record: its first report is printed, and an acknowledgement after a failure. */
    static final class Outcome implements Callback {
        final int generation;
        final int partition;
        final long seq;
        final long sentNanos;
        boolean reported;
        boolean acknowledged;

        Outcome(int generation, int partition, long seq, long sentNanos) {
            this.generation = generation;
            this.partition = partition;
            this.seq = seq;
            this.sentNanos = sentNanos;
        }

        @Override
        public void onCompletion(RecordMetadata metadata, Exception exception) {
            long elapsedMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - sentNanos);
            if (exception == null) {
                long offset = metadata.hasOffset() ? metadata.offset() : -1;
                synchronized (this) {
                    if (acknowledged) {
                        return;
                    }
                    acknowledged = true;
                    reported = true;
                }
                emit("ACK " + metadata.partition() + " " + seq + " " + offset + " " + elapsedMs);
            } else {
                fail(exception, elapsedMs);
            }
        }

        void fail(Throwable exception, long elapsedMs) {
            synchronized (this) {
                if (reported) {
                    return;
                }
                reported = true;
            }
            String name = exception.getClass().getSimpleName();
            emit("FAIL " + partition + " " + seq + " " + name + " " + elapsedMs);
            System.err.println("p" + partition + "-" + seq + " failed: " + exception);
            String fatal = fatalName(exception);
            if (fatal != null) {
                noteFatal(generation, fatal);
            }
        }
    }

    static KafkaProducer<String, String> newProducer(String bootstrap) {
        Properties properties = new Properties();
        properties.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        properties.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true);
        properties.put(ProducerConfig.ACKS_CONFIG, "all");
        properties.put(ProducerConfig.LINGER_MS_CONFIG, 5);
        properties.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, 120_000);
        properties.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, 10_000);
        properties.put(ProducerConfig.RETRY_BACKOFF_MAX_MS_CONFIG, 1_000);
        properties.put(ProducerConfig.RECONNECT_BACKOFF_MAX_MS_CONFIG, 1_000);
        properties.put(ProducerConfig.METADATA_MAX_AGE_CONFIG, 5_000);
        properties.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        properties.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        return new KafkaProducer<>(properties);
    }

    static void close(KafkaProducer<String, String> producer) {
        try {
            // Records still queued fail (their callbacks report them) if they are not done by then.
            producer.close(Duration.ofSeconds(CLOSE_SECONDS));
        } catch (RuntimeException error) {
            System.err.println("close: " + error);
        }
    }

    public static void main(String[] args) throws IOException {
        String bootstrap = args[0];
        String topic = args[1];
        int partitions = Integer.parseInt(args[2]);
        double rate = Double.parseDouble(args[3]);

        Thread stdin = new Thread(() -> {
            try (BufferedReader reader = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8))) {
                String line;
                while ((line = reader.readLine()) != null && !line.strip().equals("stop")) {
                    // anything else is ignored
                }
            } catch (IOException error) {
                System.err.println("stdin: " + error);
            }
            stopping = true;
        }, "stdin");
        stdin.setDaemon(true);
        stdin.start();

        long[] nextSeq = new long[partitions];
        long sent = 0;
        int generation = 0;
        KafkaProducer<String, String> producer = newProducer(bootstrap);
        long startNanos = System.nanoTime();
        long index = 0;
        while (!stopping) {
            if (fatalGeneration.get() == generation) {
                // A fatal error ends a producer: close it (what it still holds fails) and go on with a new one,
                // keeping to the rate from now on rather than catching up.
                close(producer);
                generation++;
                producer = newProducer(bootstrap);
                startNanos = System.nanoTime() - (long) (index * 1e9 / rate);
                continue;
            }
            long due = startNanos + (long) (index * 1e9 / rate);
            long now = System.nanoTime();
            if (now < due) {
                LockSupport.parkNanos(Math.min(due - now, TimeUnit.MILLISECONDS.toNanos(50)));
                continue;
            }
            int partition = (int) (index % partitions);
            long seq = nextSeq[partition]++;
            index++;
            sent++;
            Outcome outcome = new Outcome(generation, partition, seq, System.nanoTime());
            try {
                producer.send(new ProducerRecord<>(topic, partition, "p" + partition, "p" + partition + "-" + seq),
                        outcome);
            } catch (RuntimeException error) {
                // Thrown instead of reported: the producer is in no state to send (its callback may still run;
                // the first report counts).
                outcome.fail(error, TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - outcome.sentNanos));
                String fatal = fatalName(error);
                noteFatal(generation, fatal != null ? fatal : error.getClass().getSimpleName());
            }
        }
        try {
            producer.flush();
        } catch (RuntimeException error) {
            System.err.println("flush: " + error);
        }
        close(producer);
        emit("DONE " + sent);
    }
}
