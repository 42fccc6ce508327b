//! The template status cache: what the gateway knows of each provider template, fed by the
//! template API (every template it creates, reads or lists is upserted) and by template status
//! callbacks ([`TemplateCache::record`]). The send path asks [`TemplateCache::refuses`] whether a
//! template is known to be unusable (DESIGN.md §5), and [`TemplateCache::check_send`] whether the
//! send fills in the variables a provider read described (kept as `vars`).
//!
//! # Keys
//! All keys of one provider account share the hash tag `{<account>}`, so each script touches one
//! slot and the cache runs unchanged on a Redis Cluster.
//!
//! | key | type | holds |
//! | --- | --- | --- |
//! | `P:tpl:{A}:id:<template id>` | hash | `template_id`, `name`, `language`, `status`, `category`, `quality`, each of the last three with its `<field>_at` (ms), `updated_at` (ms, the latest of them), and `vars` (what a send must fill in, JSON) |
//! | `P:tpl:{A}:name:<name>` | hash | language → template id (`""` while the language is unknown) |
//! | `P:tpl:{A}:ids` | zset | every cached template id (score 0, so ordered by id), for listing |
//! | `P:tpl:{A}:looked:<name>` | string | a send's read of the provider did not describe this template (expires) |
//!
//! Nothing else expires: a template lives until it is deleted through the API.
//!
//! # Ordering
//! Each of status, category and quality keeps the time of the change it holds. A callback
//! ([`TemplateCache::record`]) applies when it is at least as new as what is stored, so a repeated
//! callback is harmless and a late one never undoes a newer change. A provider read
//! ([`TemplateCache::upsert`]) applies only when strictly newer, so a read stamped in the same
//! second as a callback does not undo it. Providers stamp whole seconds, so two changes can share
//! one: then a review outcome beats `PENDING` whichever way it came (a template is reviewed in
//! well under a second in the sandbox, and `PENDING` never follows a review in the same second).
//! Times from the gateway's own clock are cut to whole seconds too, so a callback that follows a
//! create is never "older" than the create merely for lack of milliseconds.

use gateway_core::content::rcs::RcsContent;
use gateway_core::content::whatsapp::WhatsAppContent;
use gateway_core::template::variables::check_rcs;
use gateway_core::validate::{FieldErrors, Path};
use gateway_core::Content;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use gateway_core::event::{TemplateChange, TemplateReport};
use redis::{AsyncCommands, Script};
use serde::Serialize;
use utoipa::ToSchema;

use crate::engine::{Engine, StoreError};

/// The statuses under which a template cannot be sent: a send of one is refused with 422.
pub const REFUSED_STATUSES: [&str; 3] = ["REJECTED", "PAUSED", "DISABLED"];

const RECORD: &str = r"
local at = tonumber(ARGV[6])
local prev = tonumber(redis.call('HGET', KEYS[1], ARGV[4] .. '_at') or '-1')
if at < prev then return 0 end
if at == prev and ARGV[4] == 'status' and ARGV[5] == 'PENDING'
    and (redis.call('HGET', KEYS[1], 'status') or 'PENDING') ~= 'PENDING' then return 0 end
redis.call('HSET', KEYS[1], 'template_id', ARGV[1], ARGV[4], ARGV[5], ARGV[4] .. '_at', ARGV[6])
if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], 'name', ARGV[2]) end
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'language', ARGV[3]) end
local updated = tonumber(redis.call('HGET', KEYS[1], 'updated_at') or '-1')
if at > updated then redis.call('HSET', KEYS[1], 'updated_at', ARGV[6]) end
redis.call('ZADD', KEYS[2], 0, ARGV[1])
if ARGV[7] == '1' then
  local language = redis.call('HGET', KEYS[1], 'language') or ''
  redis.call('HSET', KEYS[3], language, ARGV[1])
  if language ~= '' and redis.call('HGET', KEYS[3], '') == ARGV[1] then redis.call('HDEL', KEYS[3], '') end
