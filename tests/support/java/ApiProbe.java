import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.FeatureMetadata;
import org.apache.kafka.clients.admin.FinalizedVersionRange;
import org.apache.kafka.clients.admin.ListConfigResourcesOptions;
import org.apache.kafka.clients.admin.SupportedVersionRange;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartitionReplica;
import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.message.AddRaftVoterRequestData;
import org.apache.kafka.common.message.AlterReplicaLogDirsRequestData;
import org.apache.kafka.common.message.AlterReplicaLogDirsResponseData;
import org.apache.kafka.common.message.AlterShareGroupOffsetsRequestData;
import org.apache.kafka.common.message.AlterShareGroupOffsetsResponseData;
import org.apache.kafka.common.message.ApiVersionsResponseData;
import org.apache.kafka.common.message.CreateDelegationTokenRequestData;
import org.apache.kafka.common.message.CreateDelegationTokenResponseData;
import org.apache.kafka.common.message.DeleteShareGroupOffsetsRequestData;
import org.apache.kafka.common.message.DeleteShareGroupOffsetsResponseData;
import org.apache.kafka.common.message.DeleteShareGroupStateRequestData;
import org.apache.kafka.common.message.DeleteShareGroupStateResponseData;
import org.apache.kafka.common.message.DescribeDelegationTokenResponseData;
import org.apache.kafka.common.message.DescribeLogDirsRequestData;
import org.apache.kafka.common.message.DescribeLogDirsResponseData;
import org.apache.kafka.common.message.DescribeQuorumResponseData;
import org.apache.kafka.common.message.DescribeShareGroupOffsetsRequestData;
import org.apache.kafka.common.message.DescribeShareGroupOffsetsResponseData;
import org.apache.kafka.common.message.ExpireDelegationTokenRequestData;
import org.apache.kafka.common.message.InitializeShareGroupStateRequestData;
import org.apache.kafka.common.message.InitializeShareGroupStateResponseData;
import org.apache.kafka.common.message.ListConfigResourcesRequestData;
import org.apache.kafka.common.message.ListConfigResourcesResponseData;
import org.apache.kafka.common.message.MetadataResponseData;
import org.apache.kafka.common.message.ReadShareGroupStateRequestData;
import org.apache.kafka.common.message.ReadShareGroupStateResponseData;
import org.apache.kafka.common.message.ReadShareGroupStateSummaryRequestData;
import org.apache.kafka.common.message.ReadShareGroupStateSummaryResponseData;
import org.apache.kafka.common.message.RemoveRaftVoterRequestData;
import org.apache.kafka.common.message.RenewDelegationTokenRequestData;
import org.apache.kafka.common.message.ShareAcknowledgeRequestData;
import org.apache.kafka.common.message.ShareAcknowledgeResponseData;
import org.apache.kafka.common.message.ShareFetchRequestData;
import org.apache.kafka.common.message.ShareFetchResponseData;
import org.apache.kafka.common.message.ShareGroupDescribeRequestData;
import org.apache.kafka.common.message.ShareGroupDescribeResponseData;
import org.apache.kafka.common.message.ShareGroupHeartbeatRequestData;
import org.apache.kafka.common.message.ShareGroupHeartbeatResponseData;
import org.apache.kafka.common.message.StreamsGroupDescribeRequestData;
import org.apache.kafka.common.message.StreamsGroupDescribeResponseData;
import org.apache.kafka.common.message.StreamsGroupHeartbeatRequestData;
import org.apache.kafka.common.message.StreamsGroupHeartbeatResponseData;
import org.apache.kafka.common.message.UnregisterBrokerRequestData;
import org.apache.kafka.common.message.UpdateFeaturesRequestData;
import org.apache.kafka.common.message.UpdateFeaturesResponseData;
import org.apache.kafka.common.message.WriteShareGroupStateRequestData;
import org.apache.kafka.common.message.WriteShareGroupStateResponseData;
import org.apache.kafka.common.protocol.ApiKeys;
import org.apache.kafka.common.protocol.Errors;
import org.apache.kafka.common.requests.AbstractRequest;
import org.apache.kafka.common.requests.AbstractResponse;
import org.apache.kafka.common.requests.AddRaftVoterRequest;
import org.apache.kafka.common.requests.AddRaftVoterResponse;
import org.apache.kafka.common.requests.AlterReplicaLogDirsRequest;
import org.apache.kafka.common.requests.AlterReplicaLogDirsResponse;
import org.apache.kafka.common.requests.AlterShareGroupOffsetsRequest;
import org.apache.kafka.common.requests.AlterShareGroupOffsetsResponse;
import org.apache.kafka.common.requests.ApiVersionsRequest;
import org.apache.kafka.common.requests.ApiVersionsResponse;
import org.apache.kafka.common.requests.CreateDelegationTokenRequest;
import org.apache.kafka.common.requests.CreateDelegationTokenResponse;
import org.apache.kafka.common.requests.DeleteShareGroupOffsetsRequest;
import org.apache.kafka.common.requests.DeleteShareGroupOffsetsResponse;
import org.apache.kafka.common.requests.DeleteShareGroupStateRequest;
import org.apache.kafka.common.requests.DeleteShareGroupStateResponse;
import org.apache.kafka.common.requests.DescribeDelegationTokenRequest;
import org.apache.kafka.common.requests.DescribeDelegationTokenResponse;
import org.apache.kafka.common.requests.DescribeLogDirsRequest;
import org.apache.kafka.common.requests.DescribeLogDirsResponse;
import org.apache.kafka.common.requests.DescribeQuorumRequest;
import org.apache.kafka.common.requests.DescribeQuorumResponse;
import org.apache.kafka.common.requests.DescribeShareGroupOffsetsRequest;
import org.apache.kafka.common.requests.DescribeShareGroupOffsetsResponse;
import org.apache.kafka.common.requests.ExpireDelegationTokenRequest;
import org.apache.kafka.common.requests.ExpireDelegationTokenResponse;
import org.apache.kafka.common.requests.InitializeShareGroupStateRequest;
import org.apache.kafka.common.requests.InitializeShareGroupStateResponse;
import org.apache.kafka.common.requests.ListConfigResourcesRequest;
import org.apache.kafka.common.requests.ListConfigResourcesResponse;
import org.apache.kafka.common.requests.MetadataRequest;
import org.apache.kafka.common.requests.MetadataResponse;
import org.apache.kafka.common.requests.ReadShareGroupStateRequest;
import org.apache.kafka.common.requests.ReadShareGroupStateResponse;
import org.apache.kafka.common.requests.ReadShareGroupStateSummaryRequest;
import org.apache.kafka.common.requests.ReadShareGroupStateSummaryResponse;
import org.apache.kafka.common.requests.RemoveRaftVoterRequest;
import org.apache.kafka.common.requests.RemoveRaftVoterResponse;
import org.apache.kafka.common.requests.RenewDelegationTokenRequest;
import org.apache.kafka.common.requests.RenewDelegationTokenResponse;
import org.apache.kafka.common.requests.RequestHeader;
import org.apache.kafka.common.requests.ShareAcknowledgeRequest;
import org.apache.kafka.common.requests.ShareAcknowledgeResponse;
import org.apache.kafka.common.requests.ShareFetchRequest;
import org.apache.kafka.common.requests.ShareFetchResponse;
import org.apache.kafka.common.requests.ShareGroupDescribeRequest;
import org.apache.kafka.common.requests.ShareGroupDescribeResponse;
import org.apache.kafka.common.requests.ShareGroupHeartbeatRequest;
import org.apache.kafka.common.requests.ShareGroupHeartbeatResponse;
import org.apache.kafka.common.requests.StreamsGroupDescribeRequest;
import org.apache.kafka.common.requests.StreamsGroupDescribeResponse;
import org.apache.kafka.common.requests.StreamsGroupHeartbeatRequest;
import org.apache.kafka.common.requests.StreamsGroupHeartbeatResponse;
import org.apache.kafka.common.requests.UnregisterBrokerRequest;
import org.apache.kafka.common.requests.UnregisterBrokerResponse;
import org.apache.kafka.common.requests.UpdateFeaturesRequest;
import org.apache.kafka.common.requests.UpdateFeaturesResponse;
import org.apache.kafka.common.requests.WriteShareGroupStateRequest;
import org.apache.kafka.common.requests.WriteShareGroupStateResponse;
import org.apache.kafka.common.security.auth.KafkaPrincipal;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * ApiProbe BOOTSTRAP TOPIC SHARE_GROUP STREAMS_GROUP
 * ApiProbe --admin BOOTSTRAP TOPIC [CONFIGURED_GROUP CLIENT_METRICS]
 *
 * The first form opens a plain socket to the broker and sends ApiVersions; learns the broker's id, the cluster
 * id, TOPIC's id and log dir (Metadata, DescribeLogDirs) and the quorum's voter (DescribeQuorum); then sends
 * small valid requests of the APIs in PROBED_APIS, built with Kafka's own message classes and parsed with its
 * response classes, and prints one line per request:
 *
 *   API_KEY VERSION CASE -> OUTCOME
 *
 * OUTCOME lists the response's top-level error and its per-item errors in order, as NAME(code) followed by the
 * error message in quotes where the response has one (and the few fields the case is about); or
 * "not advertised" when the broker's ApiVersions lacks the API (VERSION is then the client's), or
 * "connection closed" when the broker closed the connection instead of answering ("no answer within N ms",
 * "unparseable answer: ..." likewise). A case is sent at the highest version both the broker advertises and the
 * client knows, and again at the lowest when that differs (for cases whose fields exist there). Lines
 * "context KEY=VALUE" say what the probe learnt from the broker, for the caller to put the broker's own ids,
 * names and dirs in what it expects.
 *
 * TOPIC has one partition (and records); SHARE_GROUP and STREAMS_GROUP do not exist yet. The share APIs produce
 * records to TOPIC with a KafkaProducer; a streams group member joins STREAMS_GROUP with a topology reading TOPIC.
 * The last request unregisters the broker itself, after which Metadata is shown.
 *
 * The second form first sends the ListConfigResources cases as the first form does, labelled "unconfigured-CASE"
 * (with "context unconfigured-topics=..."), and lists the config resources with the Admin API, while the broker
 * has no group config and no client metrics subscription; then, given CONFIGURED_GROUP and CLIENT_METRICS, it
 * sets a dynamic config on CONFIGURED_GROUP and creates the client metrics subscription CLIENT_METRICS; then it
 * runs the other Admin API calls (the config resources are listed again only when it configured them). It
 * prints "admin.KEY=VALUE" lines ("error:ExceptionClass: message" for a failed call) besides the request lines.
 *
 * Exit 0 when the program ran to the end, whatever the outcomes.
 */
