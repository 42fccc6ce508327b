//! `provider-sandbox`: a local stand-in for the INCS and InnoPaaS APIs (DESIGN.md §8).
//!
//! One HTTP listener serves three things:
//! - the providers' own paths, as the providers have them: INCS at the root (`/external/messages/...`),
//!   InnoPaaS under `/api/whatsapp/v3/...` (a placeholder until its half is built);
//! - the control plane under `/_sandbox/...`: recorded requests, fault injection, a webhook consumer
//!   for the gateway's internal events, and a health check;
//! - outgoing INCS `message_status_update` callbacks (`sent`, `delivered`, `read`) to a configured URL.
//!
//! Endpoints:
//! - `POST /external/messages/{whatsapp,viber,rcs}`, `GET /external/messages/status?message_ids=a,b`
//!   (INCS, header `certification-code`);
//! - `GET|DELETE /_sandbox/requests[?provider=incs|innopaas]`: recorded provider requests;
//! - `GET|POST|DELETE /_sandbox/faults`: fault injection (see `faults.rs` for the fields);
//! - `GET|POST|DELETE /_sandbox/webhooks`: the internal event consumer (POST answers 204);
//! - `GET /_sandbox/health`.
//!
//! Every request to a provider path goes through the same intake: it is recorded first (so requests
//! answered by a fault or an auth error are recorded too), then the fault book is consulted, and only
//! then the provider's handler runs. A second provider plugs in as one more [`Provider`] variant, one
//! more path prefix in [`Provider::for_path`] and one more module with a `handle` function.
//!
//! # Decisions where the provider documents are silent
//! - **HTTP status vs envelope `code` (INCS).** INCS documents only the envelope. The sandbox answers
//!   HTTP 200 for the provider codes 10001–10004 (so a client must treat "HTTP 200 with an error body"
//!   as an error) and the HTTP status equal to the code for 400/404/405/422/429/500.
//! - **Routing before auth.** An unknown INCS path answers 404 and a wrong method 405 before the
//!   certification code is checked, as a framework router in front of auth middleware would.
//! - **Validation messages** follow the Laravel style INCS shows ("The phone number is invalid.",
//!   "Too Many Attempts.", "Server Error"); all body problems are code 422.
//! - **Ids.** WhatsApp ids are built like real wamids: base64 of `1C 18 <len> <recipient digits> 15 02 00
//!   11 18 12 <18 random upper-case hex> 00`, which is exactly how the documents' own wamids decode.
//!   Viber ids are UUID v4, RCS ids UUID v7.
//! - **Simulated status.** A message's status is a pure function of the time since it was accepted
//!   and the three callback offsets: `accepted` (Meta's word for "taken, not yet sent"), then `sent`,
//!   `delivered`, `read`. The status poll and the callbacks therefore always agree, whether or not a
//!   callback URL is configured or reachable. `delivered_at` stays set once read (the documents show
//!   both variants); it is 0 until delivered, and `read_at` is 0 until read.
//! - **Status poll scope.** Any configured certification code may poll any message this sandbox
//!   issued: the documents use different codes per host family, and RCS sends may use either.
//! - **Callback identity.** `channel_id` is 30058 + the index of the certification code that sent the
//!   message, `business_phone` is 6281519236680 + that index (the documents' own example values).
//!   `received_at` is the Unix second of the simulated status change. Callbacks are not retried
//!   (INCS documents no retry policy); a failed delivery is logged as a warning.
//! - **Faults.** `status` is an HTTP status (100–599) or, for INCS, one of the provider codes
//!   10001–10004, answered as HTTP 200 with the matching envelope. A fault with a `status` answers
//!   before authentication, like a rate limiter in front of the API; a delay-only fault delays the
//!   normal answer, auth check included.
//! - **Recording** keeps everything until `DELETE /_sandbox/requests`; header values that are not
//!   UTF-8 are recorded lossily, and repeated headers are joined with `", "`.

mod callbacks;
mod control;
mod faults;
mod incs;
mod innopaas;
mod recording;

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use actix_web::{dev::ServerHandle, web, App, HttpRequest, HttpResponse, HttpServer};
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