end
return 1
";

const UPSERT: &str = r"
local changed = 0
local function put(field, value, at)
  if value == '' then return end
  local prev = tonumber(redis.call('HGET', KEYS[1], field .. '_at') or '-1')
  local newer = tonumber(at) > prev
  if not newer and tonumber(at) == prev and field == 'status' then
    local stored = redis.call('HGET', KEYS[1], 'status') or ''
    newer = (stored == '' or stored == 'PENDING') and value ~= 'PENDING' and value ~= stored
  end
  if newer then
    redis.call('HSET', KEYS[1], field, value, field .. '_at', at)
    local updated = tonumber(redis.call('HGET', KEYS[1], 'updated_at') or '-1')
    if tonumber(at) > updated then redis.call('HSET', KEYS[1], 'updated_at', at) end
    changed = 1
  end
end
redis.call('HSET', KEYS[1], 'template_id', ARGV[1])
if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], 'name', ARGV[2]) end
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'language', ARGV[3]) end
put('status', ARGV[4], ARGV[5])
put('category', ARGV[6], ARGV[7])
put('quality', ARGV[8], ARGV[9])
if not redis.call('HGET', KEYS[1], 'updated_at') then redis.call('HSET', KEYS[1], 'updated_at', ARGV[5]) end
redis.call('ZADD', KEYS[2], 0, ARGV[1])
if ARGV[2] ~= '' then
  local language = redis.call('HGET', KEYS[1], 'language') or ''
  redis.call('HSET', KEYS[3], language, ARGV[1])
  if language ~= '' and redis.call('HGET', KEYS[3], '') == ARGV[1] then redis.call('HDEL', KEYS[3], '') end
end
local merged = redis.call('HMGET', KEYS[1], 'status', 'status_at')
return {changed, merged[1] or '', merged[2] or ''}
";

const REMOVE: &str = r"
local pairs_ = redis.call('HGETALL', KEYS[3])
for i = 1, #pairs_, 2 do
  if pairs_[i + 1] == ARGV[1] then redis.call('HDEL', KEYS[3], pairs_[i]) end
end
redis.call('ZREM', KEYS[2], ARGV[1])
return redis.call('DEL', KEYS[1])
";

/// What the cache knows of one template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct CachedTemplate {
    #[schema(example = "4166201267033543")]
    pub template_id: String,
    /// Empty when no report has named it yet.
    #[schema(example = "order_update_1")]
    pub name: String,
    #[schema(example = "en_US")]
    pub language: Option<String>,
    #[schema(example = "UTILITY")]
    pub category: Option<String>,
    #[schema(example = "APPROVED")]
    pub status: Option<String>,
    #[schema(example = "GREEN")]
    pub quality: Option<String>,
    /// When the status last changed, as far as the cache knows.
    pub status_at: Option<DateTime<Utc>>,
    /// The latest change the cache holds.
    pub updated_at: DateTime<Utc>,
}

/// A provider's view of a template, to upsert. Empty strings are "not known"; each value comes
/// with the time it took effect (the provider's, else the time it was read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateSnapshot {
    pub template_id: String,
    pub name: String,
    pub language: Option<String>,
    pub status: Option<String>,
    pub status_at: DateTime<Utc>,
    pub category: Option<String>,
    pub category_at: DateTime<Utc>,
    pub quality: Option<String>,
    pub quality_at: DateTime<Utc>,
    /// What a send of it must fill in, when the provider's description says.
    pub variables: Option<TemplateVariables>,
}

/// What a send of a template must fill in, kept beside its status (`vars`, JSON).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TemplateVariables {
    Whatsapp(gateway_core::template::variables::WhatsAppVariables),
    Rcs(std::collections::BTreeSet<String>),
}

/// A template's status once an upsert merged the provider's view with the cache's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergedStatus {
    /// Whether the upsert changed anything.
    pub changed: bool,
    pub status: Option<String>,
    pub status_at: Option<DateTime<Utc>>,
}