public final class ApiProbe {
    static final String CLIENT_ID = "api-probe";
    static final int SOCKET_TIMEOUT_MS = 30_000;
    static final long ADMIN_CALL_TIMEOUT_SECONDS = 30;
    /** A directory no broker has: absolute, under a path that does not exist. */
    static final String NONEXISTENT_DIR = "/nonexistent-api-probe/log-dir";
    static final String UNKNOWN_TOPIC = "api-probe-no-such-topic";
    /** A partition index the one-partition topic does not have. */
    static final int UNKNOWN_PARTITION = 7;
    static final String UNKNOWN_FEATURE = "api.probe.unknown.feature";
    static final String UNKNOWN_SHARE_GROUP = "api-probe-no-such-share-group";
    static final String UNKNOWN_STREAMS_GROUP = "api-probe-no-such-streams-group";
    /** The streams member's rebalance timeout (its join must name one). */
    static final int STREAMS_REBALANCE_TIMEOUT_MS = 30_000;
    /** A share group that exists only once AlterShareGroupOffsets named it. */
    static final String NEW_SHARE_GROUP = "api-probe-altered-share-group";
    static final int UNKNOWN_BROKER_ID = 4711;
    /** How many times ShareGroupHeartbeat is repeated, at its interval, until the member gets an assignment. */
    static final int HEARTBEATS_FOR_ASSIGNMENT = 40;
    static final long HEARTBEAT_PAUSE_MS = 250;
    static final int RECORDS_PER_SESSION = 2;
    static final long UNREGISTER_SETTLE_MS = 1000;
    static final int OPEN_WAIT_MS = 500;
    static final int OPEN_ATTEMPTS = 20;
    static final int ACQUIRE_WAIT_MS = 10_000;

    /** The APIs this program probes. */
    static final List<ApiKeys> PROBED_APIS = List.of(ApiKeys.ALTER_REPLICA_LOG_DIRS, ApiKeys.CREATE_DELEGATION_TOKEN,
        ApiKeys.RENEW_DELEGATION_TOKEN, ApiKeys.EXPIRE_DELEGATION_TOKEN, ApiKeys.DESCRIBE_DELEGATION_TOKEN,
        ApiKeys.UPDATE_FEATURES, ApiKeys.UNREGISTER_BROKER, ApiKeys.LIST_CONFIG_RESOURCES, ApiKeys.SHARE_GROUP_HEARTBEAT,
        ApiKeys.SHARE_GROUP_DESCRIBE, ApiKeys.SHARE_FETCH, ApiKeys.SHARE_ACKNOWLEDGE, ApiKeys.ADD_RAFT_VOTER,
        ApiKeys.REMOVE_RAFT_VOTER, ApiKeys.INITIALIZE_SHARE_GROUP_STATE, ApiKeys.READ_SHARE_GROUP_STATE,
        ApiKeys.WRITE_SHARE_GROUP_STATE, ApiKeys.DELETE_SHARE_GROUP_STATE, ApiKeys.READ_SHARE_GROUP_STATE_SUMMARY,
        ApiKeys.DESCRIBE_SHARE_GROUP_OFFSETS, ApiKeys.ALTER_SHARE_GROUP_OFFSETS, ApiKeys.DELETE_SHARE_GROUP_OFFSETS,
        ApiKeys.STREAMS_GROUP_HEARTBEAT, ApiKeys.STREAMS_GROUP_DESCRIBE);

    final String host;
    final int port;
    Socket socket;
    DataInputStream in;
    DataOutputStream out;
    int correlationId = 0;
    /** The broker's advertised version range per API key. */
    final Map<Short, short[]> advertised = new HashMap<>();
    final Map<String, Short> finalizedFeatures = new TreeMap<>();
    final Map<String, short[]> supportedFeatures = new TreeMap<>();

    ApiProbe(String bootstrap) {
        int colon = bootstrap.lastIndexOf(':');
        this.host = bootstrap.substring(0, colon);
        this.port = Integer.parseInt(bootstrap.substring(colon + 1));
    }

    public static void main(String[] args) throws Exception {
        if ((args.length == 3 || args.length == 5) && args[0].equals("--admin")) {
            runAdmin(args[1], args[2], args.length == 5 ? args[3] : null, args.length == 5 ? args[4] : null);
            return;
        }
        if (args.length != 4) {
            System.err.println("usage: ApiProbe BOOTSTRAP TOPIC SHARE_GROUP STREAMS_GROUP"
                + " | ApiProbe --admin BOOTSTRAP TOPIC [GROUP METRICS]");
            System.exit(2);
        }
        ApiProbe probe = new ApiProbe(args[0]);
        try {
            probe.runAll(args[1], args[2], args[3]);
        } finally {
            probe.disconnect();
        }
    }

    // ------------------------------------------------------------------------------------ connection

    void connect() throws IOException {
        socket = new Socket();
        socket.connect(new InetSocketAddress(host, port), SOCKET_TIMEOUT_MS);
        socket.setSoTimeout(SOCKET_TIMEOUT_MS);
        socket.setTcpNoDelay(true);
        in = new DataInputStream(socket.getInputStream());
        out = new DataOutputStream(socket.getOutputStream());
    }

    void disconnect() {
        if (socket != null) {
            try {
                socket.close();
            } catch (IOException ignored) {
                // closing anyway
            }
            socket = null;
        }
    }

    /** Sends the request and parses the answer; null when the broker closed the connection instead. */
    AbstractResponse send(AbstractRequest request) throws IOException {
        if (socket == null) {
            connect();
        }
        RequestHeader header = new RequestHeader(request.apiKey(), request.version(), CLIENT_ID, ++correlationId);
        ByteBuffer frame = request.serializeWithHeader(header);
        try {
            out.writeInt(frame.remaining());
            out.write(frame.array(), frame.arrayOffset() + frame.position(), frame.remaining());
            out.flush();
            int size = in.readInt();
            byte[] response = new byte[size];
            in.readFully(response);
            return AbstractResponse.parseResponse(ByteBuffer.wrap(response), header);
        } catch (EOFException | java.net.SocketException e) {
            disconnect();
            return null;
        }
    }

    // ------------------------------------------------------------------------------------ versions

    boolean isAdvertised(ApiKeys key) {
        return advertised.containsKey(key.id);
    }

    /** The highest (or lowest) version both the broker advertises and the client knows; the client's when the
     * broker does not advertise the API. */
    short version(ApiKeys key, boolean lowest) {
        short[] range = advertised.get(key.id);
        if (range == null) {
            return lowest ? key.oldestVersion() : key.latestVersion();
        }
        return lowest ? (short) Math.max(range[0], key.oldestVersion())
                      : (short) Math.min(range[1], key.latestVersion());
    }

    /** The versions a case is sent at: the highest, then the lowest when it differs. */
    List<Short> versions(ApiKeys key, short atLeast) {
        List<Short> versions = new ArrayList<>();
        short high = version(key, false);
        short low = (short) Math.max(version(key, true), atLeast);
        versions.add(high);
        if (low < high) {
            versions.add(low);
        }
        return versions;
    }

    interface RequestFor {
        AbstractRequest build(short version);
    }

    interface Outcome<R extends AbstractResponse> {
        String describe(R response, short version) throws Exception;
    }

    /** Sends the case at `version` and prints its line; returns the response (null when none). */
    @SuppressWarnings("unchecked")
    <R extends AbstractResponse> R probe(ApiKeys key, short version, String label, RequestFor request,
                                         Outcome<R> outcome) throws Exception {
        String prefix = key.id + " " + version + " " + label + " -> ";
        if (!isAdvertised(key)) {
            System.out.println(prefix + "not advertised");
            return null;
        }
        AbstractResponse response;
        try {
            response = send(request.build(version));
        } catch (SocketTimeoutException e) {
            disconnect();
            System.out.println(prefix + "no answer within " + SOCKET_TIMEOUT_MS + " ms");
            return null;
        } catch (RuntimeException e) {
            // An answer Kafka's response classes cannot parse; the connection's stream is not to be trusted after it.
            disconnect();
            System.out.println(prefix + "unparseable answer: " + e);
            return null;
        }
        if (response == null) {
            System.out.println(prefix + "connection closed");
            return null;
        }
        System.out.println(prefix + outcome.describe((R) response, version));
        return (R) response;
    }

    /** probe() at the highest version, and at the lowest (not below `atLeast`) when it differs. */
    <R extends AbstractResponse> void probeVersions(ApiKeys key, short atLeast, String label, RequestFor request,
                                                    Outcome<R> outcome) throws Exception {
        for (short version : versions(key, atLeast)) {
            probe(key, version, label, request, outcome);
        }
    }

    // ------------------------------------------------------------------------------------ formatting

    static String error(short code) {
        return Errors.forCode(code).name() + "(" + code + ")";
    }

    static String error(short code, String message) {
        return message == null ? error(code) : error(code) + " \"" + message.replace('\n', ' ') + "\"";
    }

    static List<String> sorted(List<String> items) {
        return items.stream().sorted().collect(Collectors.toList());
    }

    static String list(Collection<String> items) {
        return "[" + String.join(", ", items) + "]";
    }

    // ------------------------------------------------------------------------------------ the cases

    String topic;
    Uuid topicId = Uuid.ZERO_UUID;
    int brokerId = -1;
    String clusterId;
    String logDir;
    int voterId = -1;
    Uuid voterDirectoryId = Uuid.ZERO_UUID;

