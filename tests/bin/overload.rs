//! `overload`: many concurrent connections sending `POST /v1/messages` for a while, each response
//! timed and classified, for `make overload`. Prints one JSON report.
//!
//! Env: `OVERLOAD_URL` (the gateway), `OVERLOAD_KEY` (API key), `OVERLOAD_CONNECTIONS` (1000),
//! `OVERLOAD_SECS` (10).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::Arc;
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

/// An answer's head, as read off the connection.
struct Head {
    status: u16,
    retry_after: bool,
    closes: bool,
    head_len: usize,
    body_len: usize,
}

/// The head of the answer at the start of `buf`, once it is all there; `Err` for what is not an
/// HTTP/1.1 answer framed by `Content-Length` (which every answer of the gateway is).
fn parse_head(buf: &[u8]) -> Result<Option<Head>, ()> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut res = httparse::Response::new(&mut headers);
    let head_len = match res.parse(buf).map_err(|_| ())? {
        httparse::Status::Complete(n) => n,
        httparse::Status::Partial => return Ok(None),
    };
    let header = |name: &str| res.headers.iter().find(|h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value);
    let body_len = header("content-length").and_then(|v| std::str::from_utf8(v).ok()?.trim().parse().ok()).ok_or(())?;
    Ok(Some(Head {
        status: res.code.ok_or(())?,
        retry_after: header("retry-after").is_some(),
        closes: header("connection").is_some_and(|v| v.eq_ignore_ascii_case(b"close")),
        head_len,
        body_len,
    }))
}

/// One connection's sends until `deadline`: a plain HTTP/1.1 connection of its own, each request
/// written as soon as the previous answer has been read, as a caller with one socket would. The
/// request is written as bytes and the answer's head parsed with `httparse`, as `wrk` does: the
/// client shares the two CPUs with what it measures, and every cycle it spends is one the gateway
/// does not get.
async fn connection(addr: std::net::SocketAddr, request: Arc<[u8]>, start: Instant, deadline: Instant) -> Vec<Outcome> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let failed = Outcome { status: 0, micros: 0, retry_after: false };
    let mut out = Vec::new();
    let Ok(mut stream) = tokio::net::TcpStream::connect(addr).await else {
        out.push(failed);
        return out;
    };
    let _ = stream.set_nodelay(true);
    // Every connection is open before the first send, so the clock measures sends, not the
    // kernel's queue of 1,000 simultaneous connects.
    tokio::time::sleep_until(start.into()).await;
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    'sends: while Instant::now() < deadline {
        // From the request's hand-over to the socket to the answer's status line and headers
        // (what a caller acts on); the body is read after the clock stops.
        let sent = Instant::now();
        if stream.write_all(&request).await.is_err() {
            out.push(failed);
            break;
        }
        let head = loop {
            match parse_head(&buf) {
                Ok(Some(head)) => break head,
                Ok(None) => {}
                Err(()) => {
                    out.push(failed);
                    break 'sends;
                }
            }
            if !matches!(stream.read_buf(&mut buf).await, Ok(n) if n > 0) {
                out.push(failed);
                break 'sends;
            }
        };
        let micros = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
        let whole = head.head_len + head.body_len;
        while buf.len() < whole {
            if !matches!(stream.read_buf(&mut buf).await, Ok(n) if n > 0) {
                out.push(failed);
                break 'sends;
            }
        }
        buf.drain(..whole);
        out.push(Outcome { status: head.status, micros, retry_after: head.retry_after });
        if head.closes {
            // The gateway closed it: counted, since a refusal should keep its connection.
            out.push(failed);
            break;
        }
    }
    out
}

fn main() {
    let base = std::env::var("OVERLOAD_URL").expect("OVERLOAD_URL");
    let authority = base.trim_start_matches("http://").trim_end_matches('/').to_owned();
    let addr: std::net::SocketAddr =
        std::net::ToSocketAddrs::to_socket_addrs(&authority).unwrap().next().expect("an address");
    let key = std::env::var("OVERLOAD_KEY").expect("OVERLOAD_KEY");
    let connections: usize = env_or("OVERLOAD_CONNECTIONS", 1000);
    let secs: u64 = env_or("OVERLOAD_SECS", 10);
    let threads = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
    // Connecting 1,000 sockets takes a moment; the load starts for all of them together.
    let start = Instant::now() + Duration::from_secs(2);
    let deadline = start + Duration::from_secs(secs);
    // One single-threaded runtime per core, each with its share of the connections (as `wrk` has
    // it): a connection's answer is handled on the thread that sent its request, with no work
    // stealing between them.
    let body = json!({"channel": "whatsapp", "to": "85268411234", "type": "text", "text": "overload"}).to_string();
    let request: Arc<[u8]> = format!(
        "POST /v1/messages HTTP/1.1\r\nHost: {authority}\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
    .into();
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let request = request.clone();
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                let local = tokio::task::LocalSet::new();
                local.block_on(&runtime, async move {
                    let tasks: Vec<_> = (t..connections)
                        .step_by(threads)
                        .map(|_| tokio::task::spawn_local(connection(addr, request.clone(), start, deadline)))
                        .collect();
                    let mut all = Vec::new();
                    for task in tasks {
                        all.extend(task.await.unwrap());
                    }
                    all
                })
            })
        })
        .collect();
    let all: Vec<Outcome> = workers.into_iter().flat_map(|w| w.join().unwrap()).collect();
    let elapsed = start.elapsed().as_secs_f64();
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
