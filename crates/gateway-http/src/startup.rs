//! Builds the application from a validated configuration and runs it.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use crate::accounts::Accounts;
use actix_web::dev::{Server, ServerHandle, Service};
use actix_web::http::header::HeaderValue;
use actix_web::{web, App, HttpResponse, HttpServer, ResponseError};
use futures::future::Either;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, info_span, warn, Instrument};
use utoipa_actix_web::AppExt;

use crate::config::Config;
use crate::delivery::circuit::CircuitBreaker;
use crate::delivery::sampler;
use crate::delivery::worker::{Dispatcher, Lane, Lanes};
use crate::engine::{Engine, LaneSpec};
use crate::http::api::{self, AppState};
use crate::http::auth::ApiKeys;
use crate::http::problem::ApiError;
use crate::http::routing::Router;
use crate::metrics::Metrics;
use crate::telemetry;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Config(String),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: String, source: std::io::Error },
}

pub struct Application {
    port: u16,
    /// Stopped last, once the server has answered its last callback.
    callbacks: CallbackRuntime,
    server: Server,
    dispatcher: Option<Dispatcher>,
    event_loops: Option<tokio_util::task::TaskTracker>,
    sampler_stop: CancellationToken,
    grace: Duration,
}

/// The callbacks' thread (see `AppState::callbacks`). Shut down without blocking, so that it may
/// end inside another runtime (tests run the gateway in theirs).
struct CallbackRuntime(Option<tokio::runtime::Runtime>);

impl Drop for CallbackRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

fn http_client() -> Result<reqwest::Client, StartError> {
    reqwest::Client::builder()
        .user_agent(concat!("messaging-gateway/", env!("CARGO_PKG_VERSION")))
        .pool_max_idle_per_host(256)
        .build()
        .map_err(|e| StartError::Config(format!("http client: {e}")))
}

fn build_lanes(config: &Config, accounts: &Accounts) -> Lanes {
    let mut lanes = Lanes::default();
    for account in accounts.iter() {
        let Some(cfg) = config.account(&account.name) else { continue };
        let spec = LaneSpec {
            sender: account.sender.clone(),
            lane: account.name.clone(),
            rate_per_second: cfg.rate_per_second,
            burst: cfg.burst,
        };
        let circuit = CircuitBreaker::new(
            config.engine.circuit_failure_threshold,
            Duration::from_millis(config.engine.circuit_open_ms),
        );
        lanes.insert(Lane::new(spec, account.adapter.clone(), circuit, cfg.provider_timeout()));
    }
    lanes
}