    void runAll(String topic, String shareGroup, String streamsGroup) throws Exception {
        this.topic = topic;
        learnBroker();
        alterReplicaLogDirs();
        delegationTokens();
        updateFeatures();
        listConfigResources("");
        shareGroups(shareGroup);
        streamsGroups(streamsGroup);
        raftVoters();
        shareGroupState(shareGroup + "-state");
        unregisterBroker();
    }

    /** ApiVersions: the advertised version ranges and the feature levels. */
    void learnVersions() throws Exception {
        ApiVersionsResponse versions = (ApiVersionsResponse) send(
            new ApiVersionsRequest.Builder().build(ApiKeys.API_VERSIONS.latestVersion()));
        if (versions == null || versions.data().errorCode() != 0) {
            throw new IllegalStateException("ApiVersions failed: " + versions);
        }
        for (ApiVersionsResponseData.ApiVersion api : versions.data().apiKeys()) {
            advertised.put(api.apiKey(), new short[] {api.minVersion(), api.maxVersion()});
        }
        for (ApiVersionsResponseData.FinalizedFeatureKey feature : versions.data().finalizedFeatures()) {
            finalizedFeatures.put(feature.name(), feature.maxVersionLevel());
        }
        for (ApiVersionsResponseData.SupportedFeatureKey feature : versions.data().supportedFeatures()) {
            supportedFeatures.put(feature.name(), new short[] {feature.minVersion(), feature.maxVersion()});
        }
    }

    void learnBroker() throws Exception {
        learnVersions();
        System.out.println("context advertised=" + PROBED_APIS.stream()
            .map(key -> key.id + ":" + (isAdvertised(key) ? advertised.get(key.id)[0] + "-" + advertised.get(key.id)[1] : "none"))
            .collect(Collectors.toList()));
        System.out.println("context finalized-features=" + finalizedFeatures);
        System.out.println("context supported-features=" + supportedFeatures.entrySet().stream()
            .map(e -> e.getKey() + "=" + e.getValue()[0] + "-" + e.getValue()[1]).collect(Collectors.toList()));

        MetadataResponse metadata = (MetadataResponse) send(
            new MetadataRequest.Builder(List.of(topic), false).build(version(ApiKeys.METADATA, false)));
        MetadataResponseData data = metadata.data();
        clusterId = data.clusterId();
        brokerId = data.brokers().iterator().next().nodeId();
        topicId = data.topics().find(topic).topicId();
        System.out.println("context broker-id=" + brokerId);
        System.out.println("context cluster-id=" + clusterId);
        System.out.println("context topic-id=" + topicId);

        DescribeLogDirsResponse logDirs = (DescribeLogDirsResponse) send(
            new DescribeLogDirsRequest.Builder(new DescribeLogDirsRequestData().setTopics(null))
                .build(version(ApiKeys.DESCRIBE_LOG_DIRS, false)));
        for (DescribeLogDirsResponseData.DescribeLogDirsResult dir : logDirs.data().results()) {
            for (DescribeLogDirsResponseData.DescribeLogDirsTopic described : dir.topics()) {
                if (described.name().equals(topic)) {
                    logDir = dir.logDir();
                }
            }
        }
        System.out.println("context log-dir=" + logDir);

        // The quorum's (only) voter and its directory id (zero for a static quorum); the broker's id when the
        // broker does not describe its quorum.
        voterId = brokerId;
        if (isAdvertised(ApiKeys.DESCRIBE_QUORUM)) {
            DescribeQuorumResponse quorum = (DescribeQuorumResponse) send(
                new DescribeQuorumRequest.Builder(DescribeQuorumRequest.singletonRequest(
                    new org.apache.kafka.common.TopicPartition("__cluster_metadata", 0)))
                    .build(version(ApiKeys.DESCRIBE_QUORUM, false)));
            DescribeQuorumResponseData.PartitionData partition = quorum.data().topics().get(0).partitions().get(0);
            DescribeQuorumResponseData.ReplicaState voter = partition.currentVoters().get(0);
            voterId = voter.replicaId();
            voterDirectoryId = voter.replicaDirectoryId();
        }
        System.out.println("context voter-id=" + voterId);
        System.out.println("context voter-directory-id=" + voterDirectoryId);
    }

    // 34 AlterReplicaLogDirs ------------------------------------------------------------------------

    void alterReplicaLogDirs() throws Exception {
        Outcome<AlterReplicaLogDirsResponse> outcome = (response, version) -> {
            List<String> items = new ArrayList<>();
            for (AlterReplicaLogDirsResponseData.AlterReplicaLogDirTopicResult result : response.data().results()) {
                for (AlterReplicaLogDirsResponseData.AlterReplicaLogDirPartitionResult partition : result.partitions()) {
                    items.add(result.topicName() + "-" + partition.partitionIndex() + " " + error(partition.errorCode()));
                }
            }
            return list(items);
        };
        probeVersions(ApiKeys.ALTER_REPLICA_LOG_DIRS, (short) 0, "same-dir",
            v -> alterReplicaLogDirsRequest(logDir, topic, 0, v), outcome);
        probeVersions(ApiKeys.ALTER_REPLICA_LOG_DIRS, (short) 0, "nonexistent-dir",
            v -> alterReplicaLogDirsRequest(NONEXISTENT_DIR, topic, 0, v), outcome);
        probeVersions(ApiKeys.ALTER_REPLICA_LOG_DIRS, (short) 0, "unknown-partition",
            v -> alterReplicaLogDirsRequest(logDir, UNKNOWN_TOPIC, 0, v), outcome);
        probeVersions(ApiKeys.ALTER_REPLICA_LOG_DIRS, (short) 0, "unknown-partition-index",
            v -> alterReplicaLogDirsRequest(logDir, topic, UNKNOWN_PARTITION, v), outcome);
        probeVersions(ApiKeys.ALTER_REPLICA_LOG_DIRS, (short) 0, "nonexistent-dir-unknown-partition",
            v -> alterReplicaLogDirsRequest(NONEXISTENT_DIR, UNKNOWN_TOPIC, 0, v), outcome);
    }

    static AbstractRequest alterReplicaLogDirsRequest(String dir, String topic, int partition, short version) {
        AlterReplicaLogDirsRequestData.AlterReplicaLogDirTopicCollection topics =
            new AlterReplicaLogDirsRequestData.AlterReplicaLogDirTopicCollection();
        topics.add(new AlterReplicaLogDirsRequestData.AlterReplicaLogDirTopic().setName(topic).setPartitions(List.of(partition)));
        AlterReplicaLogDirsRequestData.AlterReplicaLogDirCollection dirs =
            new AlterReplicaLogDirsRequestData.AlterReplicaLogDirCollection();
        dirs.add(new AlterReplicaLogDirsRequestData.AlterReplicaLogDir().setPath(dir).setTopics(topics));
        return new AlterReplicaLogDirsRequest.Builder(new AlterReplicaLogDirsRequestData().setDirs(dirs)).build(version);
    }

    // 38-41 delegation tokens -------------------------------------------------------------------------

    void delegationTokens() throws Exception {
        byte[] hmac = "api-probe-not-a-token-hmac".getBytes(StandardCharsets.UTF_8);
        probeVersions(ApiKeys.CREATE_DELEGATION_TOKEN, (short) 0, "create",
            v -> new CreateDelegationTokenRequest.Builder(new CreateDelegationTokenRequestData()
                .setRenewers(List.of())
                .setMaxLifetimeMs(-1)).build(v),
            (CreateDelegationTokenResponse response, short version) -> {
                CreateDelegationTokenResponseData data = response.data();
                String line = error(data.errorCode()) + " principal=" + data.principalType() + ":" + data.principalName();
                if (version >= 3) {
                    line += " requester=" + data.tokenRequesterPrincipalType() + ":" + data.tokenRequesterPrincipalName();
                }
                return line + " tokenId=" + quoted(data.tokenId()) + " hmacBytes=" + data.hmac().length;
            });
        probeVersions(ApiKeys.RENEW_DELEGATION_TOKEN, (short) 0, "renew",
            v -> new RenewDelegationTokenRequest.Builder(new RenewDelegationTokenRequestData()
                .setHmac(hmac).setRenewPeriodMs(-1)).build(v),
            (RenewDelegationTokenResponse response, short version) ->
                error(response.data().errorCode()) + " expiry=" + response.data().expiryTimestampMs());
        probeVersions(ApiKeys.EXPIRE_DELEGATION_TOKEN, (short) 0, "expire",
            v -> new ExpireDelegationTokenRequest.Builder(new ExpireDelegationTokenRequestData()
                .setHmac(hmac).setExpiryTimePeriodMs(-1)).build(v),
            (ExpireDelegationTokenResponse response, short version) ->
                error(response.data().errorCode()) + " expiry=" + response.data().expiryTimestampMs());
        probeVersions(ApiKeys.DESCRIBE_DELEGATION_TOKEN, (short) 0, "describe-all",
            v -> new DescribeDelegationTokenRequest.Builder(null).build(v),
            (DescribeDelegationTokenResponse response, short version) -> describedTokens(response.data()));
        probeVersions(ApiKeys.DESCRIBE_DELEGATION_TOKEN, (short) 0, "describe-owner",
            v -> new DescribeDelegationTokenRequest.Builder(List.of(new KafkaPrincipal("User", "api-probe"))).build(v),
            (DescribeDelegationTokenResponse response, short version) -> describedTokens(response.data()));
    }

    static String describedTokens(DescribeDelegationTokenResponseData data) {
        return error(data.errorCode()) + " tokens=" + data.tokens().size();
    }

    static String quoted(String text) {
        return text == null ? "null" : "\"" + text + "\"";
    }

    // 57 UpdateFeatures -------------------------------------------------------------------------------

