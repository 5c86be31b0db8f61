//! Conformance driver for the `rdkafka` crate (Rust bindings to librdkafka).
//!
//!   skein-conformance-rdkafka --bootstrap HOST:PORT --scenario NAME --topic TOPIC [--count N] [--seed S]
//!   skein-conformance-rdkafka --version
//!
//! Exit 0 = pass, 1 = fail (reason on stderr), 2 = scenario not supported.

mod client;
mod cluster;
mod compaction;
mod groups;
mod messages;
mod scenarios;

use std::process::ExitCode;
use std::time::Duration;

/// Hard bound on one scenario run, so a hung client can never hang the caller.
const SCENARIO_TIME_LIMIT: Duration = Duration::from_secs(150);
/// The rdkafka crate version, pinned with `=` in Cargo.toml.
const RDKAFKA_CRATE_VERSION: &str = "0.39.0";

const EXIT_FAIL: u8 = 1;
const EXIT_NOT_SUPPORTED: u8 = 2;

struct Args {
    bootstrap: String,
    scenario: String,
    topic: String,
    count: Option<u64>,
    seed: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut bootstrap = None;
    let mut scenario = None;
    let mut topic = None;
    let mut count = None;
    let mut seed = messages::DEFAULT_SEED;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--bootstrap" => bootstrap = Some(value),
            "--scenario" => scenario = Some(value),
            "--topic" => topic = Some(value),
            "--count" => count = Some(value.parse().map_err(|e| format!("--count {value}: {e}"))?),
            "--seed" => seed = value.parse().map_err(|e| format!("--seed {value}: {e}"))?,
            _ => return Err(format!("unknown argument {flag}")),
        }
    }
    if seed >= 1 << 31 {
        return Err(format!("--seed must be in 0..2^31-1, got {seed}"));
    }
    if count.is_some_and(|count| count >= 1 << 31) {
        return Err("--count must be below 2^31".to_string());
    }
    Ok(Args {
        bootstrap: bootstrap.ok_or("--bootstrap is required")?,
        scenario: scenario.ok_or("--scenario is required")?,
        topic: topic.ok_or("--topic is required")?,
        count,
        seed,
    })
}

fn main() -> ExitCode {
    if std::env::args().skip(1).eq(["--version"]) {
        // One line "NAME VERSION" for the conformance matrix.
        let (_, librdkafka_version) = rdkafka::util::get_rdkafka_version();
        println!("rdkafka {RDKAFKA_CRATE_VERSION} (librdkafka {librdkafka_version})");
        return ExitCode::SUCCESS;
    }
    let args = match parse_args() {
        Ok(args) => args,
        Err(reason) => {
            eprintln!(
                "usage: run --bootstrap HOST:PORT --scenario NAME --topic TOPIC [--count N] [--seed S]: {reason}"
            );
            return ExitCode::from(EXIT_FAIL);
        }
    };

    std::thread::spawn(|| {
        std::thread::sleep(SCENARIO_TIME_LIMIT);
        eprintln!("FAIL: scenario did not finish within {SCENARIO_TIME_LIMIT:?}");
        std::process::exit(i32::from(EXIT_FAIL));
    });

    let ctx = scenarios::Context {
        bootstrap: args.bootstrap,
        topic: args.topic,
        seed: args.seed,
    };
    let count = |default: u64| args.count.unwrap_or(default);
    let outcome = match args.scenario.as_str() {
        "roundtrip" => scenarios::roundtrip(&ctx, count(10_000), "none"),
        "compression-gzip" => scenarios::roundtrip(&ctx, count(2_000), "gzip"),
        "compression-snappy" => scenarios::roundtrip(&ctx, count(2_000), "snappy"),
        "compression-lz4" => scenarios::roundtrip(&ctx, count(2_000), "lz4"),
        "compression-zstd" => scenarios::roundtrip(&ctx, count(2_000), "zstd"),
        "idempotent-produce" => scenarios::idempotent_produce(&ctx, count(10_000)),
        "consumer-group" => groups::consumer_group(&ctx, count(3_000), "classic"),
        "consumer-group-kip848" => groups::consumer_group(&ctx, count(3_000), "consumer"),
        "produce" => scenarios::produce(&ctx, count(10_000)),
        "verify" => scenarios::verify(&ctx, count(10_000)),
        "message-too-large" => scenarios::message_too_large(&ctx),
        "offset-out-of-range" => scenarios::offset_out_of_range(&ctx),
        "list-offsets" => scenarios::list_offsets(&ctx),
        "admin-topics" => scenarios::admin_topics(&ctx),
        "log-compaction" => compaction::log_compaction(&ctx, count(compaction::DEFAULT_COUNT)),
        "cluster" => cluster::cluster(&ctx, count(cluster::DEFAULT_COUNT)),
        other => {
            eprintln!("n/a: the rdkafka driver does not know scenario {other}");
            return ExitCode::from(EXIT_NOT_SUPPORTED);
        }
    };
    match outcome {
        Ok(()) => {
            println!("PASS: {}", args.scenario);
            ExitCode::SUCCESS
        }
        Err(reason) => {
            eprintln!("FAIL: {}: {reason}", args.scenario);
            ExitCode::from(EXIT_FAIL)
        }
    }
}
