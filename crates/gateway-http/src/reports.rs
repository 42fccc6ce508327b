//! What providers tell us, applied: status reports move messages along the status machine (or are
//! buffered until the send's answer is recorded), inbound messages refresh the 24-hour window and
//! become `message.inbound` events, template reports become `template.status` events.

use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use gateway_core::event::{InboundMessage, StatusReport, TemplateReport};
use gateway_core::{MessageId, MessageStatus, StatusChange};
use redis::AsyncCommands;
use serde_json::json;

use crate::engine::record::{ChainLink, ErrorRecord, MessageRecord};
use crate::engine::{Engine, ReportOutcome, StoreError};
use crate::events::{Events, MESSAGE_INBOUND, MESSAGE_STATUS, TEMPLATE_STATUS};
use crate::fallback::Chains;
use crate::metrics::Metrics;

/// The WhatsApp customer-service window.
pub const SESSION_WINDOW: Duration = Duration::from_secs(24 * 3600);

#[derive(Clone)]
pub struct Reports {
    pub engine: Engine,
    pub events: Events,
    pub metrics: Metrics,
    pub chains: Chains,
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
    /// `duplicate`, `history_only`, `unknown_message`.
    ///
    /// # Errors
    /// [`StoreError`]: the caller must not acknowledge the callback.
    pub async fn status(&self, report: &StatusReport) -> Result<&'static str, StoreError> {
        let provider = report.provider.as_str();
        match self.engine.find_by_provider_id(provider, &report.provider_message_id).await? {
            Some((sender, id)) => self.apply(&sender, &id, report).await.map(label),
            None => {
                let raw = serde_json::to_string(report).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                match self.engine.buffer_report(provider, &report.provider_message_id, &raw).await? {
                    None => Ok("buffered"),
                    Some(((sender, id), items)) => {
                        self.apply_buffered(&sender, &id, items).await;
                        Ok("ok")
                    }
                }
            }
        }
    }

    /// Applies reports that were buffered for a message (they came before its send was recorded).
    pub async fn apply_buffered(&self, sender: &str, id: &str, items: Vec<String>) {
        for item in items {
            let Ok(report) = serde_json::from_str::<StatusReport>(&item) else { continue };
            if let Err(e) = self.apply(sender, id, &report).await {
                tracing::warn!(error = %e, message_id = %id, "could not apply a buffered status report");
            }
        }
    }

    /// Applies a report to a known message and emits `message.status` when it moved.
    ///
    /// # Errors
    /// [`StoreError`] when Redis is unreachable.
    pub async fn apply(&self, sender: &str, id: &str, report: &StatusReport) -> Result<ReportOutcome, StoreError> {
        let error = report.error.as_ref().map(|e| ErrorRecord {
            code: e.code.clone(),
            title: e.title.clone(),
            retryable: false,
        });
        let outcome = self
            .engine
            .apply_report(
                sender,
                id,
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
            let reached_user = matches!(report.status, MessageStatus::Delivered | MessageStatus::Read);
            if reached_user && !matches!(previous, MessageStatus::Delivered) {
                let waited = (Utc::now().timestamp_millis() - created_ms).max(0) as f64 / 1000.0;
                self.metrics.accept_to_delivered.with_label_values(&[report.provider.as_str(), "all"]).observe(waited);
            }
            let parsed: Result<MessageId, _> = id.parse();
            if let (Ok(mid), true) = (parsed, self.events.wanted(MESSAGE_STATUS)) {
                if let Some(record) = self.engine.get(&mid).await? {
                    let data = status_event(&record, report.status, Some(*previous));
                    self.events.emit(MESSAGE_STATUS, id, data).await?;
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

    /// Emits `message.status` for a change the engine made itself (submitted, failed).
    pub async fn engine_status(&self, id: &MessageId, status: MessageStatus, previous: MessageStatus) {
        if !self.events.wanted(MESSAGE_STATUS) {
            return;
        }
        let result = async {
            if let Some(record) = self.engine.get(id).await? {
                self.events
                    .emit(MESSAGE_STATUS, &id.to_string(), status_event(&record, status, Some(previous)))
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
                .map(|(_, id)| id),
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
        self.events.emit(MESSAGE_INBOUND, &message.from, data).await?;
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
        self.events.emit(TEMPLATE_STATUS, &report.template_id, data).await?;
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

fn label(outcome: ReportOutcome) -> &'static str {
    match outcome {
        ReportOutcome::Advanced { .. } => "ok",
        ReportOutcome::HistoryOnly => "history_only",
        ReportOutcome::Duplicate => "duplicate",
        ReportOutcome::Missing => "unknown_message",
    }
}
