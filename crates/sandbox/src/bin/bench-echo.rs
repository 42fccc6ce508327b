//! `bench-echo`: the HTTP ceiling for `make bench` (scenario S0). The smallest actix-web service
//! that does what every gateway request must: read a small JSON body, parse it, answer JSON. It
//! runs with the gateway's worker count, so the ratio gateway/echo says how much of the machine's
//! HTTP capacity the gateway's own work costs.
//!
//! Usage: `bench-echo --listen 127.0.0.1:9000 [--workers 2]`; `POST /echo` answers 202 with
//! `{"status":"queued","fields":<top-level fields of the body>}`.

use std::net::SocketAddr;

use actix_web::{post, web, App, HttpResponse, HttpServer};
use clap::Parser;

#[derive(Debug, Parser)]
#[command(name = "bench-echo", about = "Minimal JSON POST handler: the HTTP ceiling of make bench")]
struct Cli {
    #[arg(long, default_value = "127.0.0.1:9000")]
    listen: SocketAddr,
    /// HTTP worker threads (the gateway's `server.workers`).
    #[arg(long, default_value_t = 2)]
    workers: usize,
}

#[post("/echo")]
async fn echo(body: web::Json<serde_json::Value>) -> HttpResponse {
    let fields = body.as_object().map_or(0, serde_json::Map::len);
    HttpResponse::Accepted().json(serde_json::json!({ "status": "queued", "fields": fields }))
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let cli = Cli::parse();
    HttpServer::new(|| App::new().service(echo)).workers(cli.workers).bind(cli.listen)?.run().await
}
