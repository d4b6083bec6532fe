package dev.timevault.compat;

import io.debezium.embedded.Connect;
import io.debezium.engine.ChangeEvent;
import io.debezium.engine.DebeziumEngine;

import java.io.BufferedWriter;
import java.io.IOException;
import java.io.OutputStreamWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.HashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.connect.data.Field;
import org.apache.kafka.connect.data.Struct;
import org.apache.kafka.connect.header.Header;
import org.apache.kafka.connect.json.JsonConverter;
import org.apache.kafka.connect.source.SourceRecord;
import org.apache.kafka.connect.storage.SimpleHeaderConverter;

/**
 * Runs the real Debezium Postgres connector in the embedded engine and writes
 * every record it emits as one JSON line
 * {"topic":..., "key": KEY-JSON|null, "value": VALUE-JSON|null[, "headers": [[name, value], ...]]}
 * where KEY-JSON and VALUE-JSON are the bytes Kafka Connect's JsonConverter
 * (schemas.enable as given) would put on Kafka, and headers are what Connect's
 * default SimpleHeaderConverter would write.
 *
 * With --kafka-bootstrap the records go to Kafka instead, as Kafka Connect's
 * worker would put them there: a KafkaProducer (acks=all, idempotent, the
 * same linger and compression as timevault capture's defaults) sends each
 * record's JsonConverter bytes and headers to its topic, and the producer is
 * flushed (every record acknowledged by the broker) at most once per offset
 * flush interval, before Debezium commits its offsets, as Connect's worker
 * commits only acknowledged offsets. With --expect-records N it logs "compat-runner: reached N" (and
 * the wall-clock milliseconds of its first and Nth change record, the Nth
 * acknowledged) once N change records (data topics, tombstones not counted)
 * went out: bench/capture.sh times Debezium with it.
 *
 * Exits 0 once no record (heartbeats aside) arrived for the idle timeout after at
 * least one did, or when the stop file appears; exits 1 when the engine fails,
 * 2 on bad arguments, 3 when --max-runtime passes first; SIGTERM stops it the
 * same way (exit 143).
 *
 * Progress lines on stderr, prefixed "compat-runner:" (the driver waits for
 * "compat-runner: streaming", printed at the first heartbeat after the snapshot).
 */
public final class DebeziumRunner {

    private static final Map<String, String> DEFAULTS = new TreeMap<>();
    private static final long OFFSET_FLUSH_MS = 1000;

    static {
        DEFAULTS.put("host", "127.0.0.1");
        DEFAULTS.put("port", "5432");
        DEFAULTS.put("user", "postgres");
        DEFAULTS.put("password", "");
        DEFAULTS.put("dbname", null);
        DEFAULTS.put("slot", "debezium_compat");
        DEFAULTS.put("publication", "compat_pub");
        DEFAULTS.put("prefix", "compat");
        DEFAULTS.put("snapshot-mode", "initial");
        DEFAULTS.put("schemas-enable", "false");
        DEFAULTS.put("out", "");
        DEFAULTS.put("kafka-bootstrap", "");
        DEFAULTS.put("kafka-linger-ms", "5");
        DEFAULTS.put("kafka-compression", "lz4");
        DEFAULTS.put("expect-records", "0");
        DEFAULTS.put("idle-timeout-s", "20");
        DEFAULTS.put("stop-file", "");
        DEFAULTS.put("heartbeat-ms", "1000");
        DEFAULTS.put("max-runtime-s", "0");
        DEFAULTS.put("offset-file", "");
        DEFAULTS.put("publication-autocreate", "disabled");
        DEFAULTS.put("table-exclude-list", "");
    }

    private static void usage(String error) {
        System.err.println("compat-runner: " + error);
        System.err.println("usage: java -cp 'lib/*:compat-runner.jar' dev.timevault.compat.DebeziumRunner --dbname DB --out FILE [--KEY VALUE ...]");
        System.err.println("keys (default):");
        DEFAULTS.forEach((k, v) -> System.err.println("  --" + k + " (" + (v == null ? "required" : v) + ")"));
        System.exit(2);
    }