pub use gateway_core::template::to_seconds;

#[derive(Clone)]
pub struct TemplateCache {
    engine: Engine,
    record: Arc<Script>,
    upsert: Arc<Script>,
    remove: Arc<Script>,
}

struct Keys {
    tag: String,
}

impl Keys {
    fn new(engine: &Engine, account: &str) -> Self {
        Self { tag: format!("{}:tpl:{{{account}}}", engine.prefix()) }
    }
    fn template(&self, id: &str) -> String {
        format!("{}:id:{id}", self.tag)
    }
    fn name(&self, name: &str) -> String {
        format!("{}:name:{name}", self.tag)
    }
    fn ids(&self) -> String {
        format!("{}:ids", self.tag)
    }
    fn looked(&self, name: &str) -> String {
        format!("{}:looked:{name}", self.tag)
    }
}

fn opt(fields: &HashMap<String, String>, key: &str) -> Option<String> {
    fields.get(key).filter(|v| !v.is_empty()).cloned()
}

fn ms_time(ms: &str) -> Option<DateTime<Utc>> {
    ms.parse::<i64>().ok().and_then(DateTime::from_timestamp_millis)
}

fn from_fields(fields: HashMap<String, String>) -> Option<CachedTemplate> {
    let template_id = opt(&fields, "template_id")?;
    Some(CachedTemplate {
        name: fields.get("name").cloned().unwrap_or_default(),
        language: opt(&fields, "language"),
        category: opt(&fields, "category"),
        status: opt(&fields, "status"),
        quality: opt(&fields, "quality"),
        status_at: fields.get("status_at").and_then(|v| ms_time(v)),
        updated_at: fields.get("updated_at").and_then(|v| ms_time(v)).unwrap_or_default(),
        template_id,
    })
}

impl TemplateCache {
    /// A Redis call bounded by the store's timeout, on the heap: Redis futures are large, and
    /// a handler (or test) awaiting several would otherwise carry them all in its own state.
    fn run<'a, T: Send + 'a>(
        &'a self,
        f: impl Future<Output = Result<T, StoreError>> + Send + 'a,
    ) -> Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>> {
        Box::pin(self.engine.bounded(f))
    }

    pub fn new(engine: Engine) -> Self {
        Self {
            engine,
            record: Arc::new(Script::new(RECORD)),
            upsert: Arc::new(Script::new(UPSERT)),
            remove: Arc::new(Script::new(REMOVE)),
        }
    }

    /// Applies a template callback (status, category or quality). Returns whether it changed
    /// anything (`false` for one older than what is stored).
    ///
    /// # Errors
    /// [`StoreError`] when Redis is unreachable: the caller must not acknowledge the callback.
    pub async fn record(&self, account: &str, report: &TemplateReport) -> Result<bool, StoreError> {
        if report.template_id.is_empty() {
            return Ok(false);
        }
        let keys = Keys::new(&self.engine, account);
        let field = match report.change {
            TemplateChange::Status => "status",
            TemplateChange::Category => "category",
            TemplateChange::Quality => "quality",
        };
        let id_key = keys.template(&report.template_id);
        self.run(async {
            let mut c = self.engine.connection().await?;
            // The name index needs the name; a report may not carry it, the cache may know it.
            let name = if report.template_name.is_empty() {
                c.hget::<_, _, Option<String>>(&id_key, "name").await?.unwrap_or_default()
            } else {
                report.template_name.clone()
            };
            let applied: i64 = self
                .record
                .key(&id_key)
                .key(keys.ids())
                .key(keys.name(&name))
                .arg(&report.template_id)
                .arg(&report.template_name)
                .arg(report.language.as_deref().unwrap_or(""))
                .arg(field)
                .arg(report.new_value.trim().to_ascii_uppercase())
                .arg(report.at.timestamp_millis())
                .arg(if name.is_empty() { "0" } else { "1" })
                .invoke_async(&mut c)
                .await?;
            Ok(applied == 1)
        })
        .await
    }

