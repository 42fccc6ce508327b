//! Reconciliation: messages with a provider that offers a status poll (INCS), submitted but heard
//! nothing of for a while, have their status polled, and whatever the poll says is applied like a
//! callback. Callbacks can be lost; this is the safety net.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use gateway_core::event::StatusReport;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::accounts::Accounts;
use crate::inbound::reports::Reports;

/// Ids read per sender and pass, as many polls' worth.
const POLLS_PER_PASS: usize = 10;

/// When each sender's queue can next have a message to poll: a sender whose last look found
/// nothing quiet is not read again before then, so that idle senders cost nothing between their
/// due times (with 1,000 senders, two commands each every pass were most of an idle gateway's
/// Redis commands).
pub type NextLooks = HashMap<String, Instant>;

/// One pass over every sender with accounts that can be polled and may have something to poll.
pub async fn pass(accounts: &Accounts, reports: &Reports, quiet: Duration, next: &mut NextLooks) {
    let pollable = |a: &&std::sync::Arc<crate::accounts::Account>| a.adapter.status_poll().is_some();
    let mut senders: Vec<&str> = accounts.iter().filter(pollable).map(|a| a.sender.as_str()).collect();
    let most = accounts.iter().filter_map(|a| a.adapter.status_poll().map(|p| p.max_ids())).max().unwrap_or(0);
    senders.sort_unstable();
    senders.dedup();
    for sender in senders {
        if next.get(sender).is_some_and(|at| *at > Instant::now()) {
            continue;
        }
        let quiet_ones = match reports.engine.quiet_messages(sender, quiet, most * POLLS_PER_PASS).await {
            Ok((q, due_in)) => {
                match due_in {
                    Some(d) => next.insert(sender.to_owned(), Instant::now() + d),
                    None => next.remove(sender),
                };
                q
            }
            Err(e) => {
                warn!(error = %e, sender, "reconciliation could not read its queue");
                continue;
            }
        };
        let mut by_lane: std::collections::BTreeMap<String, Vec<(String, String)>> = Default::default();
        for (id, lane, pmid) in quiet_ones {
            by_lane.entry(lane).or_default().push((id, pmid));
        }
        for (lane, items) in by_lane {
            let Some(account) = accounts.get(&lane) else { continue };
            let provider = &account.adapter;
            let Some(poll) = provider.status_poll() else { continue };
            for chunk in items.chunks(poll.max_ids().max(1)) {
                let ids: Vec<&str> = chunk.iter().map(|(_, p)| p.as_str()).collect();
                let polled = match poll.poll(&ids).await {
                    Ok(p) => p,
                    Err(e) => {
                        warn!(error = %e, lane, "status poll failed");
                        continue;
                    }
                };
                for p in polled {
                    let Some(status) = p.status else { continue };
                    let Some((id, _)) = chunk.iter().find(|(_, pmid)| *pmid == p.message_id) else { continue };
                    let at = p.read_at.or(p.delivered_at).or(p.created_at).unwrap_or_else(Utc::now);
                    let report = StatusReport::new(account.provider, p.message_id.clone(), status, at);
                    match reports.apply(sender, id, &report).await {
                        Ok(outcome) => debug!(message_id = %id, ?outcome, "reconciled"),
                        Err(e) => warn!(error = %e, message_id = %id, "could not apply a polled status"),
                    }
                }
            }
        }
    }
}

pub fn spawn(accounts: Arc<Accounts>, reports: Reports, quiet: Duration, every: Duration, stop: CancellationToken) {
    tokio::spawn(async move {
        let mut next = NextLooks::new();
        loop {
            tokio::select! {
                () = tokio::time::sleep(every) => {},
                () = stop.cancelled() => break,
            }
            pass(&accounts, &reports, quiet, &mut next).await;
        }
    });
}
