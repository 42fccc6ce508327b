//! Group commit: the writes of one sender that arrive while its previous batch is in Redis wait
//! for the next batch, which takes them all in one script call and one round trip.
//!
//! Nothing waits on a timer: an idle sender's write goes at once, alone; under load a batch is
//! whatever gathered during one round trip, so the batches grow with the load and the cost per
//! message falls. A caller gets its own answer, in the order it came.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use super::StoreError;

/// The most writes one script call takes: a script blocks Redis while it runs.
pub(super) const MAX_BATCH: usize = 128;

/// Batches of one sender in Redis at once. One alone would leave Redis idle while the gateway
/// reads a batch's answers and writes the next, and the gateway idle while Redis runs it.
const IN_FLIGHT: usize = 4;

/// A sender's writes waiting for a batch, and how many of its flushes are running.
struct Waiting<T, R> {
    items: Vec<(T, oneshot::Sender<Result<R, StoreError>>)>,
    flushes: usize,
}

/// Batches of `T` by sender; each answered with an `R`.
pub(super) struct Group<T, R> {
    /// A sender is here while a flush of its batches runs.
    waiting: Mutex<HashMap<String, Waiting<T, R>>>,
}

impl<T: Send + 'static, R: Send + 'static> Group<T, R> {
    pub(super) fn new() -> Arc<Self> {
        Arc::new(Self { waiting: Mutex::new(HashMap::new()) })
    }

    /// Adds `item` to the sender's next batch and waits for its answer. The first write of an
    /// idle sender starts the flush, a task of its own: a caller that gives up (a request cut
    /// off) does not cut off the others' batch.
    pub(super) async fn submit<F, Fut>(self: &Arc<Self>, sender: &str, item: T, flush: F) -> Result<R, StoreError>
    where
        F: Fn(String, Vec<T>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Vec<R>, StoreError>> + Send,
    {
        let (tx, rx) = oneshot::channel();
        let start = {
            let mut waiting = self.waiting.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let w = waiting.entry(sender.to_owned()).or_insert_with(|| Waiting { items: Vec::new(), flushes: 0 });
            w.items.push((item, tx));
            let start = w.flushes < IN_FLIGHT;
            if start {
                w.flushes += 1;
            }
            start
        };
        if start {
            let group = self.clone();
            let sender = sender.to_owned();
            tokio::spawn(async move { group.flush_all(sender, flush).await });
        }
        rx.await.unwrap_or_else(|_| Err(StoreError::Unavailable("the batch was dropped".into())))
    }

    /// Flushes the sender's batches until none is waiting; up to [`IN_FLIGHT`] of these run at once.
    async fn flush_all<F, Fut>(self: Arc<Self>, sender: String, flush: F)
    where
        F: Fn(String, Vec<T>) -> Fut,
        Fut: Future<Output = Result<Vec<R>, StoreError>>,
    {
        loop {
            let batch = {
                let mut waiting = self.waiting.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                let Some(w) = waiting.get_mut(&sender) else { return };
                if w.items.is_empty() {
                    w.flushes -= 1;
                    if w.flushes == 0 {
                        waiting.remove(&sender);
                    }
                    return;
                }
                let n = w.items.len().min(MAX_BATCH);
                w.items.drain(..n).collect::<Vec<_>>()
            };
            let (items, answers): (Vec<T>, Vec<_>) = batch.into_iter().unzip();
            let n = items.len();
            match flush(sender.clone(), items).await {
                Ok(results) if results.len() == n => {
                    for (tx, r) in answers.into_iter().zip(results) {
                        let _ = tx.send(Ok(r));
                    }
                }
                Ok(results) => {
                    let e = StoreError::Corrupt(format!("a batch of {n} got {} answers", results.len()));
                    for tx in answers {
                        let _ = tx.send(Err(e.clone()));
                    }
                }
                Err(e) => {
                    for tx in answers {
                        let _ = tx.send(Err(e.clone()));
                    }
                }
            }
        }
    }
}
