#!/bin/bash
# Where the broker's CPU goes on one row: a broker on a fresh data directory, an 8-partition topic, 400,000 1 KiB
# records produced (acks=all) or, for `consume`, produced first and then read with ConsumerPerformance, while
# `perf record` samples the broker at 499 Hz. Prints the broker's CPU by thread and its hottest symbols.
# Usage: bench/profile.sh produce|consume [OUT_DIR] (needs perf: apt-get install linux-perf).
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
mode=$1
out=${2:-$(mktemp -d)}
mkdir -p "$out"
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
port=$(free_port); metrics_port=$(free_port)
"${SKEIN_BIN:-$root/target/release/skein}" --listen 127.0.0.1:$port --data-dir "$out/data" --metrics-listen 127.0.0.1:$metrics_port \
  > "$out/broker.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$out/data"' EXIT
for _ in $(seq 120); do (echo > /dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.5; done
tool() { java -Xmx512M -cp "$root/.tools/kafka/libs/*" -Dlog4j2.configurationFile="$root/bench/tools-log4j2.properties" "$@"; }
tool org.apache.kafka.tools.TopicCommand --bootstrap-server 127.0.0.1:$port --create --topic profile --partitions 8 \
  > /dev/null 2>&1
produce() {
  tool org.apache.kafka.tools.ProducerPerformance --topic profile --num-records 400000 --record-size 1024 \
    --throughput -1 --producer-props bootstrap.servers=127.0.0.1:$port acks=all linger.ms=5 | tail -1
}
[ "$mode" = consume ] && produce
perf record -F 499 -g -p $pid -o "$out/perf.data" > /dev/null 2>&1 &
perf_pid=$!
sleep 1
if [ "$mode" = consume ]; then
  tool org.apache.kafka.tools.ConsumerPerformance --bootstrap-server 127.0.0.1:$port --topic profile \
    --messages 400000 --timeout 60000 | tail -1
else
  produce
fi
kill -INT $perf_pid; wait $perf_pid
echo "== broker CPU samples by thread"
perf report -i "$out/perf.data" --no-children --sort comm --stdio -g none 2>/dev/null | grep "%" | grep -v "^#"
echo "== hottest symbols"
perf report -i "$out/perf.data" --no-children --sort symbol --stdio -g none 2>/dev/null | grep "%" | grep -v "^#" \
  | head -15 | cut -c1-120