impl Application {
    /// Binds the listener and starts the delivery workers. Redis need not be up yet.
    ///
    /// # Errors
    /// [`StartError`] for configuration the adapters refuse or a port that cannot be bound.
    pub fn build(config: Config) -> Result<Self, StartError> {
        let metrics = Metrics::new().map_err(|e| StartError::Config(format!("metrics: {e}")))?;
        // Two pools: connections made on the HTTP workers' runtimes die with those runtimes at
        // shutdown, and the delivery workers must still record their last outcomes then.
        let engine = Engine::new(&config.redis, &config.engine).map_err(StartError::Config)?;
        let worker_engine = Engine::new(&config.redis, &config.engine).map_err(StartError::Config)?;
        // Callbacks get a connection of their own, so they never queue behind the API's calls, and
        // a thread of their own that drives it (the connection's task runs where it was made).
        let callback_engine = Engine::new(&config.redis, &config.engine).map_err(StartError::Config)?;
        let callbacks = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("callbacks")
            .enable_all()
            .build()
            .map_err(|e| StartError::Config(format!("callbacks thread: {e}")))?;
        {
            let engine = callback_engine.clone();
            callbacks.spawn(async move {
                if let Err(e) = engine.ping().await {
                    debug!(error = %e, "Redis not reachable yet for callbacks");
                }
            });
        }
        let admission = Arc::new(crate::http::admission::Admission::new(&config.admission));
        let http = http_client()?;
        let accounts = Arc::new(Accounts::build(&config, &http).map_err(StartError::Config)?);
        let lanes = Arc::new(build_lanes(&config, &accounts));
        let router = Router::new(&config, lanes.clone());
        // Each sender's lanes in the sampler's order, so its first lane carries the per-sender
        // queue series from the start.
        let known_lanes: Vec<_> = sampler::lanes_by_sender(&lanes)
            .into_iter()
            .flat_map(|(sender, names)| names.into_iter().map(move |lane| (sender.clone(), lane)))
            .filter_map(|(sender, lane)| {
                let account = accounts.get(&lane)?;
                Some((sender, lane, account.provider, account.channel))
            })
            .collect();
        let key_names: Vec<String> = config.api_keys.iter().map(|k| k.name.clone()).collect();
        metrics.initialise(&known_lanes, &key_names);
        let events =
            crate::delivery::events::Events::new(worker_engine.clone(), &config.subscriptions, metrics.clone())
                .map_err(StartError::Config)?;
        let worker_chains = crate::delivery::fallback::Chains {
            engine: worker_engine.clone(),
            events: events.clone(),
            metrics: metrics.clone(),
            lanes: lanes.clone(),
        };
        let api_chains = crate::delivery::fallback::Chains {
            engine: callback_engine.clone(),
            events: events.with_engine(callback_engine.clone()),
            metrics: metrics.clone(),
            lanes: lanes.clone(),
        };
        let policy = std::sync::Arc::new(config.engine.retry_policy());
        let worker_reports = crate::inbound::reports::Reports {
            engine: worker_engine.clone(),
            events: events.clone(),
            metrics: metrics.clone(),
            chains: worker_chains.clone(),
            policy: policy.clone(),
        };
        let api_reports = crate::inbound::reports::Reports {
            engine: callback_engine.clone(),
            events: events.with_engine(callback_engine.clone()),
            metrics: metrics.clone(),
            chains: api_chains,
            policy,
        };
        let state = web::Data::new(AppState {
            engine: engine.clone(),
            router,
            lanes: lanes.clone(),
            metrics: metrics.clone(),
            max_body_bytes: config.server.max_body_bytes,
            max_batch_body_bytes: config.server.max_batch_body_bytes,
            accounts: accounts.clone(),
            reports: api_reports,
            senders: config.senders.clone(),
            templates: crate::inbound::templates::TemplateCache::new(engine.clone()),
            events: events.with_engine(engine.clone()),
            admission: admission.clone(),
            callbacks: callbacks.handle().clone(),
        });
        let keys = web::Data::new(ApiKeys::new(&config.api_keys));
        let addr = config.server.listen;
        let listener =
            TcpListener::bind(addr).map_err(|source| StartError::Listen { addr: addr.to_string(), source })?;
        let port =
            listener.local_addr().map_err(|source| StartError::Listen { addr: addr.to_string(), source })?.port();
        let grace = Duration::from_secs(config.server.shutdown_grace_secs);
        let http_metrics = metrics.clone();
        let spec = crate::http::openapi::spec().map_err(|e| StartError::Config(format!("openapi: {e}")))?;
        let spec = crate::http::openapi::for_deployment(spec, &config);
        let methods = Arc::new(crate::http::openapi::MethodTable::new(&spec));
        metrics.initialise_routes(&spec);

        let server = HttpServer::new(move || {
            let m = http_metrics.clone();
            let methods = methods.clone();
            let unrouted = methods.clone();
            App::new()
                .app_data(state.clone())
                .app_data(keys.clone())
                .app_data(web::QueryConfig::default().error_handler(|e, _| {
                    ApiError::Validation(gateway_core::validate::FieldErrors::single("query", e.to_string())).into()
                }))
                .app_data(web::PathConfig::default().error_handler(|e, _| ApiError::NotFound(e.to_string()).into()))
                .app_data(web::Data::from(methods.clone()))
                .wrap_fn(move |req, srv| {
                    let method = req.method().to_string();
                    // A documented literal path is its own route: the router's own lookup (which
                    // tries the templated routes' patterns first) is for the rest.
                    let route = match methods.literal_route(req.path()) {
                        Some(route) => route.to_owned(),
                        None => req.match_pattern().unwrap_or_else(|| "unmatched".to_owned()),
                    };
                    let request_id = telemetry::request_id(req.headers());
                    let span = info_span!(
                        "request",
                        %request_id,
                        %method,
                        %route,
                        otel.name = %format_args!("{method} {route}"),
                        otel.kind = "server",
                        http.response.status_code = tracing::field::Empty,
                        otel.status_code = tracing::field::Empty,
                    );
                    telemetry::continue_request_trace(&span, req.headers());
                    let started = std::time::Instant::now();
                    let m = m.clone();
                    let fut = match methods.refuses_literal(req.method().as_str(), req.path()) {
                        None => Either::Left(span.in_scope(|| srv.call(req))),
                        Some(allow) => {
                            let refusal = ApiError::MethodNotAllowed { allow }.error_response();
                            Either::Right(std::future::ready(Ok(req.into_response(refusal))))
                        }
                    };
                    async move {
                        let mut res = fut.await?;
                        let status = res.status();
                        let elapsed = started.elapsed();
                        m.http_requests.with_label_values(&[&method, &route, status.as_str()]).inc();
                        m.http_duration.with_label_values(&[&method, &route]).observe(elapsed.as_secs_f64());
                        if let Ok(v) = HeaderValue::from_str(&request_id) {
                            res.headers_mut().insert(telemetry::REQUEST_ID, v);
                        }
                        let span = tracing::Span::current();
                        span.record("http.response.status_code", status.as_u16());
                        if status.is_server_error() {
                            span.record("otel.status_code", "ERROR");
                        }
                        let latency_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
                        if status.is_server_error() {
                            warn!(status = status.as_u16(), latency_ms, "request failed");
                        } else {
                            debug!(status = status.as_u16(), latency_ms, "request");
                        }
                        Ok(res)
                    }
                    .instrument(span)
                })
                // Outermost: a request refused by admission gets no span, no routing and no
                // handler, only its answer and its count, so that a refusal stays cheap when
                // thousands a second are refused.
                .wrap(actix_web::middleware::from_fn(admit))
                // Every documented route, from the table the API document is built from; after
                // it, the documentation itself, which the document does not list.
                .into_utoipa_app()
                .configure(api::routes)
                .into_app()
                .service(
                    utoipa_swagger_ui::SwaggerUi::new("/docs/{_:.*}")
                        .external_urls_from_iter_unchecked([("/openapi.json", spec.clone())]),
                )
                .route(
                    "/docs",
                    web::get().to(|| async { HttpResponse::Found().insert_header(("Location", "/docs/")).finish() }),
                )
                // Nothing routed it: 405 with `Allow` when the path is documented with other
                // methods (RFC 9110 §15.5.6), else 404. Paths with parameters are matched only
                // here, so a routed request does not pay for matching every path of the table.
                .default_service(web::to(move |req: actix_web::HttpRequest| {
                    let refusal = match unrouted.refuses(req.method().as_str(), req.path()) {
                        Some(allow) => ApiError::MethodNotAllowed { allow },
                        None => ApiError::NotFound("route".into()),
                    };
                    std::future::ready(Err::<HttpResponse, _>(refusal))
                }))
        })
        .workers(config.server.workers)
        .shutdown_timeout(config.server.shutdown_grace_secs)
        .listen(listener)
        .map_err(|source| StartError::Listen { addr: addr.to_string(), source })?
        .run();

        let sampler_stop = CancellationToken::new();
        crate::http::admission::spawn_memory_sampler(
            worker_engine.clone(),
            admission,
            metrics.clone(),
            Duration::from_millis(config.admission.memory_sample_ms),
            sampler_stop.clone(),
        );
        // Wake-ups are heard by a process that dispatches, until its workers have stopped (the
        // sampler's stop comes after them); without them, nothing idle waits long.
        let wake = crate::delivery::wake::WakeState::default();
        let chain_bells = crate::delivery::wake::ChainBells::default();
        sampler::spawn(
            worker_engine.clone(),
            lanes.clone(),
            metrics.clone(),
            (Duration::from_millis(config.engine.sample_interval_ms), Duration::from_millis(config.engine.idle_max_ms)),
            wake.clone(),
            sampler_stop.clone(),
        );
        let (dispatcher, event_loops) = if config.engine.dispatch {
            let loops = events.start(Duration::from_millis(config.engine.idle_poll_ms), sampler_stop.clone());
            tokio::spawn(crate::delivery::wake::subscribe(
                worker_engine.wake_clients(),
                worker_engine.wake_channel(),
                lanes.clone(),
                chain_bells.clone(),
                wake.clone(),
                sampler_stop.clone(),
            ));
            worker_chains.spawn_timer(
                config.senders.iter().map(|s| s.name.clone()).collect(),
                crate::delivery::fallback::TimerWake {
                    state: wake.clone(),
                    bells: chain_bells,
                    idle_max: Duration::from_millis(config.engine.idle_max_ms),
                },
                sampler_stop.clone(),
            );
            crate::inbound::reconcile::spawn(
                accounts.clone(),
                worker_reports.clone(),
                Duration::from_secs(config.engine.reconcile_after_secs),
                Duration::from_millis(config.engine.reconcile_interval_ms),
                sampler_stop.clone(),
            );
            (
                Some(Dispatcher::start(worker_engine, lanes, config.engine.clone(), metrics, worker_reports, wake)),
                Some(loops),
            )
        } else {
            (None, None)
        };
        info!(port, "gateway listening");
        Ok(Self {
            port,
            callbacks: CallbackRuntime(Some(callbacks)),
            server,
            dispatcher,
            event_loops,
            sampler_stop,
            grace,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A handle that stops the HTTP server (gracefully) from elsewhere.
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until SIGTERM/SIGINT (or the handle stops it), then stops the workers gracefully.
    ///
    /// # Errors
    /// An I/O error from the HTTP server.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        if let Some(d) = self.dispatcher {
            info!("stopping delivery workers");
            d.stop(self.grace).await;
        }
        // Event deliveries stop after the workers, which may still emit events.
        self.sampler_stop.cancel();
        if let Some(loops) = self.event_loops {
            let _ = tokio::time::timeout(self.grace, loops.wait()).await;
        }
        // Callbacks still being applied were answered before the server stopped.
        drop(self.callbacks);
        info!("gateway stopped");
        result
    }
}

/// How long a refusal waits for the rest of the refused request's body.
const DRAIN_WAIT: Duration = Duration::from_millis(50);

/// Reads and drops the refused request's body (up to `limit` bytes, for up to [`DRAIN_WAIT`]), so
/// that the connection stays open for the caller's next request: actix closes a connection whose
/// request body was left unread, and a caller refused thousands of times a second would then pay
/// for a new connection on every refusal, and so would the gateway.
async fn drain_body(req: &mut actix_web::dev::ServiceRequest, limit: usize) {
    use actix_web::HttpMessage;
    use futures::StreamExt;
    let mut payload = req.take_payload();
    let read = async {
        let mut n = 0usize;
        while let Some(Ok(chunk)) = payload.next().await {
            n += chunk.len();
            if n > limit {
                break;
            }
        }
    };
    // Most bodies came with their head: read without arming a timer, which is a cost per refusal.
    let mut read = std::pin::pin!(read);
    if futures::FutureExt::now_or_never(&mut read).is_none() {
        let _ = tokio::time::timeout(DRAIN_WAIT, read).await;
    }
}

/// Holds a place in the request's budget (API or callbacks) while it is handled; beyond the
/// budget, after at most `admission.max_wait_ms`, a 503 with `Retry-After` and no work done. An
/// API request's key is checked against its own rate first (no Redis), so a caller over it gets
/// 429 whether or not the instance is busy.
async fn admit(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<actix_web::dev::ServiceResponse, actix_web::Error> {
    use actix_web::dev::ServiceResponse;
    let budget = crate::http::admission::Budget::of(req.path());
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let (Some(budget), Some(state)) = (budget, state) else {
        return next.call(req).await.map(ServiceResponse::map_into_boxed_body);
    };
    let started = std::time::Instant::now();
    if budget == crate::http::admission::Budget::Api {
        if let Err(refusal) = crate::http::auth::admit(req.request()) {
            return Ok(refuse(req, &refusal, &state, started).await);
        }
    }
    let Some(_place) = state.admission.enter(budget).await else {
        state.metrics.requests_shed.with_label_values(&[budget.shed_reason()]).inc();
        return Ok(refuse(req, &ApiError::Overloaded, &state, started).await);
    };
    next.call(req).await.map(ServiceResponse::map_into_boxed_body)
}

/// Answers a request refused by admission (429 for the key's rate, 503 for the budget): its body
/// read and dropped, its request id echoed, and counted in the request metrics as any answer is.
/// Not traced or logged one by one: under overload, a span or a line per refusal would be work
/// per refusal; `gateway_requests_shed_total` and `gateway_api_rate_limited_total` count them.
async fn refuse(
    mut req: actix_web::dev::ServiceRequest,
    refusal: &ApiError,
    state: &AppState,
    started: std::time::Instant,
) -> actix_web::dev::ServiceResponse {
    drain_body(&mut req, state.max_batch_body_bytes).await;
    let mut res = refusal.error_response();
    if let Ok(id) = HeaderValue::from_str(&telemetry::request_id(req.headers())) {
        res.headers_mut().insert(telemetry::REQUEST_ID, id);
    }
    let route = req
        .app_data::<web::Data<crate::http::openapi::MethodTable>>()
        .and_then(|methods| methods.route(req.path()))
        .unwrap_or("unmatched");
    let method = req.method().as_str();
    let m = &state.metrics;
    m.http_requests.with_label_values(&[method, route, res.status().as_str()]).inc();
    m.http_duration.with_label_values(&[method, route]).observe(started.elapsed().as_secs_f64());
    req.into_response(res)
}
