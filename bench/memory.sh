#!/bin/bash
# The broker's resident memory as RocksDB's settings bound it: a broker on a fresh data directory, 300,000
# 1 KiB records produced (acks=all) and consumed with Kafka's perf tools, then 20 s idle; VmRSS after each step
# and the peak (VmHWM). Usage: bench/memory.sh NAME [KEY=VALUE ...] (the settings are passed as --override).
# Example: bench/memory.sh small storage.block.cache.bytes=8388608 storage.log.write.buffer.bytes=8388608 \
#            storage.total.write.buffer.bytes=16777216 storage.max.open.files=64
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
name=$1; shift
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
port=$(free_port); metrics_port=$(free_port)
args=()
for setting in "$@"; do args+=(--override "$setting"); done
"${SKEIN_BIN:-$root/target/release/skein}" --listen 127.0.0.1:$port --data-dir "$dir/data" --metrics-listen 127.0.0.1:$metrics_port \
  "${args[@]}" > "$dir/broker.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 120); do (echo > /dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.5; done
sleep 2
rss() { awk '/VmRSS/{print int($2/1024)}' /proc/$pid/status; }
tool() { java -Xmx512M -cp "$root/.tools/kafka/libs/*" -Dlog4j2.configurationFile="$root/bench/tools-log4j2.properties" "$@"; }
echo "$name: started: $(rss) MiB"
tool org.apache.kafka.tools.ProducerPerformance --topic memory --num-records 300000 --record-size 1024 \
  --throughput -1 --producer-props bootstrap.servers=127.0.0.1:$port acks=all linger.ms=5 | tail -1
echo "$name: after produce: $(rss) MiB"
tool org.apache.kafka.tools.ConsumerPerformance --bootstrap-server 127.0.0.1:$port --topic memory \
  --messages 300000 --timeout 60000 | tail -1
echo "$name: after consume: $(rss) MiB"
sleep 20
echo "$name: idle 20 s later: $(rss) MiB, peak $(awk '/VmHWM/{print int($2/1024)}' /proc/$pid/status) MiB"
