use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use gateway_http::{telemetry, Application, Config};

// The gateway allocates and frees small buffers on every request (headers, JSON, Redis replies)
// from many threads; mimalloc's per-thread pages make that cheaper than glibc's arenas.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The messaging gateway: one REST API for WhatsApp, Viber and RCS through INCS and InnoPaaS.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Configuration file (TOML). `GATEWAY__SECTION__KEY` variables override it.
    #[arg(long, env = "GATEWAY_CONFIG")]
    config: Option<PathBuf>,
    /// Print the OpenAPI document and exit.
    #[arg(long)]
    print_openapi: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    if args.print_openapi {
        match gateway_http::http::openapi::spec().and_then(|s| serde_json::to_string_pretty(&s)) {
            Ok(s) => {
                println!("{s}");
                return ExitCode::SUCCESS;
            }
            Err(e) => {
                eprintln!("openapi: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let config = match Config::load(args.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let tracing = match telemetry::init(&config.tracing) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let app = match Application::build(config) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let result = app.run_until_stopped().await;
    // The exporter's own thread sends what is buffered; it must not hold up a runtime worker.
    let _ = tokio::task::spawn_blocking(move || tracing.shutdown()).await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
