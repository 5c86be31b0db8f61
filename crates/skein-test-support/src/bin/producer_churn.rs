//! Benchmark (not a test): many short-lived idempotent producers against one broker, printing the broker's
//! resident memory as producers come and go, before and after producer-id expiry.
//!
//! Each producer asks for a producer id (InitProducerId) and appends one idempotent batch to each of the topic's
//! partitions, then never returns — the pattern of short-lived producers (serverless functions, scripts) that makes
//! producer state grow. Usage: `producer_churn [PRODUCERS]` (default 10000); set `SKEIN_BIN` to pick the binary.

use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::InitProducerIdRequest;
use skein_test_support::requests::{create_topic, produce};
use skein_test_support::{TestBroker, simple_batch};

const PARTITIONS: i32 = 3;
const TOPIC: &str = "churn";

fn idempotent_batch(producer_id: i64) -> anyhow::Result<Bytes> {
    let mut batch = simple_batch(1, 1_700_000_000_000, 100)?.to_vec();
    batch[43..51].copy_from_slice(&producer_id.to_be_bytes());
    batch[51..53].copy_from_slice(&0i16.to_be_bytes());
    batch[53..57].copy_from_slice(&0i32.to_be_bytes());
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
    Ok(Bytes::from(batch))
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn main() -> anyhow::Result<()> {
    let producers: usize = std::env::args().nth(1).map(|n| n.parse()).transpose()?.unwrap_or(10_000);
    // Expiry is made short so the run can show that state is released, not only that it grows.
    let mut broker = TestBroker::start_with_yaml(
        "producer.id.expiration.ms: 20000\nproducer.id.expiration.check.interval.ms: 5000\n",
    )?;
    let mut client = broker.client()?;
    create_topic(&mut client, TOPIC, PARTITIONS, &[])?;
    let start = Instant::now();
    let baseline = broker.memory_bytes("VmRSS")?;
    println!("| producers | elapsed s | broker RSS MiB | producers/s |");
    println!("|---:|---:|---:|---:|");
    println!("| 0 | 0.0 | {:.1} | - |", mib(baseline));
    let step = (producers / 10).max(1);
    for n in 1..=producers {
        let init = client.request(4, &InitProducerIdRequest::default().with_transaction_timeout_ms(60_000))?;
        anyhow::ensure!(init.error_code == 0, "InitProducerId failed with {}", init.error_code);
        for partition in 0..PARTITIONS {
            let answer = produce(&mut client, TOPIC, partition, idempotent_batch(init.producer_id.0)?, -1)?;
            anyhow::ensure!(answer.error_code == 0, "produce failed with {}", answer.error_code);
        }
        if n % step == 0 || n == producers {
            let elapsed = start.elapsed().as_secs_f64();
            println!("| {n} | {elapsed:.1} | {:.1} | {:.0} |", mib(broker.memory_bytes("VmRSS")?), n as f64 / elapsed);
        }
    }
    // Wait past producer.id.expiration.ms plus one check interval, then restart to show what is persisted.
    std::thread::sleep(Duration::from_secs(30));
    println!(
        "| after expiry (30 s idle) | {:.1} | {:.1} | - |",
        start.elapsed().as_secs_f64(),
        mib(broker.memory_bytes("VmRSS")?)
    );
    broker.restart()?;
    println!("| after restart | - | {:.1} | - |", mib(broker.memory_bytes("VmRSS")?));
    let log = broker.log_tail();
    let expired_lines: Vec<&str> = log.lines().filter(|l| l.contains("expired idle producer ids")).collect();
    println!("\nexpiry log lines: {}", expired_lines.len());
    for line in expired_lines {
        println!("  {line}");
    }
    Ok(())
}