use crate::faults::FaultBook;
use crate::recording::{RequestBody, RequestLog, WebhookLog};

/// The default INCS certification codes: one for the chat-api host family, one for the api host
/// family, shaped like the truncated codes in the INCS documents.
pub const DEFAULT_INCS_CERTIFICATION_CODES: [&str; 2] =
    ["af92196e-0d07-3c1d-a631-a71c5a1b0001", "f484bd42-5c2e-3d7a-9b1e-2f3c4d5e0001"];

/// Offsets after acceptance of the `sent`, `delivered` and `read` callbacks.
pub const DEFAULT_INCS_CALLBACK_DELAYS: [Duration; 3] =
    [Duration::from_millis(100), Duration::from_millis(300), Duration::from_millis(600)];

/// Largest request body a provider path accepts; INCS carousels with many cards stay far below it.
const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// A provider the sandbox stands in for. Recording and faults are keyed by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    Incs,
    Innopaas,
}

impl Provider {
    /// Which provider a request path belongs to. InnoPaaS lives under its own prefix; everything
    /// else outside `/_sandbox` is INCS, whose paths sit at the root.
    pub fn for_path(path: &str) -> Provider {
        if path.starts_with(innopaas::PATH_PREFIX) {
            Provider::Innopaas
        } else {
            Provider::Incs
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Incs => "incs",
            Provider::Innopaas => "innopaas",
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Provider {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "incs" => Ok(Provider::Incs),
            "innopaas" => Ok(Provider::Innopaas),
            other => Err(format!("unknown provider `{other}`, expected `incs` or `innopaas`")),
        }
    }
}

/// How to run a sandbox. `Default` gives the documented defaults on 127.0.0.1:8090.
#[derive(Clone)]
pub struct SandboxConfig {
    /// Listen address; port 0 picks a free port (see [`SandboxHandle::addr`]).
    pub listen: SocketAddr,
    /// Accepted values of the INCS `certification-code` header.
    pub incs_certification_codes: Vec<String>,
    /// Where INCS `message_status_update` callbacks go; `None` sends none.
    pub incs_callback_url: Option<String>,
    /// Offsets after acceptance of the `sent`, `delivered` and `read` statuses (non-decreasing).
    pub incs_callback_delays: [Duration; 3],
    /// actix-web worker threads.
    pub workers: usize,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 8090)),
            incs_certification_codes: DEFAULT_INCS_CERTIFICATION_CODES.iter().map(|code| code.to_string()).collect(),
            incs_callback_url: None,
            incs_callback_delays: DEFAULT_INCS_CALLBACK_DELAYS,
            workers: 2,
        }
    }
}

// Certification codes are credentials in the real world; keep them out of logs even here.
impl fmt::Debug for SandboxConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SandboxConfig")
            .field("listen", &self.listen)
            .field("incs_certification_codes", &format_args!("[{} redacted]", self.incs_certification_codes.len()))
            .field("incs_callback_url", &self.incs_callback_url)
            .field("incs_callback_delays", &self.incs_callback_delays)
            .field("workers", &self.workers)
            .finish()
    }
}

impl SandboxConfig {
    fn validate(&self) -> io::Result<()> {
        let invalid = |message: String| Err(io::Error::new(io::ErrorKind::InvalidInput, message));
        if self.incs_certification_codes.is_empty()
            || self.incs_certification_codes.iter().any(|code| code.trim().is_empty())
        {
            return invalid("incs_certification_codes: at least one non-empty code is needed".into());
        }
        if let Some(url) = &self.incs_callback_url {
            if let Err(error) = reqwest::Url::parse(url) {
                return invalid(format!("incs_callback_url `{url}` is not a URL: {error}"));
            }
        }
        let [sent, delivered, read] = self.incs_callback_delays;
        if sent > delivered || delivered > read {
            return invalid("incs_callback_delays: the sent, delivered and read offsets must not decrease".into());
        }
        if self.workers == 0 {
            return invalid("workers: at least one worker is needed".into());
        }
        Ok(())
    }
}