    /// Stores what a provider says of a template, keeping any newer change a callback brought,
    /// and returns the status that results: the provider's, or the cache's when that is newer.
    ///
    /// # Errors
    /// [`StoreError`] when Redis is unreachable.
    pub async fn upsert(&self, account: &str, t: &TemplateSnapshot) -> Result<MergedStatus, StoreError> {
        if t.template_id.is_empty() {
            return Ok(MergedStatus { changed: false, status: t.status.clone(), status_at: Some(t.status_at) });
        }
        let keys = Keys::new(&self.engine, account);
        let value = |v: &Option<String>| v.as_deref().map(|s| s.trim().to_ascii_uppercase()).unwrap_or_default();
        self.run(async {
            let mut c = self.engine.connection().await?;
            let (changed, status, status_at): (i64, String, String) = self
                .upsert
                .key(keys.template(&t.template_id))
                .key(keys.ids())
                .key(keys.name(&t.name))
                .arg(&t.template_id)
                .arg(&t.name)
                .arg(t.language.as_deref().unwrap_or(""))
                .arg(value(&t.status))
                .arg(t.status_at.timestamp_millis())
                .arg(value(&t.category))
                .arg(t.category_at.timestamp_millis())
                .arg(value(&t.quality))
                .arg(t.quality_at.timestamp_millis())
                .invoke_async(&mut c)
                .await?;
            if let Some(vars) = t.variables.as_ref().and_then(|v| serde_json::to_string(v).ok()) {
                let () = c.hset(keys.template(&t.template_id), "vars", vars).await?;
            }
            Ok(MergedStatus {
                changed: changed == 1,
                status: Some(status).filter(|s| !s.is_empty()),
                status_at: ms_time(&status_at),
            })
        })
        .await
    }

    /// Forgets a template (it was deleted).
    ///
    /// # Errors
    /// [`StoreError`] when Redis is unreachable.
    pub async fn remove(&self, account: &str, template_id: &str) -> Result<(), StoreError> {
        let keys = Keys::new(&self.engine, account);
        let id_key = keys.template(template_id);
        self.run(async {
            let mut c = self.engine.connection().await?;
            let name: Option<String> = c.hget(&id_key, "name").await?;
            let _: i64 = self
                .remove
                .key(&id_key)
                .key(keys.ids())
                .key(keys.name(name.as_deref().unwrap_or("")))
                .arg(template_id)
                .invoke_async(&mut c)
                .await?;
            Ok(())
        })
        .await
    }

    /// One template by its provider id.
    ///
    /// # Errors
    /// [`StoreError`] when Redis is unreachable.
    pub async fn by_id(&self, account: &str, template_id: &str) -> Result<Option<CachedTemplate>, StoreError> {
        let key = Keys::new(&self.engine, account).template(template_id);
        self.run(async {
            let mut c = self.engine.connection().await?;
            let fields: HashMap<String, String> = c.hgetall(&key).await?;
            Ok(from_fields(fields))
        })
        .await
    }

    /// Every known language variant of a template name.
    async fn variants(&self, account: &str, name: &str) -> Result<Vec<CachedTemplate>, StoreError> {
        let keys = Keys::new(&self.engine, account);
        self.run(async {
            let mut c = self.engine.connection().await?;
            let index: HashMap<String, String> = c.hgetall(keys.name(name)).await?;
            let mut ids: Vec<&String> = index.values().collect();
            ids.sort();
            ids.dedup();
            let mut out = Vec::new();
            for id in ids {
                let fields: HashMap<String, String> = c.hgetall(keys.template(id)).await?;
                out.extend(from_fields(fields));
            }
            Ok(out)
        })
        .await
    }

    /// A template by name. With a language: that variant, else the one whose language is not yet
    /// known. Without: the most recently updated variant.
    ///
    /// # Errors
    /// [`StoreError`] when Redis is unreachable.
    pub async fn by_name(
        &self,
        account: &str,
        name: &str,
        language: Option<&str>,
    ) -> Result<Option<CachedTemplate>, StoreError> {
        let variants = self.variants(account, name).await?;
        Ok(pick(variants, language))
    }

