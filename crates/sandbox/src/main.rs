//! `provider-sandbox`: runs the INCS/InnoPaaS stand-in until Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use provider_sandbox::{
    SandboxConfig, DEFAULT_INCS_API_CERTIFICATION_CODE, DEFAULT_INCS_CERTIFICATION_CODES, DEFAULT_INNOPAAS_APP_KEY,
    DEFAULT_INNOPAAS_TOKEN, DEFAULT_INNOPAAS_WEBHOOK_AUTHORIZATION,
};

#[derive(Debug, Parser)]
#[command(name = "provider-sandbox", version, about)]
struct Cli {
    /// Address to listen on (INCS at the root, InnoPaaS under /api/whatsapp/v3, control under /_sandbox).
    #[arg(long, env = "SANDBOX_LISTEN", default_value = "127.0.0.1:8090")]
    listen: SocketAddr,

    /// Accepted INCS `certification-code` values, comma-separated.
    #[arg(
        long,
        env = "SANDBOX_INCS_CERTIFICATION_CODES",
        value_delimiter = ',',
        default_values_t = DEFAULT_INCS_CERTIFICATION_CODES.map(String::from),
        hide_env_values = true
    )]
    incs_certification_codes: Vec<String>,

    /// Accepted INCS `certification-code` values on the api host family (templates, account),
    /// comma-separated.
    #[arg(
        long,
        env = "SANDBOX_INCS_API_CERTIFICATION_CODES",
        value_delimiter = ',',
        default_values_t = [DEFAULT_INCS_API_CERTIFICATION_CODE.to_owned()],
        hide_env_values = true
    )]
    incs_api_certification_codes: Vec<String>,

    /// Accept what the real providers would refuse (codes off their host family, non-JSON bodies,
    /// unknown fields): the old, lenient sandbox.
    #[arg(long, env = "SANDBOX_LENIENT")]
    lenient: bool,

    /// Where to POST INCS message_status_update callbacks, e.g.
    /// http://127.0.0.1:8080/callbacks/incs/sandbox-incs-callback. None are sent when unset.
    #[arg(long, env = "SANDBOX_INCS_CALLBACK_URL")]
    incs_callback_url: Option<String>,

    /// Milliseconds after acceptance of the sent, delivered and read callbacks.
    #[arg(
        long,
        env = "SANDBOX_INCS_CALLBACK_DELAYS_MS",
        value_delimiter = ',',
        default_values_t = [100_u64, 300, 600]
    )]
    incs_callback_delays_ms: Vec<u64>,

    /// Milliseconds a new INCS template stays PENDING before its review and its
    /// template_status_update callback.
    #[arg(long, env = "SANDBOX_INCS_TEMPLATE_REVIEW_DELAY_MS", default_value_t = 500)]
    incs_template_review_delay_ms: u64,

    /// HTTP worker threads.
    #[arg(long, env = "SANDBOX_WORKERS", default_value_t = 2)]
    workers: usize,

    /// Accepted InnoPaaS `AppKey` values, comma-separated; the token at the same position in
    /// --innopaas-tokens belongs to each.
    #[arg(
        long,
        env = "SANDBOX_INNOPAAS_APP_KEYS",
        value_delimiter = ',',
        default_values_t = [DEFAULT_INNOPAAS_APP_KEY.to_owned()],
        hide_env_values = true
    )]
    innopaas_app_keys: Vec<String>,

    /// Accepted InnoPaaS `Authorization` tokens (no `Bearer`), comma-separated, one per AppKey.
    #[arg(
        long,
        env = "SANDBOX_INNOPAAS_TOKENS",
        value_delimiter = ',',
        default_values_t = [DEFAULT_INNOPAAS_TOKEN.to_owned()],
        hide_env_values = true
    )]
    innopaas_tokens: Vec<String>,

    /// Where to POST InnoPaaS whatsapp_message_status_updated webhooks, e.g.
    /// http://127.0.0.1:8080/callbacks/innopaas/sandbox-innopaas-callback. None are sent when unset.
    #[arg(long, env = "SANDBOX_INNOPAAS_WEBHOOK_URL")]
    innopaas_webhook_url: Option<String>,

    /// Milliseconds after acceptance of the delivered and read webhooks.
    #[arg(
        long,
        env = "SANDBOX_INNOPAAS_WEBHOOK_DELAYS_MS",
        value_delimiter = ',',
        default_values_t = [300_u64, 600]
    )]
    innopaas_webhook_delays_ms: Vec<u64>,

    /// Static headers on every InnoPaaS webhook, `Name: value`, comma-separated (InnoPaaS's
    /// optional `UserName` and `Authorization` push headers).
    #[arg(
        long,
        env = "SANDBOX_INNOPAAS_WEBHOOK_HEADERS",
        value_delimiter = ',',
        default_values_t = [format!("Authorization: {DEFAULT_INNOPAAS_WEBHOOK_AUTHORIZATION}")],
        hide_env_values = true
    )]
    innopaas_webhook_headers: Vec<String>,
}

