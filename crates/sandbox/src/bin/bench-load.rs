//! `bench-load`: the small load generator of `make bench` for what `wrk` cannot do.
//!
//! - `--rate R --duration S`: open loop, R requests per second for S seconds, each sent at its
//!   scheduled instant whatever the answers do. Latency is measured from the scheduled instant, so a
//!   stalled server (or a late generator) shows up as latency instead of silently lowering the rate
//!   (no coordinated omission).
//! - `--count N --concurrency C`: exactly N requests, C in flight (filling a queue).
//!
//! `--retry-transport N` makes it behave like a careful caller: every request carries its own
//! `Idempotency-Key`, and a try that gets no HTTP answer (a transport error: refused, reset, timed
//! out) is sent again with the same key, up to N more times (as is a 409 "still in progress" that
//! answers such a retry). Latency then runs to the last try's answer.
//!
//! Prints one JSON summary line on stdout: `statuses` by each request's final answer (`0`: every try
//! failed at transport level), `transport_errors` (tries without an answer, retried or not) and
//! `retried` (requests sent more than once). `--latencies-out FILE` writes `<latency µs> <status>`
//! per request.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use tokio::sync::{mpsc, Semaphore};

#[derive(Debug, Parser)]
#[command(name = "bench-load", about = "Constant-rate or fixed-count JSON POST load for make bench")]
struct Cli {
    #[arg(long)]
    url: String,
    /// The JSON body to POST.
    #[arg(long)]
    body: String,
    /// Extra request headers, `Name: value` (repeatable).
    #[arg(long = "header")]
    headers: Vec<String>,
    /// Requests per second (open loop); needs --duration.
    #[arg(long, requires = "duration", conflicts_with = "count")]
    rate: Option<f64>,
    /// Seconds of open-loop load.
    #[arg(long)]
    duration: Option<f64>,
    /// Total requests (closed loop); needs --concurrency.
    #[arg(long, requires = "concurrency")]
    count: Option<u64>,
    /// Requests in flight in the closed loop.
    #[arg(long)]
    concurrency: Option<usize>,
    /// Most requests in flight in the open loop; beyond it the schedule waits (and it shows as latency).
    #[arg(long, default_value_t = 1024)]
    max_in_flight: usize,
    #[arg(long, default_value_t = 10)]
    timeout_secs: u64,
    #[arg(long)]
    latencies_out: Option<std::path::PathBuf>,
    /// Retries of a try that got no HTTP answer, with the request's own `Idempotency-Key` (0: no
    /// key, no retry).
    #[arg(long, default_value_t = 0)]
    retry_transport: u32,
}

/// One request: latency in µs and its [`Outcome`].
type Sample = (u64, Outcome);

/// What one request came to.
#[derive(Clone, Copy)]
struct Outcome {
    /// The last try's HTTP status; 0 when no try got an answer.
    status: u16,
    /// Tries that got no HTTP answer.
    unanswered: u32,
    tries: u32,
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn headers(cli: &Cli) -> Result<HeaderMap, String> {
    let mut map = HeaderMap::new();
    map.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    for h in &cli.headers {
        let (name, value) = h.split_once(':').ok_or_else(|| format!("--header {h:?} is not `Name: value`"))?;
        let name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|e| format!("--header {name:?}: {e}"))?;
        let value = HeaderValue::from_str(value.trim()).map_err(|e| format!("--header value: {e}"))?;
        map.insert(name, value);
    }
    Ok(map)
}

async fn post_once(client: &reqwest::Client, url: &str, body: &str, key: Option<&str>) -> u16 {
    let mut request = client.post(url).body(body.to_owned());
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            // Read the body so the connection goes back to the pool.
            let _ = response.bytes().await;
            status
        }
        Err(_) => 0,
    }
}

/// How a request is sent: once, or with its own idempotency key and up to `retries` more tries.
#[derive(Clone)]
struct Sender {
    client: reqwest::Client,
    url: Arc<str>,
    body: Arc<str>,
    retries: u32,
    /// Unique to this run, so keys never meet a record of an earlier run.
    run: Arc<str>,
}

