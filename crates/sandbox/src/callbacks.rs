//! Outgoing status callbacks: after an accepted send, each provider half enqueues the bodies it
//! will POST and when (INCS `message_status_update` `sent`/`delivered`/`read`, seeds/003; InnoPaaS
//! `whatsapp_message_status_updated` `delivered`/`read`, PROVIDERS.md §2.6). One dispatcher per
//! provider, each with its own URL and static headers.
//!
//! Sends happen on actix worker threads, the callbacks on the runtime that called `spawn`: a
//! dispatcher task there takes jobs from an unbounded channel (sending never blocks a handler) and
//! runs one task per message, so each message's callbacks stay in order while messages overlap.
//! Aborting the dispatcher aborts every pending callback with it.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, CONTENT_TYPE};
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};

/// A callback target that hangs must not pile up tasks forever.
const CALLBACK_TIMEOUT: Duration = Duration::from_secs(10);

/// One POST, due at a given instant.
#[derive(Debug)]
pub(crate) struct Callback {
    pub(crate) due: Instant,
    /// The status it reports, for the log.
    pub(crate) status: &'static str,
    /// The JSON body, serialized once at enqueue time.
    pub(crate) body: Vec<u8>,
}

/// One accepted message's callbacks, in the order they must arrive.
#[derive(Debug)]
pub(crate) struct CallbackJob {
    pub(crate) message_id: String,
    pub(crate) callbacks: Vec<Callback>,
}

#[derive(Clone)]
pub(crate) struct CallbackQueue {
    jobs: mpsc::UnboundedSender<CallbackJob>,
}

impl CallbackQueue {
    pub(crate) fn enqueue(&self, job: CallbackJob) {
        if let Err(unsent) = self.jobs.send(job) {
            tracing::warn!(message_id = %unsent.0.message_id, "callback dispatcher stopped; callbacks dropped");
        }
    }
}

/// Starts a dispatcher on the current runtime; every POST carries `Content-Type: application/json`
/// and `headers`.
pub(crate) fn start(url: String, headers: HeaderMap) -> io::Result<(CallbackQueue, JoinHandle<()>)> {
    let client = reqwest::Client::builder()
        .timeout(CALLBACK_TIMEOUT)
        .user_agent(concat!("provider-sandbox/", env!("CARGO_PKG_VERSION")))
        // The sandbox serves local development; a developer's HTTP proxy must not capture callbacks.
        .no_proxy()
        .build()
        .map_err(io::Error::other)?;
    let (jobs, queue) = mpsc::unbounded_channel();
    let task = tokio::spawn(dispatch(queue, client, Arc::from(url), Arc::new(headers)));
    Ok((CallbackQueue { jobs }, task))
}

async fn dispatch(
    mut queue: mpsc::UnboundedReceiver<CallbackJob>,
    client: reqwest::Client,
    url: Arc<str>,
    headers: Arc<HeaderMap>,
) {
    let mut in_flight = JoinSet::new();
    loop {
        tokio::select! {
            job = queue.recv() => match job {
                Some(job) => {
                    in_flight.spawn(deliver(client.clone(), Arc::clone(&url), Arc::clone(&headers), job));
                }
                None => break,
            },
            // Reap finished messages so the set does not grow with every send.
            Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
        }
    }
    while in_flight.join_next().await.is_some() {}
}

/// Posts one message's callbacks in order, each at its due time (or right after the previous one,
/// if that took longer). Failures are logged, not retried: neither provider documents a retry
/// policy.
async fn deliver(client: reqwest::Client, url: Arc<str>, headers: Arc<HeaderMap>, job: CallbackJob) {
    for callback in job.callbacks {
        tokio::time::sleep_until(callback.due.into()).await;
        let request =
            client.post(&*url).headers((*headers).clone()).header(CONTENT_TYPE, "application/json").body(callback.body);
        match request.send().await {
            Ok(response) if response.status().is_success() => {
                tracing::debug!(message_id = %job.message_id, status = callback.status, "callback delivered");
            }
            Ok(response) => tracing::warn!(
                message_id = %job.message_id,
                status = callback.status,
                http_status = response.status().as_u16(),
                "callback refused"
            ),
            Err(error) => tracing::warn!(
                message_id = %job.message_id,
                status = callback.status,
                %error,
                "callback not delivered"
            ),
        }
    }
}
