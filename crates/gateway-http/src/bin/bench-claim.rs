//! `make bench`'s claim-cost probe: runs the engine's own claim on one lane of a Redis that the
//! bench filled, `--claims` times for up to `--max` messages each, one after another, and prints
//! one JSON object with each claim's latency (µs) and the messages it took. The claimed messages
//! stay leased (nothing is sent). Redis's own time for the claims comes from `INFO commandstats`
//! read just before and after them (a single Redis that nothing else uses meanwhile).

use std::time::Instant;

use clap::Parser;
use gateway_http::engine::{Engine, LaneSpec};

#[derive(Parser)]
struct Args {
    /// The gateway configuration (its `[redis]` and `[engine]` sections are used).
    #[arg(long)]
    config: std::path::PathBuf,
    #[arg(long)]
    sender: String,
    #[arg(long)]
    lane: String,
    #[arg(long, default_value_t = 100)]
    claims: usize,
    #[arg(long, default_value_t = 64)]
    max: usize,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), String> {
    let args = Args::parse();
    let text = std::fs::read_to_string(&args.config).map_err(|e| format!("{}: {e}", args.config.display()))?;
    let config = gateway_http::Config::from_toml(&text).map_err(|e| e.to_string())?;
    let engine = Engine::new(&config.redis, &config.engine)?;
    let lane = LaneSpec { sender: args.sender, lane: args.lane, rate_per_second: 1_000_000, burst: 1_000_000 };
    // The script is loaded and the connection made outside the measurement.
    engine.claim(&lane, 0).await.map_err(|e| e.to_string())?;
    let before = commandstats(&engine).await?;
    let mut latency_us = Vec::with_capacity(args.claims);
    let mut claimed = Vec::with_capacity(args.claims);
    for _ in 0..args.claims {
        let started = Instant::now();
        let batch = engine.claim(&lane, args.max).await.map_err(|e| e.to_string())?;
        latency_us.push(started.elapsed().as_micros() as u64);
        claimed.push(batch.items.len());
    }
    let after = commandstats(&engine).await?;
    let delta = |name: &str, field: &str| {
        let get = |m: &serde_json::Map<String, serde_json::Value>| {
            m.get(name).and_then(|v| v.get(field)).and_then(serde_json::Value::as_u64).unwrap_or(0)
        };
        get(&after).saturating_sub(get(&before))
    };
    let evalsha = serde_json::json!({"calls": delta("evalsha", "calls"), "usec": delta("evalsha", "usec")});
    // Every command but the two INFO reads, including those the scripts ran.
    let commands: u64 = after.keys().filter(|k| *k != "info").map(|k| delta(k, "calls")).sum();
    println!(
        "{}",
        serde_json::json!({"latency_us": latency_us, "claimed": claimed, "evalsha": evalsha, "commands": commands})
    );
    Ok(())
}

/// `INFO commandstats` as `{command: {calls, usec}}`.
async fn commandstats(engine: &Engine) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    let mut c = engine.connection().await.map_err(|e| e.to_string())?;
    let info: String = redis::cmd("INFO").arg("commandstats").query_async(&mut c).await.map_err(|e| e.to_string())?;
    let mut out = serde_json::Map::new();
    for line in info.lines() {
        let Some((name, fields)) = line.strip_prefix("cmdstat_").and_then(|l| l.split_once(':')) else { continue };
        let mut stat = serde_json::Map::new();
        for (k, v) in fields.split(',').filter_map(|f| f.split_once('=')) {
            if let Ok(n) = v.parse::<u64>() {
                stat.insert(k.to_owned(), n.into());
            }
        }
        out.insert(name.to_owned(), stat.into());
    }
    Ok(out)
}
