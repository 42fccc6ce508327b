//! API keys: `Authorization: Bearer <key>`, looked up by the SHA-256 of the key, with scopes.

use std::collections::HashMap;
use std::future::{ready, Ready};
use std::num::NonZeroU32;
use std::sync::Arc;

use governor::clock::Clock;
use governor::{DefaultDirectRateLimiter, Quota};

use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};

use crate::config::{ApiKeyConfig, Scope};
use crate::http::problem::ApiError;

#[derive(Clone)]
pub struct Caller {
    pub name: String,
    scopes: Vec<Scope>,
    limiter: Arc<DefaultDirectRateLimiter>,
}

impl std::fmt::Debug for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caller").field("name", &self.name).field("scopes", &self.scopes).finish_non_exhaustive()
    }
}

impl Caller {
    /// # Errors
    /// 403 when the key lacks the scope.
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if self.scopes.contains(&scope) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(match scope {
                Scope::Send => "send",
                Scope::Read => "read",
                Scope::Admin => "admin",
            }))
        }
    }
}

/// The configured keys, by the SHA-256 of the key.
#[derive(Default)]
pub struct ApiKeys(HashMap<[u8; 32], Caller>);

impl ApiKeys {
    pub fn new(keys: &[ApiKeyConfig]) -> Self {
        Self(
            keys.iter()
                .filter_map(|k| {
                    // Validated at start-up as 64 hex digits; anything else could match no key.
                    let mut hash = [0u8; 32];
                    hex::decode_to_slice(k.sha256.expose_secret(), &mut hash).ok()?;
                    let rate = NonZeroU32::new(k.rate_per_second).unwrap_or(NonZeroU32::MIN);
                    let burst = rate.saturating_mul(NonZeroU32::MIN.saturating_add(1));
                    let limiter =
                        Arc::new(DefaultDirectRateLimiter::direct(Quota::per_second(rate).allow_burst(burst)));
                    Some((hash, Caller { name: k.name.clone(), scopes: k.scopes.clone(), limiter }))
                })
                .collect(),
        )
    }

    /// Looking up by the hash of what was presented leaks nothing about other keys: the map
    /// compares hashes, never the keys themselves.
    pub fn authenticate(&self, presented: &str) -> Option<&Caller> {
        self.0.get(&<[u8; 32]>::from(Sha256::digest(presented.as_bytes())))
    }
}

pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// The caller of a request, once its key was found and its rate checked (at most once a request):
/// the admission middleware does it before the request takes a place in the instance's budget,
/// so that a caller over its own rate hears 429 rather than the instance's 503.
#[derive(Clone)]
struct Admitted(Caller);

/// Finds the request's key and takes one request from its rate. `Ok(None)`: no key, or an unknown
/// one (the handler answers 401).
///
/// # Errors
/// 429 when the key is over its rate (counted).
pub fn admit(req: &HttpRequest) -> Result<Option<Caller>, ApiError> {
    if let Some(Admitted(caller)) = req.extensions().get::<Admitted>() {
        return Ok(Some(caller.clone()));
    }
    let keys = req.app_data::<web::Data<ApiKeys>>();
    let presented = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim);
    let caller = match (keys, presented) {
        (Some(keys), Some(p)) if !p.is_empty() => keys.authenticate(p),
        _ => None,
    };
    let Some(caller) = caller else { return Ok(None) };
    if let Err(not_until) = caller.limiter.check() {
        // The limiter's own clock: a new `DefaultClock` asks the CPU what it has (`cpuid`), which
        // in a virtual machine costs a trap to the hypervisor on every refusal.
        let wait = not_until.wait_time_from(caller.limiter.clock().now());
        if let Some(m) = req.app_data::<web::Data<crate::http::api::AppState>>() {
            m.metrics.api_rate_limited.with_label_values(&[caller.name.as_str()]).inc();
        }
        return Err(ApiError::RateLimited { retry_after_secs: wait.as_secs() + 1 });
    }
    req.extensions_mut().insert(Admitted(caller.clone()));
    Ok(Some(caller.clone()))
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        ready(admit(req).and_then(|caller| caller.ok_or(ApiError::Unauthorized)))
    }
}