    void updateFeatures() throws Exception {
        // The finalized level (else the highest supported one, else 1: the cases still go out).
        short currentMetadataVersion = finalizedFeatures.getOrDefault("metadata.version",
            supportedFeatures.getOrDefault("metadata.version", new short[] {1, 1})[1]);
        short maxMetadataVersion = supportedFeatures.getOrDefault("metadata.version",
            new short[] {currentMetadataVersion, currentMetadataVersion})[1];
        Outcome<UpdateFeaturesResponse> outcome = (response, version) -> {
            UpdateFeaturesResponseData data = response.data();
            List<String> items = new ArrayList<>();
            for (UpdateFeaturesResponseData.UpdatableFeatureResult result : data.results()) {
                items.add(result.feature() + " " + error(result.errorCode(), result.errorMessage()));
            }
            return error(data.errorCode(), data.errorMessage()) + " " + list(items);
        };
        // Upgrade type 1 is UPGRADE (v1+); v0 says the same with allowDowngrade=false.
        probeVersions(ApiKeys.UPDATE_FEATURES, (short) 0, "upgrade-unknown-feature",
            v -> updateFeaturesRequest(UNKNOWN_FEATURE, (short) 1, (byte) 1, false, v), outcome);
        probeVersions(ApiKeys.UPDATE_FEATURES, (short) 0, "metadata.version-to-current",
            v -> updateFeaturesRequest("metadata.version", currentMetadataVersion, (byte) 1, false, v), outcome);
        probeVersions(ApiKeys.UPDATE_FEATURES, (short) 1, "validate-only-metadata.version-to-current",
            v -> updateFeaturesRequest("metadata.version", currentMetadataVersion, (byte) 1, true, v), outcome);
        probeVersions(ApiKeys.UPDATE_FEATURES, (short) 1, "validate-only-unknown-feature",
            v -> updateFeaturesRequest(UNKNOWN_FEATURE, (short) 1, (byte) 1, true, v), outcome);
        // Above the highest supported level; then one level down (2 is SAFE_DOWNGRADE); then share.version to 0,
        // which disables share groups (validate-only: nothing changes).
        probeVersions(ApiKeys.UPDATE_FEATURES, (short) 1, "validate-only-metadata.version-above-supported",
            v -> updateFeaturesRequest("metadata.version", (short) (maxMetadataVersion + 1), (byte) 1, true, v), outcome);
        probeVersions(ApiKeys.UPDATE_FEATURES, (short) 1, "validate-only-metadata.version-safe-downgrade",
            v -> updateFeaturesRequest("metadata.version", (short) (currentMetadataVersion - 1), (byte) 2, true, v), outcome);
        probeVersions(ApiKeys.UPDATE_FEATURES, (short) 1, "validate-only-share.version-to-0",
            v -> updateFeaturesRequest("share.version", (short) 0, (byte) 2, true, v), outcome);
    }

    static AbstractRequest updateFeaturesRequest(String feature, short level, byte upgradeType, boolean validateOnly,
                                                 short version) {
        UpdateFeaturesRequestData.FeatureUpdateKeyCollection updates =
            new UpdateFeaturesRequestData.FeatureUpdateKeyCollection();
        UpdateFeaturesRequestData.FeatureUpdateKey update =
            new UpdateFeaturesRequestData.FeatureUpdateKey().setFeature(feature).setMaxVersionLevel(level);
        if (version >= 1) {
            update.setUpgradeType(upgradeType);
        } else {
            update.setAllowDowngrade(upgradeType != 1);
        }
        updates.add(update);
        UpdateFeaturesRequestData data = new UpdateFeaturesRequestData().setTimeoutMs(30_000).setFeatureUpdates(updates);
        if (validateOnly) {
            data.setValidateOnly(true);
        }
        return new UpdateFeaturesRequest.Builder(data).build(version);
    }

    // 74 ListConfigResources --------------------------------------------------------------------------

    /** The cases, each labelled `labelPrefix` + its name. */
    void listConfigResources(String labelPrefix) throws Exception {
        // The topics the broker knows right now (internal ones included), for the TOPIC resources.
        MetadataResponse metadata = (MetadataResponse) send(
            MetadataRequest.Builder.allTopics().build(version(ApiKeys.METADATA, false)));
        System.out.println("context " + labelPrefix + "topics=" + metadata.data().topics().stream()
            .map(MetadataResponseData.MetadataResponseTopic::name).sorted().collect(Collectors.toList()));
        Outcome<ListConfigResourcesResponse> outcome = (response, version) -> {
            ListConfigResourcesResponseData data = response.data();
            List<String> items = data.configResources().stream()
                .map(resource -> (version >= 1 ? resourceType(resource.resourceType()) + ":" : "") + resource.resourceName())
                .sorted()
                .collect(Collectors.toList());
            return error(data.errorCode()) + " " + list(items);
        };
        // v0 is the former ListClientMetricsResources: client metrics resources only.
        probe(ApiKeys.LIST_CONFIG_RESOURCES, version(ApiKeys.LIST_CONFIG_RESOURCES, true), labelPrefix + "no-types",
            v -> listConfigResourcesRequest(List.of(), v), outcome);
        if (version(ApiKeys.LIST_CONFIG_RESOURCES, false) >= 1) {
            short v1 = version(ApiKeys.LIST_CONFIG_RESOURCES, false);
            probe(ApiKeys.LIST_CONFIG_RESOURCES, v1, labelPrefix + "no-types",
                v -> listConfigResourcesRequest(List.of(), v), outcome);
            probe(ApiKeys.LIST_CONFIG_RESOURCES, v1, labelPrefix + "topic-group-client_metrics-broker",
                v -> listConfigResourcesRequest(List.of(ConfigResource.Type.TOPIC, ConfigResource.Type.GROUP,
                    ConfigResource.Type.CLIENT_METRICS, ConfigResource.Type.BROKER), v), outcome);
            probe(ApiKeys.LIST_CONFIG_RESOURCES, v1, labelPrefix + "broker_logger",
                v -> listConfigResourcesRequest(List.of(ConfigResource.Type.BROKER_LOGGER), v), outcome);
            probe(ApiKeys.LIST_CONFIG_RESOURCES, v1, labelPrefix + "unknown-type",
                v -> listConfigResourcesRequest(List.of(ConfigResource.Type.UNKNOWN), v), outcome);
        }
    }

    static AbstractRequest listConfigResourcesRequest(List<ConfigResource.Type> types, short version) {
        // v0 has no ResourceTypes: the builder wants exactly CLIENT_METRICS there, and sends none.
        List<ConfigResource.Type> sent = version >= 1 ? types : List.of(ConfigResource.Type.CLIENT_METRICS);
        ListConfigResourcesRequestData data = new ListConfigResourcesRequestData()
            .setResourceTypes(sent.stream().map(ConfigResource.Type::id).collect(Collectors.toList()));
        return new ListConfigResourcesRequest.Builder(data).build(version);
    }

    static String resourceType(byte id) {
        return ConfigResource.Type.forId(id).name();
    }

    // 76-79, 90-92 share groups -----------------------------------------------------------------------

    String memberId;
    int memberEpoch;

