//! Wake-ups: the scripts that give a lane work (an accept into an empty list, a retry or a
//! schedule, a promotion of due messages, a failover, a replay, a returned lease) `PUBLISH` the
//! lane's name on `<prefix>:wake`, and the sender's resume publishes `*<sender>`; the scripts that
//! set a fallback chain's timer publish `!<sender>`. One subscription per process hears them and
//! rings the lane's bell (or the sender's fallback timer), so nothing idle needs a short timer:
//! idle lanes and idle senders' fallback timers wait up to `engine.idle_max_ms` while this
//! subscription is live.
//!
//! Pub/sub delivery is not durable: a message published while the subscription is down is lost.
//! So whenever the subscription (re)starts, every lane is woken to look once, and while it is down
//! the lanes poll every `engine.idle_poll_ms` as they did without wake-ups. A lost message can thus
//! cost latency (at most `idle_max_ms`), never a message.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::worker::Lanes;

/// How often the live subscription is checked with a `PING`: a connection that died without
/// closing would otherwise leave the lanes on their long timer.
const CHECK_EVERY: Duration = Duration::from_secs(15);
/// The longest a connect, subscribe or check may take.
const ANSWER_WITHIN: Duration = Duration::from_secs(5);

/// Whether this process hears wake-ups now.
#[derive(Clone, Default)]
pub struct WakeState(Arc<AtomicBool>);

impl WakeState {
    pub fn live(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
    fn set(&self, live: bool) {
        self.0.store(live, Ordering::Relaxed);
    }
}

/// Senders whose fallback timers were told to look now, for the timer loop to take.
#[derive(Clone, Default)]
pub struct ChainBells(Arc<Mutex<(bool, HashSet<String>)>>);

impl ChainBells {
    fn ring(&self, sender: Option<&str>) {
        let mut rung = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match sender {
            Some(s) => {
                rung.1.insert(s.to_owned());
            }
            None => rung.0 = true,
        }
    }

    /// Whether every sender was rung, and the senders rung, since the last take.
    pub fn take(&self) -> (bool, HashSet<String>) {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }
}

/// Rings the bell of the lane a wake-up names (`*<sender>`: every lane of that sender; `!<sender>`:
/// the sender's fallback timer). Names this process has no lane for (another process's
/// configuration, event partitions) are ignored.
pub fn ring(lanes: &Lanes, chains: &ChainBells, name: &str) {
    if let Some(sender) = name.strip_prefix('!') {
        chains.ring(Some(sender));
    } else if let Some(sender) = name.strip_prefix('*') {
        for lane in lanes.iter().filter(|l| l.spec.sender == sender) {
            lane.touched.store(true, Ordering::Relaxed);
            lane.wake.notify_one();
        }
    } else if let Some(lane) = lanes.get(name) {
        lane.touched.store(true, Ordering::Relaxed);
        lane.wake.notify_one();
    }
}

fn ring_all(lanes: &Lanes, chains: &ChainBells) {
    for lane in lanes.iter() {
        lane.wake.notify_one();
    }
    chains.ring(None);
}

/// Subscribes to `channel` on the first of `clients` that answers (the next one after a
/// failure), until `stop`.
pub async fn subscribe(
    clients: Vec<redis::Client>,
    channel: String,
    lanes: Arc<Lanes>,
    chains: ChainBells,
    state: WakeState,
    stop: CancellationToken,
) {
    {
        if clients.is_empty() {
            return;
        }
        let mut backoff = Duration::from_millis(100);
        for client in clients.iter().cycle() {
            if stop.is_cancelled() {
                break;
            }
            match listen(client, &channel, &lanes, &chains, &state, &stop).await {
                Ok(()) => break,
                Err(e) => {
                    if state.live() {
                        warn!(error = %e, "wake-up subscription lost; idle lanes poll until it is back");
                    } else {
                        debug!(error = %e, "wake-up subscription unavailable");
                    }
                    state.set(false);
                    // Lanes asleep on the long timer go back to the short one now.
                    ring_all(&lanes, &chains);
                }
            }
            tokio::select! {
                () = tokio::time::sleep(backoff) => {},
                () = stop.cancelled() => break,
            }
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
        state.set(false);
    }
}

/// One subscription's life: `Ok` when stopped, an error when the connection failed.
async fn listen(
    client: &redis::Client,
    channel: &str,
    lanes: &Lanes,
    chains: &ChainBells,
    state: &WakeState,
    stop: &CancellationToken,
) -> Result<(), String> {
    let within = |what: &'static str| move |_| format!("{what} took longer than {ANSWER_WITHIN:?}");
    let pubsub = tokio::time::timeout(ANSWER_WITHIN, client.get_async_pubsub()).await.map_err(within("connecting"))?;
    let mut pubsub = pubsub.map_err(|e| e.to_string())?;
    tokio::time::timeout(ANSWER_WITHIN, pubsub.subscribe(channel))
        .await
        .map_err(within("subscribing"))?
        .map_err(|e| e.to_string())?;
    let (mut sink, mut messages) = pubsub.split();
    state.set(true);
    info!(channel, "hearing wake-ups");
    // Anything published while no one listened is lost: every lane looks once.
    ring_all(lanes, chains);
    let mut check = tokio::time::interval(CHECK_EVERY);
    check.tick().await;
    loop {
        tokio::select! {
            msg = messages.next() => {
                let Some(msg) = msg else { return Err("the subscription closed".into()) };
                if let Ok(name) = msg.get_payload::<String>() {
                    ring(lanes, chains, &name);
                }
            }
            _ = check.tick() => {
                tokio::time::timeout(ANSWER_WITHIN, sink.ping::<redis::Value>())
                    .await
                    .map_err(within("a check"))?
                    .map_err(|e| e.to_string())?;
            }
            () = stop.cancelled() => return Ok(()),
        }
    }
}