impl Sender {
    async fn post(&self, request: u64) -> Outcome {
        let key = (self.retries > 0).then(|| format!("{}-{request}", self.run));
        let mut outcome = Outcome { status: 0, unanswered: 0, tries: 0 };
        loop {
            outcome.status = post_once(&self.client, &self.url, &self.body, key.as_deref()).await;
            outcome.tries += 1;
            outcome.unanswered += u32::from(outcome.status == 0);
            // A 409 answers a retry whose first try is still being handled: wait and ask again.
            let again = outcome.status == 0 || (outcome.status == 409 && outcome.unanswered > 0);
            if !again || outcome.tries > self.retries {
                return outcome;
            }
            tokio::time::sleep(Duration::from_millis(100 * u64::from(outcome.tries))).await;
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let headers = match headers(&cli) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("{e}");
            return std::process::ExitCode::from(2);
        }
    };
    let client = match reqwest::Client::builder()
        .default_headers(headers)
        .timeout(Duration::from_secs(cli.timeout_secs))
        .pool_max_idle_per_host(4096)
        .tcp_nodelay(true)
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("http client: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let run = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let sender = Sender {
        client,
        url: cli.url.clone().into(),
        body: cli.body.clone().into(),
        retries: cli.retry_transport,
        run: format!("bench-load-{}-{}", run.as_nanos(), std::process::id()).into(),
    };
    let (tx, mut rx) = mpsc::unbounded_channel::<Sample>();
    let start = Instant::now();

    let mode = match (cli.rate, cli.duration, cli.count, cli.concurrency) {
        (Some(rate), Some(duration), None, _) if rate > 0.0 && duration > 0.0 => {
            let total = (rate * duration).round() as u64;
            let limit = Arc::new(Semaphore::new(cli.max_in_flight.max(1)));
            for i in 0..total {
                let due = start + Duration::from_secs_f64(i as f64 / rate);
                tokio::time::sleep_until(due.into()).await;
                let Ok(permit) = limit.clone().acquire_owned().await else { break };
                let (sender, tx) = (sender.clone(), tx.clone());
                tokio::spawn(async move {
                    let outcome = sender.post(i).await;
                    let _ = tx.send((due.elapsed().as_micros() as u64, outcome));
                    drop(permit);
                });
            }
            "rate"
        }
        (None, _, Some(count), Some(concurrency)) if concurrency > 0 => {
            let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
            for _ in 0..concurrency {
                let (sender, tx, next) = (sender.clone(), tx.clone(), next.clone());
                tokio::spawn(async move {
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if i >= count {
                            break;
                        }
                        let sent = Instant::now();
                        let outcome = sender.post(i).await;
                        let _ = tx.send((sent.elapsed().as_micros() as u64, outcome));
                    }
                });
            }
            "count"
        }
        _ => {
            eprintln!("give --rate R --duration S, or --count N --concurrency C");
            return std::process::ExitCode::from(2);
        }
    };
    drop(tx);

    let mut samples = Vec::new();
    while let Some(s) = rx.recv().await {
        samples.push(s);
    }
    let elapsed = start.elapsed().as_secs_f64();

    if let Some(path) = &cli.latencies_out {
        let written = std::fs::File::create(path).and_then(|f| {
            let mut w = std::io::BufWriter::new(f);
            for (us, outcome) in &samples {
                writeln!(w, "{us} {}", outcome.status)?;
            }
            w.flush()
        });
        if let Err(e) = written {
            eprintln!("{}: {e}", path.display());
            return std::process::ExitCode::FAILURE;
        }
    }

    let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
    for (_, outcome) in &samples {
        *statuses.entry(outcome.status.to_string()).or_default() += 1;
    }
    let transport_errors: u64 = samples.iter().map(|(_, o)| u64::from(o.unanswered)).sum();
    let retried = samples.iter().filter(|(_, o)| o.tries > 1).count();
    let mut latencies: Vec<u64> = samples.iter().map(|(us, _)| *us).collect();
    latencies.sort_unstable();
    let ms = |us: u64| us as f64 / 1000.0;
    let summary = serde_json::json!({
        "mode": mode,
        "requests": samples.len(),
        "statuses": statuses,
        "transport_errors": transport_errors,
        "retried": retried,
        "elapsed_s": elapsed,
        "achieved_rate": samples.len() as f64 / elapsed,
        "p50_ms": ms(percentile(&latencies, 50.0)),
        "p99_ms": ms(percentile(&latencies, 99.0)),
        "max_ms": ms(latencies.last().copied().unwrap_or(0)),
    });
    println!("{summary}");
    std::process::ExitCode::SUCCESS
}
