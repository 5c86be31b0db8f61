import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * The consumer-group scenarios' bookkeeping (conformance/common/messages.md, "Consumer group scenarios";
 * this reimplements conformance/common/groups.py): which member received each (partition, offset) of the
 * messages first..first+count-1, and which partitions each member holds.
 */
final class GroupTally {
    /** Messages produced after the first two members closed; the third member must receive exactly these. */
    static final int RESUME_COUNT = 10;
    /** A classic member learns of a rebalance through its heartbeat; a short interval makes that quick. */
    static final int CLASSIC_HEARTBEAT_INTERVAL_MS = 500;
    static final Duration GROUP_CONSUME_TIME_LIMIT = Duration.ofSeconds(60);
    static final Duration RESUME_CONSUME_TIME_LIMIT = Duration.ofSeconds(30);
    /** After the third member received its messages it keeps polling this long: nothing more may arrive. */
    static final Duration STRAY_WAIT = Duration.ofSeconds(1);

    private final List<String> members;
    private final long first;
    private final int count;
    private final Set<List<Long>> expected = new HashSet<>();
    private final Map<List<Long>, String> receiver = new HashMap<>();
    private final Map<String, Set<Integer>> assignment = new LinkedHashMap<>();
    private final Map<String, Boolean> everAssigned = new HashMap<>();

    GroupTally(Collection<String> members, long first, int count) {
        this.members = new ArrayList<>(members);
        this.first = first;
        this.count = count;
        for (long i = first; i < first + count; i++) {
            expected.add(List.of((long) Messages.partition(i), i / Messages.PARTITIONS));
        }
        for (String member : members) {
            assignment.put(member, new TreeSet<>());
            everAssigned.put(member, false);
        }
    }

    /** The scenario's group: new for every topic, so no earlier run left offsets in it. */
    static String groupId(String topic) {
        return topic + "-group";
    }

    /** Roundtrip message at `offset` of `partition` in a topic holding messages 0, 1, 2, ... in order. */
    static long messageIndex(int partition, long offset) {
        return partition + (long) Messages.PARTITIONS * offset;
    }

    void record(String member, int partition, long offset) throws Driver.Failure {
        List<Long> position = List.of((long) partition, offset);
        String earlier = receiver.get(position);
        if (earlier != null) {
            throw new Driver.Failure("partition " + partition + " offset " + offset + " was delivered twice: to "
                    + earlier + " and to " + member);
        }
        if (!expected.contains(position)) {
            throw new Driver.Failure(member + " received partition " + partition + " offset " + offset + " (message "
                    + messageIndex(partition, offset) + "); only messages " + first + ".." + (first + count - 1)
                    + " were to be consumed now");
        }
        receiver.put(position, member);
    }

    void noteAssignment(String member, Set<Integer> partitions) {
        assignment.put(member, new TreeSet<>(partitions));
        if (!partitions.isEmpty()) {
            everAssigned.put(member, true);
        }
    }

    boolean allReceived() {
        return receiver.size() == expected.size();
    }

    /** Every member holds a partition, none is held twice, and together they hold partitions 0..2. */
    boolean settled() {
        Set<Integer> union = new TreeSet<>();
        int held = 0;
        for (Set<Integer> partitions : assignment.values()) {
            if (partitions.isEmpty()) {
                return false;
            }
            held += partitions.size();
            union.addAll(partitions);
        }
        return held == union.size() && union.size() == Messages.PARTITIONS;
    }

    String progress() {
        List<String> parts = new ArrayList<>();
        for (String member : members) {
            long received = receiver.values().stream().filter(member::equals).count();
            parts.add(member + ": " + received + " records, assignment " + assignment.get(member)
                    + (everAssigned.get(member) ? "" : " (never assigned any partition)"));
        }
        return receiver.size() + " of " + expected.size() + " records received (" + String.join(", ", parts) + ")";
    }
}