    private static Map<String, String> parse(String[] args) {
        Map<String, String> opts = new HashMap<>(DEFAULTS);
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (a.equals("-h") || a.equals("--help")) {
                usage("help");
            }
            if (!a.startsWith("--")) {
                usage("unexpected argument '" + a + "'");
            }
            String k = a.substring(2);
            String v;
            int eq = k.indexOf('=');
            if (eq >= 0) {
                v = k.substring(eq + 1);
                k = k.substring(0, eq);
            }
            else {
                if (i + 1 >= args.length) {
                    usage("--" + k + " needs a value");
                }
                v = args[++i];
            }
            if (!DEFAULTS.containsKey(k)) {
                usage("unknown option --" + k);
            }
            opts.put(k, v);
        }
        for (Map.Entry<String, String> e : opts.entrySet()) {
            if (e.getValue() == null) {
                usage("--" + e.getKey() + " is required");
            }
        }
        if (opts.get("out").isEmpty() == opts.get("kafka-bootstrap").isEmpty()) {
            usage("give exactly one of --out FILE and --kafka-bootstrap HOST:PORT");
        }
        String se = opts.get("schemas-enable").toLowerCase(Locale.ROOT);
        if (!se.equals("true") && !se.equals("false")) {
            usage("--schemas-enable must be true or false");
        }
        return opts;
    }

    private static void log(String msg) {
        System.err.println("compat-runner: " + msg);
        System.err.flush();
    }

    /** A JSON string literal. */
    private static String quote(String s) {
        StringBuilder b = new StringBuilder(s.length() + 2).append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> b.append("\\\"");
                case '\\' -> b.append("\\\\");
                case '\n' -> b.append("\\n");
                case '\r' -> b.append("\\r");
                case '\t' -> b.append("\\t");
                default -> {
                    if (c < 0x20) {
                        b.append(String.format("\\u%04x", (int) c));
                    }
                    else {
                        b.append(c);
                    }
                }
            }
        }
        return b.append('"').toString();
    }

    /** source.snapshot of a change event value, or null for other records. */
    private static String snapshotMarker(SourceRecord r) {
        if (!(r.value() instanceof Struct value) || value.schema().field("source") == null) {
            return null;
        }
        Object src = value.get("source");
        if (!(src instanceof Struct source)) {
            return null;
        }
        Field f = source.schema().field("snapshot");
        if (f == null) {
            return null;
        }
        Object s = source.get(f);
        return s == null ? null : s.toString();
    }

    public static void main(String[] args) throws Exception {
        Map<String, String> o = parse(args);
        boolean schemas = Boolean.parseBoolean(o.get("schemas-enable"));
        long idleMs = Long.parseLong(o.get("idle-timeout-s")) * 1000L;
        long maxRuntimeMs = Long.parseLong(o.get("max-runtime-s")) * 1000L;
        String prefix = o.get("prefix");
        String heartbeatTopic = "__debezium-heartbeat." + prefix;
        boolean toKafka = !o.get("kafka-bootstrap").isEmpty();
        long expectRecords = Long.parseLong(o.get("expect-records"));
        String transactionTopic = prefix + ".transaction";
        Path out = toKafka ? null : Paths.get(o.get("out"));
        Path stopFile = o.get("stop-file").isEmpty() ? null : Paths.get(o.get("stop-file"));

        Properties p = new Properties();
        p.setProperty("name", "timevault-compat-" + o.get("slot"));
        p.setProperty("connector.class", "io.debezium.connector.postgresql.PostgresConnector");
        if (o.get("offset-file").isEmpty()) {
            p.setProperty("offset.storage", "org.apache.kafka.connect.storage.MemoryOffsetBackingStore");
        }
        else {
            p.setProperty("offset.storage", "org.apache.kafka.connect.storage.FileOffsetBackingStore");
            p.setProperty("offset.storage.file.filename", o.get("offset-file"));
        }
        p.setProperty("offset.flush.interval.ms", Long.toString(OFFSET_FLUSH_MS));
        p.setProperty("database.hostname", o.get("host"));
        p.setProperty("database.port", o.get("port"));
        p.setProperty("database.user", o.get("user"));
        p.setProperty("database.password", o.get("password"));
        p.setProperty("database.dbname", o.get("dbname"));
        p.setProperty("topic.prefix", prefix);
        p.setProperty("plugin.name", "pgoutput");
        p.setProperty("slot.name", o.get("slot"));
        p.setProperty("slot.drop.on.stop", "true");
        p.setProperty("publication.name", o.get("publication"));
        p.setProperty("publication.autocreate.mode", o.get("publication-autocreate"));
        p.setProperty("snapshot.mode", o.get("snapshot-mode"));
        if (!o.get("table-exclude-list").isEmpty()) {
            p.setProperty("table.exclude.list", o.get("table-exclude-list"));
        }
        p.setProperty("provide.transaction.metadata", "true");
        p.setProperty("heartbeat.interval.ms", o.get("heartbeat-ms"));
        // Debezium skips truncates by default; timevault must see them ('t' events).
        p.setProperty("skipped.operations", "none");
        p.setProperty("errors.max.retries", "0");

        JsonConverter keyConverter = new JsonConverter();
        keyConverter.configure(Map.of("schemas.enable", schemas), true);
        JsonConverter valueConverter = new JsonConverter();
        valueConverter.configure(Map.of("schemas.enable", schemas), false);
        SimpleHeaderConverter headerConverter = new SimpleHeaderConverter();
        headerConverter.configure(Map.of());

        BufferedWriter writer = null;
        KafkaProducer<byte[], byte[]> producer = null;
        if (toKafka) {
            Properties kp = new Properties();
            kp.setProperty(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, o.get("kafka-bootstrap"));
            kp.setProperty(ProducerConfig.ACKS_CONFIG, "all");
            kp.setProperty(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
            kp.setProperty(ProducerConfig.LINGER_MS_CONFIG, o.get("kafka-linger-ms"));
            kp.setProperty(ProducerConfig.COMPRESSION_TYPE_CONFIG, o.get("kafka-compression"));
            producer = new KafkaProducer<>(kp, new ByteArraySerializer(), new ByteArraySerializer());
        }
        else {
            Files.createDirectories(out.toAbsolutePath().getParent());
            writer = new BufferedWriter(new OutputStreamWriter(Files.newOutputStream(out), StandardCharsets.UTF_8));
        }
        final BufferedWriter fileWriter = writer;
        final KafkaProducer<byte[], byte[]> kafkaProducer = producer;
        AtomicLong changeRecords = new AtomicLong();
        AtomicLong firstChangeAtMs = new AtomicLong(0);
        AtomicBoolean reached = new AtomicBoolean(false);
        AtomicLong lastFlushMs = new AtomicLong(System.currentTimeMillis());

        AtomicLong records = new AtomicLong();
        AtomicLong heartbeats = new AtomicLong();
        AtomicLong lastRecordAt = new AtomicLong(0);
        AtomicBoolean snapshotDone = new AtomicBoolean(o.get("snapshot-mode").equals("no_data") || o.get("snapshot-mode").equals("never"));
        AtomicBoolean streaming = new AtomicBoolean(false);
        Map<String, Long> perTopic = new TreeMap<>();
        AtomicReference<String> failure = new AtomicReference<>();
        AtomicBoolean completed = new AtomicBoolean(false);
        AtomicBoolean stopping = new AtomicBoolean(false);  // set when the runner starts stopping the engine

        DebeziumEngine.ChangeConsumer<ChangeEvent<SourceRecord, SourceRecord>> consumer = (batch, committer) -> {
            try {
                for (ChangeEvent<SourceRecord, SourceRecord> ev : batch) {
                    SourceRecord r = ev.value();
                    String topic = r.topic();
                    byte[] key = keyConverter.fromConnectData(topic, r.keySchema(), r.key());
                    byte[] value = valueConverter.fromConnectData(topic, r.valueSchema(), r.value());
                    if (kafkaProducer != null) {
                        send(kafkaProducer, headerConverter, r, key, value);
                        if (value != null && !topic.equals(heartbeatTopic) && !topic.equals(transactionTopic)
                                && changeRecords.incrementAndGet() == 1) {
                            firstChangeAtMs.set(System.currentTimeMillis());
                        }
                    }
                    else {
                        writeLine(fileWriter, headerConverter, r, key, value);
                    }
                    synchronized (perTopic) {
                        perTopic.merge(topic, 1L, Long::sum);
                    }
                    if (topic.equals(heartbeatTopic)) {
                        long n = heartbeats.incrementAndGet();
                        if (snapshotDone.get() && streaming.compareAndSet(false, true)) {
                            log("streaming (first heartbeat after the snapshot, records so far " + records.get() + ")");
                        }
                        else if (n == 1) {
                            log("first heartbeat");
                        }
                    }
                    else {
                        records.incrementAndGet();
                        lastRecordAt.set(System.nanoTime());
                        if ("last".equals(snapshotMarker(r)) && snapshotDone.compareAndSet(false, true)) {
                            log("snapshot done (" + records.get() + " records)");
                        }
                    }
                    committer.markProcessed(ev);
                }
                if (kafkaProducer != null) {
                    // As Kafka Connect's worker: offsets move (every
                    // offset.flush.interval.ms) only over acknowledged records.
                    long n = changeRecords.get();
                    boolean reachedNow = expectRecords > 0 && n >= expectRecords && !reached.get();
                    long nowMs = System.currentTimeMillis();
                    if (reachedNow || nowMs - lastFlushMs.get() >= OFFSET_FLUSH_MS) {
                        kafkaProducer.flush();
                        lastFlushMs.set(nowMs);
                    }
                    if (reachedNow && reached.compareAndSet(false, true)) {
                        log("reached " + expectRecords + " change records: first_ms=" + firstChangeAtMs.get()
                                + " last_ms=" + System.currentTimeMillis());
                    }
                }
                else {
                    fileWriter.flush();
                }
                committer.markBatchFinished();
            }
            catch (IOException e) {
                failure.compareAndSet(null, "writing " + out + ": " + e);
                throw new RuntimeException(e);
            }
        };

        DebeziumEngine<ChangeEvent<SourceRecord, SourceRecord>> engine = DebeziumEngine.create(Connect.class)
                .using(p)
                .notifying(consumer)
                .using((success, message, error) -> {
                    completed.set(true);
                    // Debezium 3's async engine can end a poll already under
                    // way with a RejectedExecutionException when close() shuts
                    // its pool down (seen once in CI after every event was
                    // written): a shutdown race of the engine, not a capture
                    // failure; the comparison still checks every event.
                    if (!success && stopping.get() && error instanceof java.util.concurrent.RejectedExecutionException) {
                        log("engine finished during our stop with " + error + " (ignored: a shutdown race)");
                        return;
                    }
                    if (!success) {
                        failure.compareAndSet(null, message + (error != null ? ": " + error : ""));
                    }
                    log("engine finished: success=" + success + " " + (message == null ? "" : message));
                    if (error != null) {
                        error.printStackTrace(System.err);
                    }
                })
                .build();

        // SIGTERM: stop the engine as the stop file would (Debezium then drops its slot).
        AtomicBoolean terminated = new AtomicBoolean(false);
        CountDownLatch finished = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            terminated.set(true);
            try {
                finished.await(60, TimeUnit.SECONDS);
            }
            catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }));

        ExecutorService executor = Executors.newSingleThreadExecutor();
        long start = System.nanoTime();
        log("starting Debezium (slot " + o.get("slot") + ", publication " + o.get("publication") + ", prefix " + prefix
                + ", snapshot.mode " + o.get("snapshot-mode") + ", schemas.enable " + schemas + ") -> "
                + (toKafka ? "Kafka " + o.get("kafka-bootstrap") : out));
        executor.execute(engine);

        int exit = 0;
        String reason;
        while (true) {
            Thread.sleep(200);
            long now = System.nanoTime();
            if (terminated.get()) {
                reason = "terminated by a signal";
                exit = 143;
                break;
            }
            if (completed.get()) {
                reason = "engine stopped by itself";
                exit = 1;
                break;
            }
            if (stopFile != null && Files.exists(stopFile)) {
                reason = "stop file " + stopFile + " appeared";
                break;
            }
            long last = lastRecordAt.get();
            if (last != 0 && idleMs > 0 && now - last >= idleMs * 1_000_000L) {
                reason = "idle for " + idleMs / 1000 + " s";
                break;
            }
            if (maxRuntimeMs > 0 && now - start >= maxRuntimeMs * 1_000_000L) {
                reason = "max runtime " + maxRuntimeMs / 1000 + " s passed";
                exit = 3;
                break;
            }
        }
        log("stopping: " + reason);
        stopping.set(true);
        if (!completed.get()) {
            // close() waits for the engine to stop; do it off the main thread so
            // a stuck engine cannot hang the runner.
            Thread closer = new Thread(() -> {
                try {
                    engine.close();
                }
                catch (IOException | RuntimeException e) {
                    log("closing the engine: " + e);
                }
            }, "compat-runner-close");
            closer.setDaemon(true);
            closer.start();
            closer.join(60_000);
            if (closer.isAlive()) {
                log("engine did not stop within 60 s");
                exit = exit == 0 ? 1 : exit;
            }
        }
        executor.shutdownNow();
        if (!executor.awaitTermination(10, TimeUnit.SECONDS)) {
            log("engine thread did not end within 10 s");
        }
        if (fileWriter != null) {
            synchronized (fileWriter) {
                fileWriter.flush();
                fileWriter.close();
            }
        }
        if (kafkaProducer != null) {
            kafkaProducer.close();
        }
        if (failure.get() != null) {
            log("FAILED: " + failure.get());
            exit = exit == 0 ? 1 : exit;
        }
        synchronized (perTopic) {
            perTopic.forEach((t, n) -> log("  " + t + ": " + n));
        }
        log("done: records=" + records.get() + " heartbeats=" + heartbeats.get() + " exit=" + exit);
        finished.countDown();
        System.exit(exit);
    }

    /** One record as Kafka Connect's worker writes it: converted key, value and headers. */
    private static void send(KafkaProducer<byte[], byte[]> producer, SimpleHeaderConverter headerConverter,
                             SourceRecord r, byte[] key, byte[] value) {
        RecordHeaders headers = new RecordHeaders();
        if (r.headers() != null) {
            for (Header h : r.headers()) {
                headers.add(h.key(), headerConverter.fromConnectHeader(r.topic(), h.key(), h.schema(), h.value()));
            }
        }
        producer.send(new ProducerRecord<>(r.topic(), r.kafkaPartition(), key, value, headers), (md, e) -> {
            if (e != null) {
                log("FAILED: delivering to " + r.topic() + ": " + e);
                System.exit(1);
            }
        });
    }

    /** One record as a JSON line (the compat comparison's input). */
    private static void writeLine(BufferedWriter writer, SimpleHeaderConverter headerConverter, SourceRecord r,
                                  byte[] key, byte[] value) throws IOException {
        String topic = r.topic();
        StringBuilder line = new StringBuilder(256);
        line.append("{\"topic\":").append(quote(topic));
        line.append(",\"key\":").append(key == null ? "null" : new String(key, StandardCharsets.UTF_8));
        line.append(",\"value\":").append(value == null ? "null" : new String(value, StandardCharsets.UTF_8));
        if (r.headers() != null && !r.headers().isEmpty()) {
            line.append(",\"headers\":[");
            boolean first = true;
            for (Header h : r.headers()) {
                byte[] hv = headerConverter.fromConnectHeader(topic, h.key(), h.schema(), h.value());
                line.append(first ? "" : ",").append('[').append(quote(h.key())).append(',')
                        .append(hv == null ? "null" : quote(new String(hv, StandardCharsets.UTF_8))).append(']');
                first = false;
            }
            line.append(']');
        }
        line.append("}\n");
        writer.write(line.toString());
    }

    private DebeziumRunner() {
    }
}
