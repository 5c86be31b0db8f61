package conformance

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"time"
)

// The cluster scenario (messages.md, "Cluster scenario"; check_cluster_metadata in messages.py).
const (
	ClusterBrokers           = 3
	ClusterReplicationFactor = 3
	// ClusterMetadataWait: brokers learn of a new topic a moment apart; the driver re-reads the metadata
	// this long (every ClusterMetadataInterval) before it fails the check.
	ClusterMetadataWait     = 30 * time.Second
	ClusterMetadataInterval = 500 * time.Millisecond
)

// PartitionInfo is one partition as the client's metadata shows it (broker ids).
type PartitionInfo struct {
	Leader   int32
	Replicas []int32
	ISR      []int32
}

// CheckClusterMetadata checks the client's view of the cluster: brokers maps node id to its advertised
// host:port, partitions are TOPIC's partitions by number.
func CheckClusterMetadata(bootstrap string, brokers map[int32]string, partitions map[int32]PartitionInfo) error {
	if len(brokers) != ClusterBrokers {
		return Failf("metadata lists %d brokers, expected %d: %v", len(brokers), ClusterBrokers, brokers)
	}
	endpoints := make(map[string]bool)
	for _, address := range brokers {
		endpoints[address] = true
	}
	if len(endpoints) != ClusterBrokers {
		return Failf("brokers share an advertised address: %v", brokers)
	}
	if !endpoints[bootstrap] {
		return Failf("the bootstrap address %s is not a listed broker: %v", bootstrap, brokers)
	}
	numbers := make([]int32, 0, len(partitions))
	for number := range partitions {
		numbers = append(numbers, number)
	}
	slices.Sort(numbers)
	if !slices.Equal(numbers, []int32{0, 1, 2}) {
		return Failf("topic has partitions %v, expected 0..%d", numbers, Partitions-1)
	}
	leaders := make(map[int32]bool)
	for _, number := range numbers {
		info := partitions[number]
		where := fmt.Sprintf("partition %d (leader %d, replicas %v, isr %v)", number, info.Leader, info.Replicas, info.ISR)
		replicas := slices.Clone(info.Replicas)
		slices.Sort(replicas)
		if len(replicas) != ClusterReplicationFactor || len(slices.Compact(slices.Clone(replicas))) != len(replicas) {
			return Failf("%s: expected %d distinct replicas", where, ClusterReplicationFactor)
		}
		for _, replica := range replicas {
			if _, ok := brokers[replica]; !ok {
				return Failf("%s: a replica is not a listed broker %v", where, brokers)
			}
		}
		isr := slices.Clone(info.ISR)
		slices.Sort(isr)
		if !slices.Equal(isr, replicas) {
			return Failf("%s: the in-sync replicas are not all the replicas", where)
		}
		if !slices.Contains(replicas, info.Leader) {
			return Failf("%s: the leader is not a replica", where)
		}
		leaders[info.Leader] = true
	}
	if len(leaders) != Partitions {
		return Failf("partition leaders %v: expected every partition led by a different broker", partitions)
	}
	return nil
}

// HostPort joins a host and port as the bootstrap address is written.
func HostPort(host string, port int32) string {
	return net.JoinHostPort(host, strconv.Itoa(int(port)))
}