    void shareGroups(String shareGroup) throws Exception {
        Outcome<ShareGroupDescribeResponse> describe = (response, version) -> {
            List<String> items = new ArrayList<>();
            for (ShareGroupDescribeResponseData.DescribedGroup group : response.data().groups()) {
                String item = group.groupId() + " " + error(group.errorCode(), group.errorMessage());
                if (group.errorCode() == 0) {
                    item += " state=" + group.groupState() + " members=" + group.members().size()
                        + " assignor=" + group.assignorName();
                }
                items.add(item);
            }
            // Kafka answers the groups in an order of its own (by coordinator): sorted here.
            return list(sorted(items));
        };
        probe(ApiKeys.SHARE_GROUP_DESCRIBE, version(ApiKeys.SHARE_GROUP_DESCRIBE, false), "before-join",
            v -> shareGroupDescribeRequest(List.of(shareGroup), v), describe);

        // A new member: the client makes up its member id (v1), epoch 0 joins.
        memberId = Uuid.randomUuid().toString();
        ShareGroupHeartbeatResponse joined = probe(ApiKeys.SHARE_GROUP_HEARTBEAT,
            version(ApiKeys.SHARE_GROUP_HEARTBEAT, false), "join",
            v -> shareGroupHeartbeatRequest(shareGroup, memberId, 0, List.of(topic), v),
            (ShareGroupHeartbeatResponse response, short version) -> heartbeatOutcome(response, false));
        if (joined != null && joined.data().errorCode() == 0) {
            memberEpoch = joined.data().memberEpoch();
            // Heartbeats until the member has its assignment (the assignor runs after the join).
            ShareGroupHeartbeatResponse assigned = joined;
            for (int i = 0; i < HEARTBEATS_FOR_ASSIGNMENT && !hasAssignment(assigned); i++) {
                Thread.sleep(HEARTBEAT_PAUSE_MS);
                AbstractResponse next = send(shareGroupHeartbeatRequest(shareGroup, memberId, memberEpoch, null,
                    version(ApiKeys.SHARE_GROUP_HEARTBEAT, false)));
                if (!(next instanceof ShareGroupHeartbeatResponse) || ((ShareGroupHeartbeatResponse) next).data().errorCode() != 0) {
                    break;
                }
                assigned = (ShareGroupHeartbeatResponse) next;
                memberEpoch = assigned.data().memberEpoch();
            }
            System.out.println(ApiKeys.SHARE_GROUP_HEARTBEAT.id + " " + version(ApiKeys.SHARE_GROUP_HEARTBEAT, false)
                + " assignment -> " + heartbeatOutcome(assigned, true));
        }
        String unknownMember = Uuid.randomUuid().toString();
        probe(ApiKeys.SHARE_GROUP_HEARTBEAT, version(ApiKeys.SHARE_GROUP_HEARTBEAT, false), "unknown-member",
            v -> shareGroupHeartbeatRequest(shareGroup, unknownMember, 5, null, v),
            (ShareGroupHeartbeatResponse response, short version) ->
                heartbeatOutcome(response, false).replace(unknownMember, "<unknown-member-id>"));
        probe(ApiKeys.SHARE_GROUP_DESCRIBE, version(ApiKeys.SHARE_GROUP_DESCRIBE, false), "after-join",
            v -> shareGroupDescribeRequest(List.of(shareGroup, UNKNOWN_SHARE_GROUP), v), describe);

        // ShareFetch: a session per version (epoch 0 opens it), then the next epoch acknowledges, -1 closes.
        Outcome<ShareFetchResponse> fetched = (response, version) -> {
            ShareFetchResponseData data = response.data();
            List<String> items = new ArrayList<>();
            for (ShareFetchResponseData.ShareFetchableTopicResponse t : data.responses()) {
                for (ShareFetchResponseData.PartitionData p : t.partitions()) {
                    items.add(topicName(t.topicId()) + "-" + p.partitionIndex() + " " + error(p.errorCode(), p.errorMessage())
                        + " ack=" + error(p.acknowledgeErrorCode(), p.acknowledgeErrorMessage())
                        + " acquired=" + p.acquiredRecords().stream()
                            .map(r -> r.firstOffset() + ".." + r.lastOffset() + "x" + r.deliveryCount())
                            .collect(Collectors.toList()));
                }
            }
            return error(data.errorCode(), data.errorMessage()) + " lockMs=" + data.acquisitionLockTimeoutMs() + " " + list(items);
        };
        Outcome<ShareAcknowledgeResponse> acknowledged = (response, version) -> {
            ShareAcknowledgeResponseData data = response.data();
            List<String> items = new ArrayList<>();
            for (ShareAcknowledgeResponseData.ShareAcknowledgeTopicResponse t : data.responses()) {
                for (ShareAcknowledgeResponseData.PartitionData p : t.partitions()) {
                    items.add(topicName(t.topicId()) + "-" + p.partitionIndex() + " " + error(p.errorCode(), p.errorMessage()));
                }
            }
            return error(data.errorCode(), data.errorMessage()) + " " + list(items);
        };
        // One share session per ShareFetch version: epoch 0 opens it (repeated at the next epochs while the
        // partition is not yet in the answer: the share partition loads its state first); then
        // RECORDS_PER_SESSION records are produced, the next epoch acquires them, ShareAcknowledge accepts them,
        // accepts them again, accepts an offset never acquired, and sends a wrong epoch; a fetch of a member
        // without a session; -1 closes the session.
        for (short version : versions(ApiKeys.SHARE_FETCH, (short) 0)) {
            short ackVersion = (short) Math.min(version, version(ApiKeys.SHARE_ACKNOWLEDGE, false));
            int[] epoch = {0};
            ShareFetchResponse opened = null;
            for (int attempt = 0; attempt < OPEN_ATTEMPTS && isAdvertised(ApiKeys.SHARE_FETCH); attempt++) {
                AbstractResponse response = send(shareFetchRequest(shareGroup, memberId, epoch[0], OPEN_WAIT_MS, version));
                if (!(response instanceof ShareFetchResponse)) {
                    break;
                }
                opened = (ShareFetchResponse) response;
                if (opened.data().errorCode() != 0) {
                    break;
                }
                epoch[0]++;
                if (!opened.data().responses().isEmpty()) {
                    break;
                }
            }
            String openPrefix = ApiKeys.SHARE_FETCH.id + " " + version + " open-session -> ";
            System.out.println(openPrefix + (!isAdvertised(ApiKeys.SHARE_FETCH) ? "not advertised"
                : opened == null ? "connection closed" : fetched.describe(opened, version)));
            long first = produce(RECORDS_PER_SESSION);
            long last = first + RECORDS_PER_SESSION - 1;
            System.out.println("context produced-" + version + "=" + first + ".." + last);
            probe(ApiKeys.SHARE_FETCH, version, "acquire",
                v -> shareFetchRequest(shareGroup, memberId, epoch[0]++, ACQUIRE_WAIT_MS, v), fetched);
            probe(ApiKeys.SHARE_ACKNOWLEDGE, ackVersion, "accept",
                v -> shareAcknowledgeRequest(shareGroup, memberId, epoch[0]++, first, last, v), acknowledged);
            probe(ApiKeys.SHARE_ACKNOWLEDGE, ackVersion, "accept-again",
                v -> shareAcknowledgeRequest(shareGroup, memberId, epoch[0]++, first, last, v), acknowledged);
            probe(ApiKeys.SHARE_ACKNOWLEDGE, ackVersion, "accept-not-acquired",
                v -> shareAcknowledgeRequest(shareGroup, memberId, epoch[0]++, last + 1, last + 1, v), acknowledged);
            probe(ApiKeys.SHARE_ACKNOWLEDGE, ackVersion, "wrong-epoch",
                v -> shareAcknowledgeRequest(shareGroup, memberId, epoch[0] + 10, first, last, v), acknowledged);
            probe(ApiKeys.SHARE_FETCH, version, "unknown-session",
                v -> shareFetchRequest(shareGroup, Uuid.randomUuid().toString(), 1, 0, v), fetched);
            probe(ApiKeys.SHARE_FETCH, version, "close-session",
                v -> shareFetchRequest(shareGroup, memberId, -1, 0, v), fetched);
        }

        Outcome<DescribeShareGroupOffsetsResponse> offsets = (response, version) -> {
            List<String> items = new ArrayList<>();
            for (DescribeShareGroupOffsetsResponseData.DescribeShareGroupOffsetsResponseGroup g : response.data().groups()) {
                List<String> partitions = new ArrayList<>();
                for (DescribeShareGroupOffsetsResponseData.DescribeShareGroupOffsetsResponseTopic t : g.topics()) {
                    for (DescribeShareGroupOffsetsResponseData.DescribeShareGroupOffsetsResponsePartition p : t.partitions()) {
                        partitions.add(t.topicName() + "-" + p.partitionIndex() + " "
                            + error(p.errorCode(), p.errorMessage()) + " start=" + p.startOffset()
                            + (version >= 1 ? " lag=" + p.lag() : ""));
                    }
                }
                items.add(g.groupId() + " " + error(g.errorCode(), g.errorMessage()) + " " + list(partitions));
            }
            return list(sorted(items));
        };
        probeVersions(ApiKeys.DESCRIBE_SHARE_GROUP_OFFSETS, (short) 0, "member-active",
            v -> describeShareGroupOffsetsRequest(List.of(shareGroup, UNKNOWN_SHARE_GROUP), true, v), offsets);
        probeVersions(ApiKeys.DESCRIBE_SHARE_GROUP_OFFSETS, (short) 0, "all-topics",
            v -> describeShareGroupOffsetsRequest(List.of(shareGroup), false, v), offsets);

        Outcome<AlterShareGroupOffsetsResponse> altered = (response, version) -> {
            AlterShareGroupOffsetsResponseData data = response.data();
            List<String> items = new ArrayList<>();
            for (AlterShareGroupOffsetsResponseData.AlterShareGroupOffsetsResponseTopic t : data.responses()) {
                for (AlterShareGroupOffsetsResponseData.AlterShareGroupOffsetsResponsePartition p : t.partitions()) {
                    items.add(t.topicName() + "-" + p.partitionIndex() + " " + error(p.errorCode(), p.errorMessage()));
                }
            }
            return error(data.errorCode(), data.errorMessage()) + " " + list(items);
        };
        Outcome<DeleteShareGroupOffsetsResponse> deleted = (response, version) -> {
            DeleteShareGroupOffsetsResponseData data = response.data();
            List<String> items = new ArrayList<>();
            for (DeleteShareGroupOffsetsResponseData.DeleteShareGroupOffsetsResponseTopic t : data.responses()) {
                items.add(t.topicName() + " " + error(t.errorCode(), t.errorMessage()));
            }
            return error(data.errorCode(), data.errorMessage()) + " " + list(items);
        };
        probe(ApiKeys.ALTER_SHARE_GROUP_OFFSETS, version(ApiKeys.ALTER_SHARE_GROUP_OFFSETS, false), "member-active",
            v -> alterShareGroupOffsetsRequest(shareGroup, v), altered);
        probe(ApiKeys.DELETE_SHARE_GROUP_OFFSETS, version(ApiKeys.DELETE_SHARE_GROUP_OFFSETS, false), "member-active",
            v -> deleteShareGroupOffsetsRequest(shareGroup, v), deleted);

        // The member leaves (epoch -1): the group is empty and its offsets can be altered and deleted.
        probe(ApiKeys.SHARE_GROUP_HEARTBEAT, version(ApiKeys.SHARE_GROUP_HEARTBEAT, false), "leave",
            v -> shareGroupHeartbeatRequest(shareGroup, memberId, -1, null, v),
            (ShareGroupHeartbeatResponse response, short version) -> heartbeatOutcome(response, false));
        probe(ApiKeys.ALTER_SHARE_GROUP_OFFSETS, version(ApiKeys.ALTER_SHARE_GROUP_OFFSETS, false), "group-empty",
            v -> alterShareGroupOffsetsRequest(shareGroup, v), altered);
        probeVersions(ApiKeys.DESCRIBE_SHARE_GROUP_OFFSETS, (short) 0, "after-alter",
            v -> describeShareGroupOffsetsRequest(List.of(shareGroup), true, v), offsets);
        probe(ApiKeys.ALTER_SHARE_GROUP_OFFSETS, version(ApiKeys.ALTER_SHARE_GROUP_OFFSETS, false), "unknown-group",
            v -> alterShareGroupOffsetsRequest(NEW_SHARE_GROUP, v), altered);
        probe(ApiKeys.DELETE_SHARE_GROUP_OFFSETS, version(ApiKeys.DELETE_SHARE_GROUP_OFFSETS, false), "group-empty",
            v -> deleteShareGroupOffsetsRequest(shareGroup, v), deleted);
        probeVersions(ApiKeys.DESCRIBE_SHARE_GROUP_OFFSETS, (short) 0, "after-delete",
            v -> describeShareGroupOffsetsRequest(List.of(shareGroup), true, v), offsets);
        probe(ApiKeys.DELETE_SHARE_GROUP_OFFSETS, version(ApiKeys.DELETE_SHARE_GROUP_OFFSETS, false), "unknown-group",
            v -> deleteShareGroupOffsetsRequest(UNKNOWN_SHARE_GROUP, v), deleted);
        probe(ApiKeys.SHARE_GROUP_DESCRIBE, version(ApiKeys.SHARE_GROUP_DESCRIBE, false), "after-leave",
            v -> shareGroupDescribeRequest(List.of(shareGroup, NEW_SHARE_GROUP), v), describe);
    }