/// A running sandbox. Dropping it without [`SandboxHandle::stop`] still asks the server to stop.
pub struct SandboxHandle {
    addr: SocketAddr,
    server: ServerHandle,
    server_task: Option<JoinHandle<io::Result<()>>>,
    callbacks_task: Option<JoinHandle<()>>,
}

impl SandboxHandle {
    /// The address actually bound (the real port when the config asked for port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ip:port`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, lets in-flight requests finish (briefly) and drops pending callbacks.
    pub async fn stop(mut self) {
        self.server.stop(true).await;
        if let Some(task) = self.server_task.take() {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::warn!(%error, "sandbox server ended with an error"),
                Err(error) => tracing::warn!(%error, "sandbox server task failed"),
            }
        }
        if let Some(task) = self.callbacks_task.take() {
            task.abort();
        }
    }
}

impl Drop for SandboxHandle {
    fn drop(&mut self) {
        if self.server_task.is_some() {
            // The stop command is sent when `stop` is called; the returned future only waits.
            drop(self.server.stop(false));
        }
        if let Some(task) = self.callbacks_task.take() {
            task.abort();
        }
    }
}

/// Everything the handlers share, across all workers.
pub(crate) struct Sandbox {
    pub(crate) requests: RequestLog,
    pub(crate) webhooks: WebhookLog,
    pub(crate) faults: FaultBook,
    pub(crate) incs: incs::Incs,
}

/// Binds and starts a sandbox on the current Tokio runtime (a `#[tokio::main]` or `#[tokio::test]`
/// runtime is fine); the HTTP workers run on their own threads.
///
/// # Errors
/// `InvalidInput` for an unusable configuration, or the bind error.
pub async fn spawn(config: SandboxConfig) -> io::Result<SandboxHandle> {
    config.validate()?;

    let (callback_queue, callbacks_task) = match &config.incs_callback_url {
        Some(url) => {
            let (queue, task) = callbacks::start(url.clone(), config.incs_callback_delays)?;
            (Some(queue), Some(task))
        }
        None => (None, None),
    };

    let sandbox = web::Data::new(Sandbox {
        requests: RequestLog::default(),
        webhooks: WebhookLog::default(),
        faults: FaultBook::default(),
        incs: incs::Incs::new(config.incs_certification_codes.clone(), config.incs_callback_delays, callback_queue),
    });

    let app_state = sandbox.clone();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(app_state.clone())
            .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
            .configure(control::routes)
            .default_service(web::to(provider_request))
    })
    .workers(config.workers)
    // The embedding process owns signals; `main` turns Ctrl-C/SIGTERM into `stop`.
    .disable_signals()
    .shutdown_timeout(2)
    .bind(config.listen)?;

    let addr = server.addrs().first().copied().ok_or_else(|| io::Error::other("the server bound no address"))?;
    let server = server.run();
    let handle = server.handle();
    let server_task = tokio::spawn(server);

    Ok(SandboxHandle { addr, server: handle, server_task: Some(server_task), callbacks_task })
}

/// The single entry point of every provider path: record, consult the fault book, then answer as
/// the provider would.
async fn provider_request(req: HttpRequest, body: web::Bytes, sandbox: web::Data<Sandbox>) -> HttpResponse {
    let provider = Provider::for_path(req.path());
    let body = Arc::new(RequestBody::parse(&body));
    sandbox.requests.record(provider, &req, Arc::clone(&body));
    tracing::debug!(%provider, method = %req.method(), path = req.path(), "provider request");

    if let Some(fault) = sandbox.faults.take_matching(provider, &req) {
        if !fault.delay.is_zero() {
            tokio::time::sleep(fault.delay).await;
        }
        if let Some(response) = fault.response(provider) {
            return response;
        }
    }

    match provider {
        Provider::Incs => sandbox.incs.handle(&req, &body),
        Provider::Innopaas => innopaas::handle(&req),
    }
}

#[cfg(test)]
mod tests;
