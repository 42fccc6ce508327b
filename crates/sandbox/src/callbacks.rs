//! INCS `message_status_update` callbacks (seeds/003): after an accepted send, `sent`, `delivered`
//! and `read` are POSTed to the configured URL at their offsets after acceptance.
//!
//! Sends happen on actix worker threads, the callbacks on the runtime that called `spawn`: a
//! dispatcher task there takes jobs from an unbounded channel (sending never blocks a handler) and
//! runs one task per message, so each message's callbacks stay in order while messages overlap.
//! Aborting the dispatcher aborts every pending callback with it.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};

use crate::incs::MessageStatus;

/// A callback target that hangs must not pile up tasks forever.
const CALLBACK_TIMEOUT: Duration = Duration::from_secs(10);

/// One accepted message whose status callbacks are due.
#[derive(Debug)]
pub(crate) struct StatusCallback {
    pub(crate) message_id: String,
    pub(crate) channel_id: u64,
    pub(crate) business_phone: String,
    pub(crate) accepted: Instant,
    pub(crate) accepted_at_ms: i64,
}

/// The body INCS posts, fields in the document's order.
#[derive(Debug, Serialize)]
struct MessageStatusUpdate<'a> {
    event: &'static str,
    channel_id: u64,
    business_phone: &'a str,
    message_id: &'a str,
    message_status: &'static str,
    /// Always null: the sandbox simulates only successful deliveries.
    error: Option<()>,
    received_at: i64,
}

#[derive(Clone)]
pub(crate) struct CallbackQueue {
    jobs: mpsc::UnboundedSender<StatusCallback>,
}

impl CallbackQueue {
    pub(crate) fn enqueue(&self, callback: StatusCallback) {
        if let Err(unsent) = self.jobs.send(callback) {
            tracing::warn!(message_id = %unsent.0.message_id, "callback dispatcher stopped; callbacks dropped");
        }
    }
}

/// Starts the dispatcher on the current runtime.
pub(crate) fn start(url: String, delays: [Duration; 3]) -> io::Result<(CallbackQueue, JoinHandle<()>)> {
    let client = reqwest::Client::builder()
        .timeout(CALLBACK_TIMEOUT)
        .user_agent(concat!("provider-sandbox/", env!("CARGO_PKG_VERSION")))
        // The sandbox serves local development; a developer's HTTP proxy must not capture callbacks.
        .no_proxy()
        .build()
        .map_err(io::Error::other)?;
    let (jobs, queue) = mpsc::unbounded_channel();
    let task = tokio::spawn(dispatch(queue, client, Arc::from(url), delays));
    Ok((CallbackQueue { jobs }, task))
}

async fn dispatch(
    mut queue: mpsc::UnboundedReceiver<StatusCallback>,
    client: reqwest::Client,
    url: Arc<str>,
    delays: [Duration; 3],
) {
    let mut in_flight = JoinSet::new();
    loop {
        tokio::select! {
            job = queue.recv() => match job {
                Some(job) => {
                    in_flight.spawn(deliver(client.clone(), Arc::clone(&url), delays, job));
                }
                None => break,
            },
            // Reap finished messages so the set does not grow with every send.
            Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
        }
    }
    while in_flight.join_next().await.is_some() {}
}

/// Posts one message's callbacks in order, each at its offset after acceptance (or right after
/// the previous one, if that took longer).
async fn deliver(client: reqwest::Client, url: Arc<str>, delays: [Duration; 3], job: StatusCallback) {
    for (status, delay) in MessageStatus::PROGRESSION.into_iter().zip(delays) {
        tokio::time::sleep_until((job.accepted + delay).into()).await;
        let delay_ms = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
        let update = MessageStatusUpdate {
            event: "message_status_update",
            channel_id: job.channel_id,
            business_phone: &job.business_phone,
            message_id: &job.message_id,
            message_status: status.as_str(),
            error: None,
            received_at: job.accepted_at_ms.saturating_add(delay_ms).div_euclid(1000),
        };
        match client.post(&*url).json(&update).send().await {
            Ok(response) if response.status().is_success() => {
                tracing::debug!(message_id = %job.message_id, status = status.as_str(), "callback delivered");
            }
            Ok(response) => tracing::warn!(
                message_id = %job.message_id,
                status = status.as_str(),
                http_status = response.status().as_u16(),
                "callback refused"
            ),
            Err(error) => tracing::warn!(
                message_id = %job.message_id,
                status = status.as_str(),
                %error,
                "callback not delivered"
            ),
        }
    }
}
