//! Template request and resource bodies. The drafts already serialize to the shapes INCS takes
//! (Meta components; INCS's camelCase RCS content), so the request bodies borrow them; the
//! resources are read leniently and mapped to the public types.

use chrono::{DateTime, Utc};
use gateway_core::template::{
    DraftComponent, RcsTemplateCategory, RcsTemplateContent, RcsTemplateDraft, RcsTemplateType, WhatsAppTemplateDraft,
};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::{IncsRcsTemplate, IncsTemplate};

/// `POST /external/templates`: `{name, language, category, components}`.
#[derive(Debug, Serialize)]
pub(crate) struct WabaTemplateBody<'a> {
    name: &'a str,
    language: &'a str,
    category: &'static str,
    components: &'a [DraftComponent],
}

impl<'a> WabaTemplateBody<'a> {
    pub(crate) fn new(d: &'a WhatsAppTemplateDraft) -> Self {
        Self { name: &d.name, language: &d.language, category: d.category.as_str(), components: &d.components }
    }
}

/// `POST /external/templates/rcs`: `{name, type, category?, content}`.
#[derive(Debug, Serialize)]
pub(crate) struct RcsTemplateBody<'a> {
    name: &'a str,
    #[serde(rename = "type")]
    kind: RcsTemplateType,
    #[serde(skip_serializing_if = "Option::is_none")]
    category: Option<RcsTemplateCategory>,
    content: &'a RcsTemplateContent,
}

impl<'a> RcsTemplateBody<'a> {
    pub(crate) fn new(d: &'a RcsTemplateDraft) -> Self {
        Self { name: &d.name, kind: d.kind, category: d.category, content: &d.content }
    }
}

/// The WABA template resource.
#[derive(Debug, Deserialize)]
pub(crate) struct TemplateResource {
    #[serde(deserialize_with = "id_text")]
    template_id: String,
    #[serde(default, deserialize_with = "text")]
    name: String,
    #[serde(default, deserialize_with = "text")]
    language: String,
    #[serde(default, deserialize_with = "text")]
    category: String,
    #[serde(default, deserialize_with = "text")]
    status: String,
    #[serde(default, deserialize_with = "text")]
    quality: String,
    #[serde(default)]
    components: Value,
    #[serde(default, deserialize_with = "unix_time")]
    created_time: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "unix_time")]
    updated_time: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "unix_time")]
    status_updated_time: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "unix_time")]
    quality_updated_time: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "unix_time")]
    category_updated_time: Option<DateTime<Utc>>,
}

impl TemplateResource {
    /// `None` when `data` is not a template resource.
    pub(crate) fn parse(data: Value) -> Option<IncsTemplate> {
        match serde_json::from_value::<Self>(data) {
            Ok(r) if !r.template_id.is_empty() => Some(r.into()),
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(error = %e, "unreadable INCS template resource");
                None
            }
        }
    }

    /// A list entry; an unreadable one is logged and skipped.
    pub(crate) fn parse_entry(entry: Value) -> Option<IncsTemplate> {
        let parsed = Self::parse(entry);
        if parsed.is_none() {
            tracing::warn!("skipping an INCS template without template_id");
        }
        parsed
    }
}

impl From<TemplateResource> for IncsTemplate {
    fn from(r: TemplateResource) -> Self {
        Self {
            template_id: r.template_id,
            name: r.name,
            language: r.language,
            category: r.category,
            status: r.status,
            quality: Some(r.quality).filter(|q| !q.trim().is_empty()),
            components: match r.components {
                Value::Array(c) => c,
                _ => Vec::new(),
            },
            created_time: r.created_time,
            updated_time: r.updated_time,
            status_updated_time: r.status_updated_time,
            quality_updated_time: r.quality_updated_time,
            category_updated_time: r.category_updated_time,
        }
    }
}

/// The RCS template resource.
#[derive(Debug, Deserialize)]
pub(crate) struct RcsTemplateResource {
    #[serde(deserialize_with = "id_text")]
    template_id: String,
    #[serde(default, deserialize_with = "text")]
    name: String,
    #[serde(default, rename = "type", deserialize_with = "text")]
    kind: String,
    #[serde(default, deserialize_with = "text")]
    category: String,
    #[serde(default, deserialize_with = "text")]
    status: String,
    #[serde(default)]
    content: Value,
    #[serde(default, deserialize_with = "unix_time")]
    created_time: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "unix_time")]
    updated_time: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "unix_time")]
    status_updated_time: Option<DateTime<Utc>>,
}

impl RcsTemplateResource {
    pub(crate) fn parse(data: Value) -> Option<IncsRcsTemplate> {
        match serde_json::from_value::<Self>(data) {
            Ok(r) if !r.template_id.is_empty() => Some(r.into()),
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(error = %e, "unreadable INCS RCS template resource");
                None
            }
        }
    }

    pub(crate) fn parse_entry(entry: Value) -> Option<IncsRcsTemplate> {
        let parsed = Self::parse(entry);
        if parsed.is_none() {
            tracing::warn!("skipping an INCS RCS template without template_id");
        }
        parsed
    }
}

impl From<RcsTemplateResource> for IncsRcsTemplate {
    fn from(r: RcsTemplateResource) -> Self {
        Self {
            template_id: r.template_id,
            name: r.name,
            kind: r.kind,
            category: Some(r.category).filter(|c| !c.trim().is_empty()),
            status: r.status,
            content: r.content,
            created_time: r.created_time,
            updated_time: r.updated_time,
            status_updated_time: r.status_updated_time,
        }
    }
}

/// A string or a number, as text.
fn id_text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match Value::deserialize(d)? {
        Value::String(s) => Ok(s.trim().to_owned()),
        Value::Number(n) => Ok(n.to_string()),
        other => Err(serde::de::Error::custom(format!("an id cannot be {other}"))),
    }
}

/// A string, a number as text, or null as empty.
fn text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Null => String::new(),
        Value::String(s) => s,
        other => other.to_string(),
    })
}

/// Unix seconds as a number or numeric string; 0, null and "" are unset.
fn unix_time<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    let secs = match Value::deserialize(d)? {
        Value::Null => None,
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) if s.trim().is_empty() => None,
        Value::String(s) => Some(s.trim().parse::<i64>().map_err(serde::de::Error::custom)?),
        other => return Err(serde::de::Error::custom(format!("a time cannot be {other}"))),
    };
    Ok(secs.filter(|&s| s > 0).and_then(|s| DateTime::from_timestamp(s, 0)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn resources_are_read_leniently() {
        let t = TemplateResource::parse(json!({
            "template_id": 4166201267033543_u64, "name": "test_api_2", "language": "en_US", "category": "MARKETING",
            "status": "REJECTED", "quality": "", "components": null, "created_time": "1755076187",
            "updated_time": 0, "status_updated_time": null
        }))
        .unwrap();
        assert_eq!(t.template_id, "4166201267033543");
        assert_eq!(t.quality, None);
        assert!(t.components.is_empty());
        assert_eq!(t.created_time, DateTime::from_timestamp(1_755_076_187, 0));
        assert_eq!((t.updated_time, t.status_updated_time), (None, None));
        assert!(TemplateResource::parse(json!({"name": "x"})).is_none());
        assert!(TemplateResource::parse(json!({"template_id": ""})).is_none());
        assert!(TemplateResource::parse(json!([])).is_none());
        let r = RcsTemplateResource::parse(json!({"template_id": "7", "type": "text", "category": ""})).unwrap();
        assert_eq!((r.kind.as_str(), r.category), ("text", None));
    }
}