    /// What a send of this template must fill in, when a provider read described it.
    ///
    /// # Errors
    /// [`StoreError`] when Redis is unreachable.
    pub async fn variables(
        &self,
        account: &str,
        name: &str,
        language: Option<&str>,
    ) -> Result<Option<TemplateVariables>, StoreError> {
        let Some(t) = self.by_name(account, name, language).await? else { return Ok(None) };
        let keys = Keys::new(&self.engine, account);
        let raw: Option<String> = self
            .run(async {
                let mut c = self.engine.connection().await?;
                Ok(c.hget(keys.template(&t.template_id), "vars").await?)
            })
            .await?;
        Ok(raw.and_then(|r| serde_json::from_str(&r).ok()))
    }

    /// Whether a send already read the provider for this template and found no description of
    /// it, within the last `for_how_long` (see [`TemplateCache::looked_up`]).
    ///
    /// # Errors
    /// [`StoreError`] when Redis is unreachable.
    pub async fn recently_looked_up(&self, account: &str, name: &str) -> Result<bool, StoreError> {
        let key = Keys::new(&self.engine, account).looked(name);
        self.run(async {
            let mut c = self.engine.connection().await?;
            Ok(c.exists(&key).await?)
        })
        .await
    }

    /// Remembers that the provider was read for this template, so sends do not read it again for
    /// `for_how_long` when it was not found.
    ///
    /// # Errors
    /// [`StoreError`] when Redis is unreachable.
    pub async fn looked_up(&self, account: &str, name: &str, for_how_long: Duration) -> Result<(), StoreError> {
        let key = Keys::new(&self.engine, account).looked(name);
        self.run(async {
            let mut c = self.engine.connection().await?;
            let () = c.set_ex(&key, 1, for_how_long.as_secs().max(1)).await?;
            Ok(())
        })
        .await
    }

    /// Checks a template send against what the cache knows of the template at the first of
    /// `accounts` that describes it: parameter counts per component (WhatsApp), a value for every
    /// variable (RCS). Unknown templates pass: the provider will judge them.
    ///
    /// # Errors
    /// [`StoreError`] when Redis is unreachable.
    pub async fn check_send(&self, accounts: &[String], content: &Content) -> Result<FieldErrors, StoreError> {
        let root = Path::root().key("template");
        let mut errors = FieldErrors::default();
        let (name, language) = match content {
            Content::Whatsapp(WhatsAppContent::Template(t)) => (&t.name, t.language.as_deref()),
            Content::Rcs(RcsContent::Template(t)) => (&t.name, None),
            _ => return Ok(errors),
        };
        for account in accounts {
            let Some(vars) = self.variables(account, name, language).await? else { continue };
            match (vars, content) {
                (TemplateVariables::Whatsapp(v), Content::Whatsapp(WhatsAppContent::Template(t))) => {
                    v.check(&t.components, &root, &mut errors);
                }
                (TemplateVariables::Rcs(v), Content::Rcs(RcsContent::Template(t))) => {
                    check_rcs(&v, t.parameters.as_ref(), &root, &mut errors);
                }
                _ => continue,
            }
            break;
        }
        Ok(errors)
    }

    /// The status of a template a send must not use: `REJECTED`, `PAUSED` or `DISABLED`, else
    /// `None` (unknown templates, and every other status, are let through). Without a language
    /// (INCS sends carry none) a name is refused only when every known variant of it is.
    ///
    /// # Errors
    /// [`StoreError`] when Redis is unreachable.
    pub async fn refuses(
        &self,
        account: &str,
        name: &str,
        language: Option<&str>,
    ) -> Result<Option<String>, StoreError> {
        let variants = self.variants(account, name).await?;
        Ok(refusal(variants, language))
    }

