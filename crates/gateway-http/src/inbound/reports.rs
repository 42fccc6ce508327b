//! What providers tell us, applied: status reports move messages along the status machine (or are
//! buffered until the send's answer is recorded), inbound messages refresh the 24-hour window and
//! become `message.inbound` events, template reports become `template.status` events.

use std::sync::Arc;
use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use gateway_core::event::{InboundMessage, MessageAlias, ReportedError, StatusReport, TemplateReport};
use gateway_core::retry::{Attempt, Decision, RetryPolicy, RetryReason, Route, Source, JITTER};
use gateway_core::{ErrorClass, MessageId, MessageStatus, ProviderError, ProviderKind, RejectScope, StatusChange};
use redis::AsyncCommands;
use serde_json::json;

use crate::config::{MESSAGE_INBOUND, MESSAGE_STATUS, TEMPLATE_STATUS};
use crate::delivery::events::Events;
use crate::delivery::fallback::Chains;
use crate::delivery::worker::StatusNews;
use crate::engine::record::{ChainLink, ErrorRecord, MessageRecord};
use crate::engine::{Engine, ProviderIdOwner, Reopen, Reopened, ReportOutcome, StoreError};
use crate::metrics::Metrics;

/// The WhatsApp customer-service window.
pub const SESSION_WINDOW: Duration = Duration::from_secs(24 * 3600);

#[derive(Clone)]
pub struct Reports {
    pub engine: Engine,
    pub events: Events,
    pub metrics: Metrics,
    pub chains: Chains,
    /// How message delivery retries, for failures reported after the provider took a message.
    pub policy: Arc<RetryPolicy>,
}

/// The statuses from which `reported` moves a message forward, by the core status machine.
fn advances_from(reported: MessageStatus) -> Vec<MessageStatus> {
    MessageStatus::ALL.into_iter().filter(|s| s.on_report(reported) == StatusChange::Advance).collect()
}

pub fn window_key(engine: &Engine, sender: &str, user: &str) -> String {
    format!("{}:win:{sender}:{user}", engine.prefix())
}

/// The `message.status` event payload.
pub fn status_event(
    record: &MessageRecord,
    status: MessageStatus,
    previous: Option<MessageStatus>,
) -> serde_json::Value {
    let m = record.body.v1();
    json!({
        "message_id": m.id.to_string(),
        "status": status,
        "previous_status": previous,
        "channel": m.message.channel(),
        "to": m.message.to.as_str(),
        "sender": m.sender,
        "provider": record.provider,
        "provider_message_id": record.provider_message_id,
        "error": record.error.as_ref().map(|e| json!({"code": e.code, "title": e.title, "retryable": e.retryable})),
        "metadata": m.message.metadata,
        "parent_id": m.chain.as_ref().filter(|c| c.step > 0).map(|c| c.parent_id.to_string()),
        "step": m.chain.as_ref().map(|c| c.step),
        "sequence": record.history.len(),
        "at": Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
    })
}

