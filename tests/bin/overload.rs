//! `overload`: many concurrent connections sending `POST /v1/messages` for a while, each response
//! timed and classified, for `make overload`. Prints one JSON report.
//!
//! Env: `OVERLOAD_URL` (the gateway), `OVERLOAD_KEY` (API key), `OVERLOAD_CONNECTIONS` (1000),
//! `OVERLOAD_SECS` (10).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::json;

struct Outcome {
    status: u16,
    micros: u64,
    retry_after: bool,
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i] as f64 / 1000.0
}

fn summary(outcomes: &[&Outcome]) -> serde_json::Value {
    let mut micros: Vec<u64> = outcomes.iter().map(|o| o.micros).collect();
    micros.sort_unstable();
    json!({
        "count": outcomes.len(),
        "p50_ms": percentile(&micros, 0.50),
        "p99_ms": percentile(&micros, 0.99),
        "max_ms": micros.last().map_or(0.0, |m| *m as f64 / 1000.0),
        "without_retry_after": outcomes.iter().filter(|o| !o.retry_after).count(),
    })
}

#[tokio::main]
async fn main() {
    let url = format!("{}/v1/messages", std::env::var("OVERLOAD_URL").expect("OVERLOAD_URL"));
    let key = std::env::var("OVERLOAD_KEY").expect("OVERLOAD_KEY");
    let connections: usize = env_or("OVERLOAD_CONNECTIONS", 1000);
    let secs: u64 = env_or("OVERLOAD_SECS", 10);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .timeout(Duration::from_secs(30))
        .no_proxy()
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let tasks: Vec<_> = (0..connections)
        .map(|c| {
            let (client, url, key) = (client.clone(), url.clone(), key.clone());
            tokio::spawn(async move {
                let mut out = Vec::new();
                let mut n = 0u64;
                while Instant::now() < deadline {
                    let body = json!({"channel": "whatsapp", "to": "85268411234", "type": "text",
                        "text": format!("overload {c}-{n}")});
                    n += 1;
                    let request = client.post(&url).bearer_auth(&key).json(&body);
                    // From the hand-over to the HTTP client to the answer's status line and
                    // headers (what a caller acts on); the body is read after the clock stops.
                    let sent = Instant::now();
                    let res = request.send().await;
                    let micros = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
                    let (status, retry_after) = match res {
                        Ok(r) => {
                            let retry_after = r.headers().contains_key("retry-after");
                            let status = r.status().as_u16();
                            let _ = r.bytes().await;
                            (status, retry_after)
                        }
                        Err(_) => (0, false),
                    };
                    out.push(Outcome { status, micros, retry_after });
                }
                out
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut by_status: BTreeMap<u16, usize> = BTreeMap::new();
    for o in &all {
        *by_status.entry(o.status).or_default() += 1;
    }
    let refused: Vec<&Outcome> = all.iter().filter(|o| o.status == 429 || o.status == 503).collect();
    let accepted: Vec<&Outcome> = all.iter().filter(|o| o.status == 202).collect();
    let other_5xx = all.iter().filter(|o| o.status >= 500 && o.status != 503).count();
    let report = json!({
        "connections": connections,
        "seconds": elapsed,
        "requests": all.len(),
        "by_status": by_status.iter().map(|(s, n)| (s.to_string(), *n)).collect::<BTreeMap<_, _>>(),
        "accepted": summary(&accepted),
        "refused": summary(&refused),
        "other_5xx": other_5xx,
        "connection_errors": by_status.get(&0).copied().unwrap_or(0),
    });
    println!("{}", serde_json::to_string_pretty(&report).unwrap());
}