/// `Name: value` into a header pair.
fn header_pair(header: &str) -> Option<(String, String)> {
    let (name, value) = header.split_once(':')?;
    let name = name.trim();
    (!name.is_empty()).then(|| (name.to_owned(), value.trim().to_owned()))
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if std::env::var("LOG_FORMAT").is_ok_and(|format| format.eq_ignore_ascii_case("json")) {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; only Ctrl-C stops the sandbox");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let cli = Cli::parse();
    init_tracing();

    let [sent, delivered, read] = match <[u64; 3]>::try_from(cli.incs_callback_delays_ms) {
        Ok(delays) => delays.map(Duration::from_millis),
        Err(given) => {
            eprintln!(
                "--incs-callback-delays-ms needs exactly three values (sent,delivered,read), got {}",
                given.len()
            );
            std::process::exit(2);
        }
    };
    let innopaas_webhook_delays = match <[u64; 2]>::try_from(cli.innopaas_webhook_delays_ms) {
        Ok(delays) => delays.map(Duration::from_millis),
        Err(given) => {
            eprintln!("--innopaas-webhook-delays-ms needs exactly two values (delivered,read), got {}", given.len());
            std::process::exit(2);
        }
    };
    let mut innopaas_webhook_headers = Vec::new();
    for (i, header) in cli.innopaas_webhook_headers.iter().filter(|h| !h.trim().is_empty()).enumerate() {
        match header_pair(header) {
            Some(pair) => innopaas_webhook_headers.push(pair),
            None => {
                // The entry may hold a secret: name its position only.
                eprintln!("--innopaas-webhook-headers: entry {} is not `Name: value`", i + 1);
                std::process::exit(2);
            }
        }
    }
    let config = SandboxConfig {
        listen: cli.listen,
        incs_certification_codes: cli.incs_certification_codes,
        incs_api_certification_codes: cli.incs_api_certification_codes,
        strict: !cli.lenient,
        incs_callback_url: cli.incs_callback_url,
        incs_callback_delays: [sent, delivered, read],
        incs_template_review_delay: Duration::from_millis(cli.incs_template_review_delay_ms),
        workers: cli.workers,
        innopaas_app_keys: cli.innopaas_app_keys,
        innopaas_tokens: cli.innopaas_tokens,
        innopaas_webhook_url: cli.innopaas_webhook_url,
        innopaas_webhook_delays,
        innopaas_webhook_headers,
    };
    tracing::info!(?config, "starting provider sandbox");

    let sandbox = provider_sandbox::spawn(config).await?;
    println!("provider-sandbox listening on {}", sandbox.base_url());
    tracing::info!(url = %sandbox.base_url(), "provider sandbox listening");

    shutdown_signal().await;
    tracing::info!("stopping provider sandbox");
    sandbox.stop().await;
    Ok(())
}