impl Reports {
    /// Applies a status report. Returns the outcome label for metrics: `ok`, `buffered`,
    /// `duplicate`, `history_only`, `stale`, `unknown_message`, `retried`.
    ///
    /// The message is found by our own id when the provider echoes it (InnoPaaS `uid`), else by
    /// the id the send returned, else by the wamid; a report naming none we know is buffered
    /// under the provider's id until the send's answer is recorded. Ids learnt on the way (an
    /// InnoPaaS wamid) are linked to the message, so replies naming them map to our id.
    ///
    /// # Errors
    /// [`StoreError`]: the caller must not acknowledge the callback.
    pub async fn status(&self, report: &StatusReport) -> Result<&'static str, StoreError> {
        let provider = report.provider.as_str();
        let pmid = report.provider_message_id.as_str();
        // Which of the report's ids found the message: the others get linked to it.
        let (owner, by_pmid, by_wamid) = match self.by_correlation_id(report).await? {
            Some((sender, id)) => (Some(ProviderIdOwner::new(&sender, &id)), false, false),
            None => match self.engine.find_by_provider_id(provider, pmid).await? {
                Some(owner) => (Some(owner), true, false),
                None => match &report.wamid {
                    Some(wamid) => (self.engine.find_by_provider_id(provider, wamid).await?, false, true),
                    None => (None, false, false),
                },
            },
        };
        match owner {
            Some(owner) => {
                let (sender, id) = (&owner.sender, &owner.id);
                let unlinked = [(!by_pmid).then_some(pmid), report.wamid.as_deref().filter(|_| !by_wamid)];
                for other in unlinked.into_iter().flatten() {
                    let buffered =
                        self.engine.link_provider_id(provider, other, &ProviderIdOwner::new(sender, id)).await?;
                    self.apply_buffered(sender, id, buffered, None).await;
                }
                self.apply_to_attempt(sender, id, report, owner.attempt.as_deref()).await.map(label)
            }
            None => {
                let raw = serde_json::to_string(report).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                let buffered = self.engine.buffer_report(provider, &report.provider_message_id, &raw).await?;
                self.metrics.early_reports_dropped.inc_by(buffered.dropped);
                match buffered.owner {
                    None => Ok("buffered"),
                    Some((owner, items)) => {
                        self.apply_buffered(&owner.sender, &owner.id, items, owner.attempt.as_deref()).await;
                        Ok("ok")
                    }
                }
            }
        }
    }

    /// The message a report names by our own id (InnoPaaS echoes it as `uid`, 32 hex digits).
    async fn by_correlation_id(&self, report: &StatusReport) -> Result<Option<(String, String)>, StoreError> {
        let Some(Ok(id)) = report.correlation_id.as_deref().map(str::parse::<MessageId>) else { return Ok(None) };
        let id = id.to_string();
        Ok(self.engine.sender_of_message(&id).await?.map(|sender| (sender, id)))
    }

    /// Links a provider's second id for a message (INCS's chat id) and applies what was buffered
    /// under it. The alias stands for the attempt whose provider id it names, so its reports are
    /// stale once a reported failure replaced that attempt. Returns `ok`, or `unknown_message` when
    /// the first id names no message of ours (an inbound message, or one sent outside the gateway).
    ///
    /// # Errors
    /// [`StoreError`]: the caller must not acknowledge the callback.
    pub async fn alias(&self, alias: &MessageAlias) -> Result<&'static str, StoreError> {
        let provider = alias.provider.as_str();
        let Some(owner) = self.engine.find_by_provider_id(provider, &alias.provider_message_id).await? else {
            return Ok("unknown_message");
        };
        // The attempt is the one the aliased id stands for (itself an alias only if INCS chained them).
        let attempt = owner.attempt.clone().unwrap_or_else(|| alias.provider_message_id.clone());
        let owner = ProviderIdOwner { attempt: Some(attempt), ..owner };
        let buffered = self.engine.link_provider_id(provider, &alias.alias, &owner).await?;
        self.apply_buffered(&owner.sender, &owner.id, buffered, owner.attempt.as_deref()).await;
        Ok("ok")
    }

    /// Applies reports that were buffered for a message (they came before its send was recorded).
    /// `attempt`: the provider id of the attempt the id they were buffered under stands for.
    pub async fn apply_buffered(&self, sender: &str, id: &str, items: Vec<String>, attempt: Option<&str>) {
        for item in items {
            let Ok(report) = serde_json::from_str::<StatusReport>(&item) else { continue };
            if let Err(e) = self.apply_to_attempt(sender, id, &report, attempt).await {
                tracing::warn!(error = %e, message_id = %id, "could not apply a buffered status report");
            }
        }
    }

    /// Applies a report to a known message and emits `message.status` when it moved.
    ///
    /// # Errors
    /// [`StoreError`] when Redis is unreachable.
    pub async fn apply(&self, sender: &str, id: &str, report: &StatusReport) -> Result<ReportOutcome, StoreError> {
        self.apply_to_attempt(sender, id, report, None).await
    }

    /// [`Self::apply`] for a report that names an attempt only through an alias: `attempt` is that
    /// attempt's provider id, fenced like the report's own ids.
    async fn apply_to_attempt(
        &self,
        sender: &str,
        id: &str,
        report: &StatusReport,
        attempt: Option<&str>,
    ) -> Result<ReportOutcome, StoreError> {
        let class = report.error.as_ref().map(|e| classify_report(report.provider, e));
        let error = report.error.as_ref().map(|e| ErrorRecord {
            code: e.code.clone(),
            title: e.title.clone(),
            retryable: class.is_some_and(|c| !matches!(c, ErrorClass::Rejected(_))),
        });
        if let (MessageStatus::Failed, Some(class), Some(error)) = (report.status, class, error.as_ref()) {
            if let Some(outcome) = self.retry_reported_failure(sender, id, report, attempt, class, error).await? {
                return Ok(outcome);
            }
        }
        let outcome = self
            .engine
            .apply_report(
                sender,
                id,
                &report_ids(report, attempt),
                report.status,
                report.at.timestamp_millis(),
                report.provider.as_str(),
                error.as_ref(),
                &advances_from(report.status),
            )
            .await?;
        if let ReportOutcome::Advanced { previous, created_ms, chain } = &outcome {
            if let Some(link) = chain {
                self.chains.on_status(id, link, report.status).await;
            }
            self.metrics.transitions.with_label_values(&[report.status.as_str()]).inc();
            if report.status.reaches(MessageStatus::Delivered) && !previous.reaches(MessageStatus::Delivered) {
                let waited = (Utc::now().timestamp_millis() - created_ms).max(0) as f64 / 1000.0;
                self.metrics.accept_to_delivered.with_label_values(&[report.provider.as_str(), "all"]).observe(waited);
            }
            let parsed: Result<MessageId, _> = id.parse();
            if let (Ok(mid), true) = (parsed, self.events.wanted(MESSAGE_STATUS)) {
                if let Some(record) = self.engine.get(&mid).await? {
                    let data = status_event(&record, report.status, Some(*previous));
                    self.events.emit(MESSAGE_STATUS, id, data, record.body.traceparent()).await?;
                }
            }
        }
        Ok(outcome)
    }

    /// A message of a fallback chain moved by the engine's own doing (submitted, failed).
    pub async fn chain_moved(&self, id: &str, chain: Option<&ChainLink>, status: MessageStatus) {
        if let Some(link) = chain {
            self.chains.on_status(id, link, status).await;
        }
    }

    /// A `failed` the provider reported after accepting the message gets the judgement a send's
    /// answer would have had: a transient or throttling code sends it again under the message's
    /// retry policy, an account-level one moves it to the next account. `None` when the failure
    /// stands (permanent, or nothing left to try) and is to be applied as reported.
    async fn retry_reported_failure(
        &self,
        sender: &str,
        id: &str,
        report: &StatusReport,
        aliased: Option<&str>,
        class: ErrorClass,
        error: &ErrorRecord,
    ) -> Result<Option<ReportOutcome>, StoreError> {
        if matches!(class, ErrorClass::Rejected(RejectScope::Content)) {
            return Ok(None);
        }
        let Ok(mid) = id.parse::<MessageId>() else { return Ok(None) };
        let Some(record) = self.engine.get(&mid).await? else { return Ok(None) };
        let lanes = &record.body.v1().lanes;
        let next = lanes.iter().position(|l| *l == record.lane).and_then(|p| lanes.get(p + 1)).map(String::as_str);
        let failure = ProviderError::new(class, error.title.clone());
        // The attempt that failed is counted in the record already.
        let attempt = Attempt { made: record.attempt.saturating_sub(1), redelivery: false };
        let decision = self.policy.decide(
            &failure,
            Source::Report,
            attempt,
            Route { has_next: next.is_some() },
            rand::random_range(JITTER),
        );
        let reopen = match (decision, next) {
            (Decision::Retry { after, spend, .. }, _) => Reopen::Retry { after, spend },
            (Decision::FailOver, Some(next)) => Reopen::FailOver(next),
            // The failure stands as the provider reported it.
            _ => return Ok(None),
        };
        let ids = report_ids(report, aliased);
        let at = report.at.timestamp_millis();
        let source = report.provider.as_str();
        match self.engine.reopen(sender, id, &ids, at, source, error, record.attempt, reopen).await? {
            Reopened::Retry => {
                self.metrics.retries.with_label_values(&[RetryReason::ReportedFailure.label()]).inc();
                Ok(Some(ReportOutcome::Retried))
            }
            Reopened::Failover => {
                self.metrics.retries.with_label_values(&["failover"]).inc();
                Ok(Some(ReportOutcome::Retried))
            }
            Reopened::NotApplicable => Ok(None),
        }
    }

    /// Emits `message.status` for a change the engine made itself (submitted, failed).
    pub async fn engine_status(&self, id: &MessageId, status: MessageStatus, previous: MessageStatus) {
        if !self.events.wanted(MESSAGE_STATUS) {
            return;
        }
        let result = async {
            if let Some(record) = self.engine.get(id).await? {
                self.events
                    .emit(
                        MESSAGE_STATUS,
                        &id.to_string(),
                        status_event(&record, status, Some(previous)),
                        record.body.traceparent(),
                    )
                    .await?;
            }
            Ok::<(), StoreError>(())
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, message_id = %id, "could not emit a status event");
        }
    }

    /// Refreshes the 24-hour window and emits `message.inbound`.
    ///
    /// # Errors
    /// [`StoreError`]: the caller must not acknowledge the callback.
    pub async fn inbound(&self, sender: &str, message: &InboundMessage) -> Result<&'static str, StoreError> {
        let key = window_key(&self.engine, sender, &message.from);
        self.engine
            .bounded(async {
                let mut c = self.engine.connection().await?;
                let () = c.set_ex(&key, message.at.timestamp(), SESSION_WINDOW.as_secs()).await?;
                Ok(())
            })
            .await?;
        let replied_to = match &message.context {
            Some(ctx) => self
                .engine
                .find_by_provider_id(message.provider.as_str(), &ctx.provider_message_id)
                .await?
                .map(|owner| owner.id),
            None => None,
        };
        let data = json!({
            "provider": message.provider,
            "channel": message.channel,
            "sender": sender,
            "business_phone": message.business_phone,
            "from": message.from,
            "profile_name": message.profile_name,
            "provider_message_id": message.provider_message_id,
            "received_at": message.at.to_rfc3339_opts(SecondsFormat::Millis, true),
            "type": message.content.type_name(),
            "content": message.content,
            "context": message.context.as_ref().map(|c| json!({
                "message_id": replied_to,
                "provider_message_id": c.provider_message_id,
                "from": c.from,
            })),
            "raw": message.raw,
        });
        self.events.emit(MESSAGE_INBOUND, &message.from, data, None).await?;
        Ok("ok")
    }

    /// Emits `template.status`.
    ///
    /// # Errors
    /// [`StoreError`]: the caller must not acknowledge the callback.
    pub async fn template(&self, account: &str, report: &TemplateReport) -> Result<&'static str, StoreError> {
        let data = json!({
            "account": account,
            "provider": report.provider,
            "template_id": report.template_id,
            "template_name": report.template_name,
            "language": report.language,
            "change": report.change,
            "new_value": report.new_value,
            "reason": report.reason,
            "at": report.at.to_rfc3339_opts(SecondsFormat::Millis, true),
        });
        self.events.emit(TEMPLATE_STATUS, &report.template_id, data, None).await?;
        Ok("ok")
    }

    /// Whether the user wrote to this sender within the last 24 hours.
    ///
    /// # Errors
    /// [`StoreError`] when Redis is unreachable.
    pub async fn in_session(&self, sender: &str, user: &str) -> Result<bool, StoreError> {
        let key = window_key(&self.engine, sender, user);
        self.engine
            .bounded(async {
                let mut c = self.engine.connection().await?;
                Ok(c.exists(&key).await?)
            })
            .await
    }
}