    /** Produces `count` records to partition 0 of the topic (acks=all); returns the first one's offset. */
    long produce(int count) throws Exception {
        Properties properties = new Properties();
        properties.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, host + ":" + port);
        properties.put(ProducerConfig.ACKS_CONFIG, "all");
        properties.put(ProducerConfig.LINGER_MS_CONFIG, 0);
        long first = -1;
        try (KafkaProducer<byte[], byte[]> producer =
                 new KafkaProducer<>(properties, new ByteArraySerializer(), new ByteArraySerializer())) {
            for (int i = 0; i < count; i++) {
                RecordMetadata written = producer.send(new ProducerRecord<>(topic, 0, null,
                    ("share-record-" + i).getBytes(StandardCharsets.UTF_8))).get(ADMIN_CALL_TIMEOUT_SECONDS, TimeUnit.SECONDS);
                if (first < 0) {
                    first = written.offset();
                }
            }
        }
        return first;
    }

    boolean hasAssignment(ShareGroupHeartbeatResponse response) {
        return response.data().assignment() != null && !response.data().assignment().topicPartitions().isEmpty();
    }

    String heartbeatOutcome(ShareGroupHeartbeatResponse response, boolean withAssignment) {
        ShareGroupHeartbeatResponseData data = response.data();
        String line = error(data.errorCode(), data.errorMessage());
        if (data.errorCode() == 0) {
            line += " memberId=" + (memberId != null && memberId.equals(data.memberId()) ? "sent" : quoted(data.memberId()))
                + " memberEpoch=" + data.memberEpoch() + " heartbeatIntervalMs=" + data.heartbeatIntervalMs();
            if (withAssignment) {
                line += " assignment=" + (data.assignment() == null ? "null" : data.assignment().topicPartitions().stream()
                    .map(tp -> topicName(tp.topicId()) + ":" + tp.partitions())
                    .collect(Collectors.toList()));
            }
        }
        return line;
    }

    String topicName(Uuid id) {
        return id.equals(topicId) ? topic : id.toString();
    }

    static AbstractRequest shareGroupDescribeRequest(List<String> groups, short version) {
        return new ShareGroupDescribeRequest.Builder(new ShareGroupDescribeRequestData()
            .setGroupIds(groups).setIncludeAuthorizedOperations(false)).build(version);
    }

    static AbstractRequest shareGroupHeartbeatRequest(String group, String member, int epoch, List<String> topics,
                                                      short version) {
        return new ShareGroupHeartbeatRequest.Builder(new ShareGroupHeartbeatRequestData()
            .setGroupId(group).setMemberId(member).setMemberEpoch(epoch).setSubscribedTopicNames(topics)).build(version);
    }

    AbstractRequest shareFetchRequest(String group, String member, int sessionEpoch, int maxWaitMs, short version) {
        ShareFetchRequestData.FetchTopicCollection topics = new ShareFetchRequestData.FetchTopicCollection();
        if (sessionEpoch >= 0) {
            ShareFetchRequestData.FetchPartitionCollection partitions = new ShareFetchRequestData.FetchPartitionCollection();
            partitions.add(new ShareFetchRequestData.FetchPartition().setPartitionIndex(0));
            topics.add(new ShareFetchRequestData.FetchTopic().setTopicId(topicId).setPartitions(partitions));
        }
        return new ShareFetchRequest.Builder(new ShareFetchRequestData()
            .setGroupId(group).setMemberId(member).setShareSessionEpoch(sessionEpoch)
            .setMaxWaitMs(maxWaitMs).setMinBytes(1).setMaxBytes(1 << 20).setMaxRecords(100).setBatchSize(100)
            .setTopics(topics)).build(version);
    }

    AbstractRequest shareAcknowledgeRequest(String group, String member, int sessionEpoch, long first, long last,
                                            short version) {
        ShareAcknowledgeRequestData.AcknowledgePartitionCollection partitions =
            new ShareAcknowledgeRequestData.AcknowledgePartitionCollection();
        partitions.add(new ShareAcknowledgeRequestData.AcknowledgePartition().setPartitionIndex(0)
            .setAcknowledgementBatches(List.of(new ShareAcknowledgeRequestData.AcknowledgementBatch()
                .setFirstOffset(first).setLastOffset(last).setAcknowledgeTypes(List.of((byte) 1)))));
        ShareAcknowledgeRequestData.AcknowledgeTopicCollection topics =
            new ShareAcknowledgeRequestData.AcknowledgeTopicCollection();
        topics.add(new ShareAcknowledgeRequestData.AcknowledgeTopic().setTopicId(topicId).setPartitions(partitions));
        return new ShareAcknowledgeRequest.Builder(new ShareAcknowledgeRequestData()
            .setGroupId(group).setMemberId(member).setShareSessionEpoch(sessionEpoch).setTopics(topics)).build(version);
    }

    AbstractRequest describeShareGroupOffsetsRequest(List<String> groups, boolean namedTopic, short version) {
        List<DescribeShareGroupOffsetsRequestData.DescribeShareGroupOffsetsRequestGroup> requested = new ArrayList<>();
        for (String group : groups) {
            requested.add(new DescribeShareGroupOffsetsRequestData.DescribeShareGroupOffsetsRequestGroup()
                .setGroupId(group)
                .setTopics(namedTopic ? List.of(new DescribeShareGroupOffsetsRequestData.DescribeShareGroupOffsetsRequestTopic()
                    .setTopicName(topic).setPartitions(List.of(0))) : null));
        }
        return new DescribeShareGroupOffsetsRequest.Builder(new DescribeShareGroupOffsetsRequestData()
            .setGroups(requested)).build(version);
    }

    AbstractRequest alterShareGroupOffsetsRequest(String group, short version) {
        AlterShareGroupOffsetsRequestData.AlterShareGroupOffsetsRequestTopicCollection topics =
            new AlterShareGroupOffsetsRequestData.AlterShareGroupOffsetsRequestTopicCollection();
        topics.add(new AlterShareGroupOffsetsRequestData.AlterShareGroupOffsetsRequestTopic().setTopicName(topic)
            .setPartitions(List.of(new AlterShareGroupOffsetsRequestData.AlterShareGroupOffsetsRequestPartition()
                .setPartitionIndex(0).setStartOffset(1))));
        return new AlterShareGroupOffsetsRequest.Builder(new AlterShareGroupOffsetsRequestData()
            .setGroupId(group).setTopics(topics)).build(version);
    }

    AbstractRequest deleteShareGroupOffsetsRequest(String group, short version) {
        return new DeleteShareGroupOffsetsRequest.Builder(new DeleteShareGroupOffsetsRequestData()
            .setGroupId(group).setTopics(List.of(new DeleteShareGroupOffsetsRequestData.DeleteShareGroupOffsetsRequestTopic()
                .setTopicName(topic)))).build(version);
    }

    // 88-89 streams groups (KIP-1071) -----------------------------------------------------------------

    String streamsMemberId;

    void streamsGroups(String streamsGroup) throws Exception {
        Outcome<StreamsGroupDescribeResponse> describe = (response, version) -> {
            List<String> items = new ArrayList<>();
            for (StreamsGroupDescribeResponseData.DescribedGroup group : response.data().groups()) {
                String item = group.groupId() + " " + error(group.errorCode(), group.errorMessage());
                if (group.errorCode() == 0) {
                    StreamsGroupDescribeResponseData.Topology topology = group.topology();
                    item += " state=" + group.groupState() + " members=" + group.members().size()
                        + " topology=" + (topology == null ? "null" : topology.epoch() + ":"
                            + (topology.subtopologies() == null ? "null" : topology.subtopologies().stream()
                                .map(s -> s.subtopologyId() + "<-" + s.sourceTopics()).collect(Collectors.toList())));
                }
                items.add(item);
            }
            // Kafka answers the groups in an order of its own (by coordinator): sorted here.
            return list(sorted(items));
        };
        // A new member (its client-made member id, epoch 0) joins with a one-subtopology topology reading the topic.
        streamsMemberId = Uuid.randomUuid().toString();
        String processId = Uuid.randomUuid().toString();
        short heartbeatVersion = version(ApiKeys.STREAMS_GROUP_HEARTBEAT, false);
        StreamsGroupHeartbeatResponse joined = probe(ApiKeys.STREAMS_GROUP_HEARTBEAT, heartbeatVersion, "join",
            v -> new StreamsGroupHeartbeatRequest.Builder(new StreamsGroupHeartbeatRequestData()
                .setGroupId(streamsGroup).setMemberId(streamsMemberId).setMemberEpoch(0).setEndpointInformationEpoch(0)
                .setRebalanceTimeoutMs(STREAMS_REBALANCE_TIMEOUT_MS).setProcessId(processId)
                .setTopology(new StreamsGroupHeartbeatRequestData.Topology().setEpoch(0).setSubtopologies(List.of(
                    new StreamsGroupHeartbeatRequestData.Subtopology().setSubtopologyId("0")
                        .setSourceTopics(List.of(topic)))))
                .setActiveTasks(List.of()).setStandbyTasks(List.of()).setWarmupTasks(List.of())
                .setClientTags(List.of())).build(v),
            this::streamsHeartbeatOutcome);
        if (joined != null && joined.data().errorCode() == 0) {
            int epoch = joined.data().memberEpoch();
            // Heartbeats (nothing changed: the optional fields null) until the member has active tasks: the group
            // assigns them once its initial rebalance delay is over.
            StreamsGroupHeartbeatResponse assigned = joined;
            for (int i = 0; i < HEARTBEATS_FOR_ASSIGNMENT && !hasActiveTasks(assigned); i++) {
                Thread.sleep(HEARTBEAT_PAUSE_MS);
                AbstractResponse next = send(new StreamsGroupHeartbeatRequest.Builder(
                    new StreamsGroupHeartbeatRequestData().setGroupId(streamsGroup).setMemberId(streamsMemberId)
                        .setMemberEpoch(epoch).setEndpointInformationEpoch(assigned.data().endpointInformationEpoch()))
                    .build(heartbeatVersion));
                if (!(next instanceof StreamsGroupHeartbeatResponse)
                        || ((StreamsGroupHeartbeatResponse) next).data().errorCode() != 0) {
                    break;
                }
                assigned = (StreamsGroupHeartbeatResponse) next;
                epoch = assigned.data().memberEpoch();
            }
            System.out.println(ApiKeys.STREAMS_GROUP_HEARTBEAT.id + " " + heartbeatVersion + " assignment -> "
                + streamsHeartbeatOutcome(assigned, heartbeatVersion));
        }
        probe(ApiKeys.STREAMS_GROUP_DESCRIBE, version(ApiKeys.STREAMS_GROUP_DESCRIBE, false), "after-join",
            v -> new StreamsGroupDescribeRequest.Builder(new StreamsGroupDescribeRequestData()
                .setGroupIds(List.of(streamsGroup, UNKNOWN_STREAMS_GROUP)).setIncludeAuthorizedOperations(false))
                .build(v),
            describe);
        // The member leaves (epoch -1).
        probe(ApiKeys.STREAMS_GROUP_HEARTBEAT, heartbeatVersion, "leave",
            v -> new StreamsGroupHeartbeatRequest.Builder(new StreamsGroupHeartbeatRequestData()
                .setGroupId(streamsGroup).setMemberId(streamsMemberId).setMemberEpoch(-1)).build(v),
            this::streamsHeartbeatOutcome);
    }

    static boolean hasActiveTasks(StreamsGroupHeartbeatResponse response) {
        return response.data().activeTasks() != null && !response.data().activeTasks().isEmpty();
    }

    String streamsHeartbeatOutcome(StreamsGroupHeartbeatResponse response, short version) {
        StreamsGroupHeartbeatResponseData data = response.data();
        String line = error(data.errorCode(), data.errorMessage());
        if (data.errorCode() == 0) {
            line += " memberId=" + (streamsMemberId.equals(data.memberId()) ? "sent" : quoted(data.memberId()))
                + " memberEpoch=" + data.memberEpoch() + " heartbeatIntervalMs=" + data.heartbeatIntervalMs()
                + " acceptableRecoveryLag=" + data.acceptableRecoveryLag()
                + " taskOffsetIntervalMs=" + data.taskOffsetIntervalMs()
                + " endpointInformationEpoch=" + data.endpointInformationEpoch()
                + " status=" + (data.status() == null ? "null" : data.status().stream()
                    .map(s -> streamsStatus(s.statusCode()) + " " + quoted(s.statusDetail()))
                    .collect(Collectors.toList()))
                + " active=" + streamsTasks(data.activeTasks()) + " standby=" + streamsTasks(data.standbyTasks())
                + " warmup=" + streamsTasks(data.warmupTasks());
        }
        return line;
    }

    /** A group status as NAME(code); UNKNOWN(code) for a code kafka-clients does not know. */
    static String streamsStatus(byte code) {
        for (StreamsGroupHeartbeatResponse.Status status : StreamsGroupHeartbeatResponse.Status.values()) {
            if (status.code() == code) {
                return status.name() + "(" + code + ")";
            }
        }
        return "UNKNOWN(" + code + ")";
    }

    static String streamsTasks(List<StreamsGroupHeartbeatResponseData.TaskIds> tasks) {
        return tasks == null ? "null" : tasks.stream().map(t -> t.subtopologyId() + ":" + t.partitions())
            .collect(Collectors.toList()).toString();
    }

    // 80-81 raft voters -------------------------------------------------------------------------------

    void raftVoters() throws Exception {
        Outcome<AddRaftVoterResponse> added = (response, version) ->
            error(response.data().errorCode(), response.data().errorMessage());
        probeVersions(ApiKeys.ADD_RAFT_VOTER, (short) 0, "new-voter", v -> {
            AddRaftVoterRequestData.ListenerCollection listeners = new AddRaftVoterRequestData.ListenerCollection();
            listeners.add(new AddRaftVoterRequestData.Listener().setName("CONTROLLER").setHost("127.0.0.1").setPort(9));
            return new AddRaftVoterRequest.Builder(new AddRaftVoterRequestData().setClusterId(clusterId)
                .setTimeoutMs(30_000).setVoterId(voterId + 1000).setVoterDirectoryId(Uuid.randomUuid())
                .setListeners(listeners)).build(v);
        }, added);
        probeVersions(ApiKeys.REMOVE_RAFT_VOTER, (short) 0, "only-voter",
            v -> new RemoveRaftVoterRequest.Builder(new RemoveRaftVoterRequestData().setClusterId(clusterId)
                .setVoterId(voterId).setVoterDirectoryId(voterDirectoryId)).build(v),
            (RemoveRaftVoterResponse response, short version) ->
                error(response.data().errorCode(), response.data().errorMessage()));
        probeVersions(ApiKeys.REMOVE_RAFT_VOTER, (short) 0, "only-voter-random-directory-id",
            v -> new RemoveRaftVoterRequest.Builder(new RemoveRaftVoterRequestData().setClusterId(clusterId)
                .setVoterId(voterId).setVoterDirectoryId(Uuid.randomUuid())).build(v),
            (RemoveRaftVoterResponse response, short version) ->
                error(response.data().errorCode(), response.data().errorMessage()));
        probeVersions(ApiKeys.REMOVE_RAFT_VOTER, (short) 0, "wrong-cluster-id",
            v -> new RemoveRaftVoterRequest.Builder(new RemoveRaftVoterRequestData().setClusterId("api-probe-cluster")
                .setVoterId(voterId).setVoterDirectoryId(voterDirectoryId)).build(v),
            (RemoveRaftVoterResponse response, short version) ->
                error(response.data().errorCode(), response.data().errorMessage()));
    }

    // 83-87 share group state (the share coordinator's API) -------------------------------------------

    void shareGroupState(String group) throws Exception {
        probeVersions(ApiKeys.READ_SHARE_GROUP_STATE_SUMMARY, (short) 0, "before-initialize",
            v -> readShareGroupStateSummaryRequest(group, v), this::summaryOutcome);
        probeVersions(ApiKeys.READ_SHARE_GROUP_STATE, (short) 0, "before-initialize",
            v -> readShareGroupStateRequest(group, v), this::readOutcome);
        probeVersions(ApiKeys.INITIALIZE_SHARE_GROUP_STATE, (short) 0, "initialize",
            v -> {
                InitializeShareGroupStateRequestData.InitializeStateData topicData =
                    new InitializeShareGroupStateRequestData.InitializeStateData().setTopicId(topicId)
                        .setPartitions(List.of(new InitializeShareGroupStateRequestData.PartitionData()
                            .setPartition(0).setStateEpoch(1).setStartOffset(2)));
                return new InitializeShareGroupStateRequest.Builder(new InitializeShareGroupStateRequestData()
                    .setGroupId(group).setTopics(List.of(topicData))).build(v);
            },
            (InitializeShareGroupStateResponse response, short version) -> {
                List<String> items = new ArrayList<>();
                for (InitializeShareGroupStateResponseData.InitializeStateResult t : response.data().results()) {
                    for (InitializeShareGroupStateResponseData.PartitionResult p : t.partitions()) {
                        items.add(topicName(t.topicId()) + "-" + p.partition() + " " + error(p.errorCode(), p.errorMessage()));
                    }
                }
                return list(items);
            });
        probeVersions(ApiKeys.READ_SHARE_GROUP_STATE, (short) 0, "after-initialize",
            v -> readShareGroupStateRequest(group, v), this::readOutcome);
        probeVersions(ApiKeys.WRITE_SHARE_GROUP_STATE, (short) 0, "write",
            v -> {
                // One batch: offset 2 ACKNOWLEDGED (delivery state 2), delivered once.
                WriteShareGroupStateRequestData.PartitionData partition = new WriteShareGroupStateRequestData.PartitionData()
                    .setPartition(0).setStateEpoch(1).setLeaderEpoch(0).setStartOffset(2)
                    .setStateBatches(List.of(new WriteShareGroupStateRequestData.StateBatch()
                        .setFirstOffset(2).setLastOffset(2).setDeliveryState((byte) 2).setDeliveryCount((short) 1)));
                if (v >= 1) {
                    partition.setDeliveryCompleteCount(1);
                }
                return new WriteShareGroupStateRequest.Builder(new WriteShareGroupStateRequestData().setGroupId(group)
                    .setTopics(List.of(new WriteShareGroupStateRequestData.WriteStateData().setTopicId(topicId)
                        .setPartitions(List.of(partition))))).build(v);
            },
            (WriteShareGroupStateResponse response, short version) -> {
                List<String> items = new ArrayList<>();
                for (WriteShareGroupStateResponseData.WriteStateResult t : response.data().results()) {
                    for (WriteShareGroupStateResponseData.PartitionResult p : t.partitions()) {
                        items.add(topicName(t.topicId()) + "-" + p.partition() + " " + error(p.errorCode(), p.errorMessage()));
                    }
                }
                return list(items);
            });
        probeVersions(ApiKeys.READ_SHARE_GROUP_STATE, (short) 0, "after-write",
            v -> readShareGroupStateRequest(group, v), this::readOutcome);
        probeVersions(ApiKeys.READ_SHARE_GROUP_STATE_SUMMARY, (short) 0, "after-write",
            v -> readShareGroupStateSummaryRequest(group, v), this::summaryOutcome);
        probeVersions(ApiKeys.DELETE_SHARE_GROUP_STATE, (short) 0, "delete",
            v -> new DeleteShareGroupStateRequest.Builder(new DeleteShareGroupStateRequestData().setGroupId(group)
                .setTopics(List.of(new DeleteShareGroupStateRequestData.DeleteStateData().setTopicId(topicId)
                    .setPartitions(List.of(new DeleteShareGroupStateRequestData.PartitionData().setPartition(0))))))
                .build(v),
            (DeleteShareGroupStateResponse response, short version) -> {
                List<String> items = new ArrayList<>();
                for (DeleteShareGroupStateResponseData.DeleteStateResult t : response.data().results()) {
                    for (DeleteShareGroupStateResponseData.PartitionResult p : t.partitions()) {
                        items.add(topicName(t.topicId()) + "-" + p.partition() + " " + error(p.errorCode(), p.errorMessage()));
                    }
                }
                return list(items);
            });
        probeVersions(ApiKeys.READ_SHARE_GROUP_STATE, (short) 0, "after-delete",
            v -> readShareGroupStateRequest(group, v), this::readOutcome);
    }

    AbstractRequest readShareGroupStateRequest(String group, short version) {
        return new ReadShareGroupStateRequest.Builder(new ReadShareGroupStateRequestData().setGroupId(group)
            .setTopics(List.of(new ReadShareGroupStateRequestData.ReadStateData().setTopicId(topicId)
                .setPartitions(List.of(new ReadShareGroupStateRequestData.PartitionData().setPartition(0).setLeaderEpoch(0))))))
            .build(version);
    }

    AbstractRequest readShareGroupStateSummaryRequest(String group, short version) {
        return new ReadShareGroupStateSummaryRequest.Builder(new ReadShareGroupStateSummaryRequestData().setGroupId(group)
            .setTopics(List.of(new ReadShareGroupStateSummaryRequestData.ReadStateSummaryData().setTopicId(topicId)
                .setPartitions(List.of(new ReadShareGroupStateSummaryRequestData.PartitionData().setPartition(0)
                    .setLeaderEpoch(0)))))).build(version);
    }

    String readOutcome(ReadShareGroupStateResponse response, short version) {
        List<String> items = new ArrayList<>();
        for (ReadShareGroupStateResponseData.ReadStateResult t : response.data().results()) {
            for (ReadShareGroupStateResponseData.PartitionResult p : t.partitions()) {
                items.add(topicName(t.topicId()) + "-" + p.partition() + " " + error(p.errorCode(), p.errorMessage())
                    + " stateEpoch=" + p.stateEpoch() + " start=" + p.startOffset() + " batches=" + p.stateBatches().stream()
                        .map(b -> b.firstOffset() + ".." + b.lastOffset() + ":" + b.deliveryState() + "x" + b.deliveryCount())
                        .collect(Collectors.toList()));
            }
        }
        return list(items);
    }

    String summaryOutcome(ReadShareGroupStateSummaryResponse response, short version) {
        List<String> items = new ArrayList<>();
        for (ReadShareGroupStateSummaryResponseData.ReadStateSummaryResult t : response.data().results()) {
            for (ReadShareGroupStateSummaryResponseData.PartitionResult p : t.partitions()) {
                items.add(topicName(t.topicId()) + "-" + p.partition() + " " + error(p.errorCode(), p.errorMessage())
                    + " stateEpoch=" + p.stateEpoch() + " leaderEpoch=" + p.leaderEpoch() + " start=" + p.startOffset()
                    + (version >= 1 ? " deliveryComplete=" + p.deliveryCompleteCount() : ""));
            }
        }
        return list(items);
    }

    // 64 UnregisterBroker ------------------------------------------------------------------------------

    void unregisterBroker() throws Exception {
        Outcome<UnregisterBrokerResponse> outcome = (response, version) ->
            error(response.data().errorCode(), response.data().errorMessage());
        probe(ApiKeys.UNREGISTER_BROKER, version(ApiKeys.UNREGISTER_BROKER, false), "unknown-broker",
            v -> new UnregisterBrokerRequest.Builder(new UnregisterBrokerRequestData().setBrokerId(UNKNOWN_BROKER_ID)).build(v),
            outcome);
        probe(ApiKeys.UNREGISTER_BROKER, version(ApiKeys.UNREGISTER_BROKER, false), "self",
            v -> new UnregisterBrokerRequest.Builder(new UnregisterBrokerRequestData().setBrokerId(brokerId)).build(v),
            outcome);
        // What Metadata shows once the broker's own registration is gone (the controller applies it at once).
        Thread.sleep(UNREGISTER_SETTLE_MS);
        MetadataResponse metadata = (MetadataResponse) send(
            new MetadataRequest.Builder(List.of(topic), false).build(version(ApiKeys.METADATA, false)));
        MetadataResponseData.MetadataResponseTopic described = metadata.data().topics().find(topic);
        System.out.println(ApiKeys.METADATA.id + " " + version(ApiKeys.METADATA, false) + " after-unregister-self -> brokers="
            + metadata.data().brokers().stream().map(b -> String.valueOf(b.nodeId())).collect(Collectors.toList())
            + " " + topic + " " + error(described.errorCode()) + " " + described.partitions().stream()
                .map(p -> p.partitionIndex() + " " + error(p.errorCode()) + " leader=" + p.leaderId())
                .collect(Collectors.toList()));
    }

    // ------------------------------------------------------------------------------------ Admin API

    interface Step {
        void run() throws Exception;
    }

    static void print(String key, Object value) {
        System.out.println("admin." + key + "=" + value);
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

    /** configuredGroup and clientMetrics: null to configure neither. */
    static void runAdmin(String bootstrap, String topic, String configuredGroup, String clientMetrics) throws Exception {
        // The ListConfigResources cases while the broker has no group config and no client metrics subscription.
        ApiProbe unconfigured = new ApiProbe(bootstrap);
        try {
            unconfigured.learnVersions();
            unconfigured.listConfigResources("unconfigured-");
        } finally {
            unconfigured.disconnect();
        }
        Properties properties = new Properties();
        properties.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        properties.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, 15_000);
        properties.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 30_000);
        try (Admin admin = Admin.create(properties)) {
            int brokerId = admin.describeCluster().nodes().get(ADMIN_CALL_TIMEOUT_SECONDS, TimeUnit.SECONDS)
                .iterator().next().id();
            String logDir = admin.describeLogDirs(List.of(brokerId)).allDescriptions()
                .get(ADMIN_CALL_TIMEOUT_SECONDS, TimeUnit.SECONDS).get(brokerId).entrySet().stream()
                .filter(entry -> entry.getValue().replicaInfos().keySet().stream().anyMatch(tp -> tp.topic().equals(topic)))
                .map(Map.Entry::getKey).findFirst().orElse(null);
            print("log-dir", logDir);
            TopicPartitionReplica replica = new TopicPartitionReplica(topic, 0, brokerId);

            listConfigResources(admin, "list-config-resources.unconfigured.");
            boolean configure = configuredGroup != null;
            if (configure) {
                // Config resources of the other types ListConfigResources lists: a group with a dynamic config and
                // a client metrics subscription.
                step("configure-group", () -> {
                    admin.incrementalAlterConfigs(Map.of(new ConfigResource(ConfigResource.Type.GROUP, configuredGroup),
                        List.of(new AlterConfigOp(new ConfigEntry("consumer.session.timeout.ms", "50000"), AlterConfigOp.OpType.SET))))
                        .all().get(ADMIN_CALL_TIMEOUT_SECONDS, TimeUnit.SECONDS);
                    print("configure-group", "ok");
                });
                step("configure-client-metrics", () -> {
                    admin.incrementalAlterConfigs(Map.of(new ConfigResource(ConfigResource.Type.CLIENT_METRICS, clientMetrics),
                        List.of(new AlterConfigOp(new ConfigEntry("interval.ms", "60000"), AlterConfigOp.OpType.SET))))
                        .all().get(ADMIN_CALL_TIMEOUT_SECONDS, TimeUnit.SECONDS);
                    print("configure-client-metrics", "ok");
                });
            }

            step("alter-replica-log-dirs.same-dir", () -> {
                admin.alterReplicaLogDirs(Map.of(replica, logDir)).all().get(ADMIN_CALL_TIMEOUT_SECONDS, TimeUnit.SECONDS);
                print("alter-replica-log-dirs.same-dir", "ok");
            });
            step("alter-replica-log-dirs.nonexistent-dir", () -> {
                admin.alterReplicaLogDirs(Map.of(replica, NONEXISTENT_DIR)).all().get(ADMIN_CALL_TIMEOUT_SECONDS, TimeUnit.SECONDS);
                print("alter-replica-log-dirs.nonexistent-dir", "ok");
            });
            step("describe-features", () -> {
                FeatureMetadata features = admin.describeFeatures().featureMetadata()
                    .get(ADMIN_CALL_TIMEOUT_SECONDS, TimeUnit.SECONDS);
                Map<String, String> finalized = new TreeMap<>();
                for (Map.Entry<String, FinalizedVersionRange> entry : features.finalizedFeatures().entrySet()) {
                    finalized.put(entry.getKey(), entry.getValue().minVersionLevel() + "-" + entry.getValue().maxVersionLevel());
                }
                Map<String, String> supported = new TreeMap<>();
                for (Map.Entry<String, SupportedVersionRange> entry : features.supportedFeatures().entrySet()) {
                    supported.put(entry.getKey(), entry.getValue().minVersion() + "-" + entry.getValue().maxVersion());
                }
                print("describe-features.finalized", finalized);
                print("describe-features.supported", supported);
            });
            if (configure) {
                listConfigResources(admin, "list-config-resources.");
            }
            step("create-delegation-token", () -> {
                admin.createDelegationToken().delegationToken().get(ADMIN_CALL_TIMEOUT_SECONDS, TimeUnit.SECONDS);
                print("create-delegation-token", "ok");
            });
            step("describe-delegation-token", () -> print("describe-delegation-token", "ok "
                + admin.describeDelegationToken().delegationTokens().get(ADMIN_CALL_TIMEOUT_SECONDS, TimeUnit.SECONDS).size()));
            admin.close(Duration.ofSeconds(10));
        }
    }

    /** Admin.listConfigResources of every type (keyPrefix + "all"), then of four types. */
    static void listConfigResources(Admin admin, String keyPrefix) {
        step(keyPrefix + "all", () -> print(keyPrefix + "all",
            resources(admin.listConfigResources().all().get(ADMIN_CALL_TIMEOUT_SECONDS, TimeUnit.SECONDS))));
        step(keyPrefix + "topic-group-client_metrics-broker", () -> print(keyPrefix + "topic-group-client_metrics-broker",
            resources(admin.listConfigResources(Set.of(ConfigResource.Type.TOPIC, ConfigResource.Type.GROUP,
                    ConfigResource.Type.CLIENT_METRICS, ConfigResource.Type.BROKER), new ListConfigResourcesOptions())
                .all().get(ADMIN_CALL_TIMEOUT_SECONDS, TimeUnit.SECONDS))));
    }

    static List<String> resources(Collection<ConfigResource> resources) {
        return resources.stream().map(resource -> resource.type() + ":" + resource.name()).sorted()
            .collect(Collectors.toList());
    }

}