    /// Up to `limit` cached templates after the template id `after`, in id order.
    ///
    /// # Errors
    /// [`StoreError`] when Redis is unreachable.
    pub async fn page(
        &self,
        account: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<CachedTemplate>, StoreError> {
        let keys = Keys::new(&self.engine, account);
        let min = after.map_or_else(|| "-".to_owned(), |a| format!("({a}"));
        self.run(async {
            let mut c = self.engine.connection().await?;
            let ids: Vec<String> = redis::cmd("ZRANGEBYLEX")
                .arg(keys.ids())
                .arg(&min)
                .arg("+")
                .arg("LIMIT")
                .arg(0)
                .arg(limit)
                .query_async(&mut c)
                .await?;
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                let fields: HashMap<String, String> = c.hgetall(keys.template(&id)).await?;
                out.extend(from_fields(fields));
            }
            Ok(out)
        })
        .await
    }
}

fn pick(variants: Vec<CachedTemplate>, language: Option<&str>) -> Option<CachedTemplate> {
    match language {
        Some(l) => {
            let (exact, unknown): (Vec<_>, Vec<_>) = variants
                .into_iter()
                .filter(|v| v.language.as_deref().is_none_or(|x| x == l))
                .partition(|v| v.language.is_some());
            exact.into_iter().next().or_else(|| unknown.into_iter().next())
        }
        None => variants.into_iter().max_by_key(|v| v.updated_at),
    }
}

fn refused(t: &CachedTemplate) -> Option<String> {
    t.status.as_deref().filter(|s| REFUSED_STATUSES.contains(s)).map(str::to_owned)
}

fn refusal(variants: Vec<CachedTemplate>, language: Option<&str>) -> Option<String> {
    match language {
        Some(_) => pick(variants, language).as_ref().and_then(refused),
        None => {
            let statuses: Option<Vec<String>> = variants.iter().map(refused).collect();
            let latest = variants.iter().max_by_key(|v| v.updated_at).and_then(refused);
            statuses.filter(|s| !s.is_empty()).and(latest)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn t(id: &str, language: Option<&str>, status: &str, updated_s: i64) -> CachedTemplate {
        CachedTemplate {
            template_id: id.into(),
            name: "n".into(),
            language: language.map(String::from),
            category: None,
            status: Some(status.into()),
            quality: None,
            status_at: DateTime::from_timestamp(updated_s, 0),
            updated_at: DateTime::from_timestamp(updated_s, 0).unwrap(),
        }
    }

    #[test]
    fn a_language_picks_its_variant_or_the_unknown_one() {
        let vs =
            vec![t("1", Some("en_US"), "APPROVED", 1), t("2", Some("es"), "REJECTED", 2), t("3", None, "PAUSED", 3)];
        assert_eq!(pick(vs.clone(), Some("es")).map(|v| v.template_id), Some("2".into()));
        assert_eq!(pick(vs.clone(), Some("fr")).map(|v| v.template_id), Some("3".into()));
        assert_eq!(pick(vs.clone(), None).map(|v| v.template_id), Some("3".into()));
        assert_eq!(pick(vec![], None), None);
        assert_eq!(refusal(vs.clone(), Some("es")), Some("REJECTED".into()));
        assert_eq!(refusal(vs.clone(), Some("en_US")), None);
        // Without a language: refused only when no variant is usable.
        assert_eq!(refusal(vs, None), None);
        let all = vec![t("2", Some("es"), "REJECTED", 2), t("3", Some("en"), "DISABLED", 3)];
        assert_eq!(refusal(all, None), Some("DISABLED".into()));
        assert_eq!(refusal(vec![], None), None);
        assert_eq!(refusal(vec![t("1", None, "PENDING", 1)], Some("en")), None);
    }

    #[test]
    fn seconds_drop_the_milliseconds() {
        let at = DateTime::from_timestamp_millis(1_754_466_101_999).unwrap();
        assert_eq!(to_seconds(at).timestamp_millis(), 1_754_466_101_000);
    }
}