#[async_trait::async_trait]
impl StatusNews for Reports {
    async fn engine_status(&self, id: &MessageId, status: MessageStatus, previous: MessageStatus) {
        Reports::engine_status(self, id, status, previous).await;
    }
    async fn chain_moved(&self, id: &str, chain: Option<&ChainLink>, status: MessageStatus) {
        Reports::chain_moved(self, id, chain, status).await;
    }
    async fn apply_buffered(&self, sender: &str, id: &str, items: Vec<String>, attempt: Option<&str>) {
        Reports::apply_buffered(self, sender, id, items, attempt).await;
    }
}

/// One classification per provider, the one its send answers get (PROVIDERS.md §3.4).
fn classify_report(provider: ProviderKind, error: &ReportedError) -> ErrorClass {
    crate::providers::family(provider).classify_report(error)
}

/// Every provider id a report names the message by.
fn report_ids<'a>(report: &'a StatusReport, attempt: Option<&'a str>) -> Vec<&'a str> {
    [Some(report.provider_message_id.as_str()), report.wamid.as_deref(), report.correlation_id.as_deref(), attempt]
        .into_iter()
        .flatten()
        .collect()
}

fn label(outcome: ReportOutcome) -> &'static str {
    match outcome {
        ReportOutcome::Advanced { .. } => "ok",
        ReportOutcome::HistoryOnly => "history_only",
        ReportOutcome::Stale => "stale",
        ReportOutcome::Duplicate => "duplicate",
        ReportOutcome::Missing => "unknown_message",
        ReportOutcome::Retried => "retried",
    }
}
