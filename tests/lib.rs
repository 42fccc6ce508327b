#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! Test harness: a real `redis-server` on a free port, the provider sandbox and the gateway, each
//! started in-process or as a child process and stopped when dropped.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The dev API key of `deploy/config/sandbox.toml`.
pub const API_KEY: &str = "sandbox-dev-key";
/// A key with only the `read` scope, configured by [`gateway_toml`].
pub const READ_ONLY_KEY: &str = "read-only-test-key";
/// The sandbox's default INCS certification code.
pub const INCS_CODE: &str = "af92196e-0d07-3c1d-a631-a71c5a1b0001";

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(0)
}

/// Polls `check` until it returns `Some` or `timeout` passes.
pub async fn eventually<T, F, Fut>(timeout: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A `redis-server` child process with AOF on, in its own temporary directory.
pub struct RedisServer {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl RedisServer {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let mut server = Self { port: free_port(), dir, child: None };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let child = Command::new(redis_binary())
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes"])
            .args(["--appendfsync", "everysec", "--maxmemory-policy", "noeviction", "--dir"])
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start redis-server (is it installed? `make test` installs it): {e}"));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("redis-server did not start on port {}", self.port);
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port and directory (AOF replays).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn redis_binary() -> PathBuf {
    std::env::var_os("REDIS_SERVER").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("redis-server"))
}

/// Gateway configuration for tests: the sandbox dev secrets, one INCS account per channel, and a
/// fast retry schedule. `extra` is appended (more accounts, senders, overrides).
pub fn gateway_toml(redis_url: &str, sandbox_url: &str, extra: &str) -> String {
    let read_hash = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(READ_ONLY_KEY.as_bytes()))
    };
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
workers = 2
shutdown_grace_secs = 5

[redis]
url = "{redis_url}"
key_prefix = "gw"
timeout_ms = 500

[engine]
lease_ms = 5000
retention_secs = 3600
retry_schedule_ms = [100, 200]
idle_poll_ms = 50

[[api_keys]]
name = "sandbox-dev"
sha256 = "b71cdacf0021ffad7c8e84df5ee7c77ab181f61d7bc3a75198a3a8363cf7b2f9"
scopes = ["send", "read", "admin"]

[[api_keys]]
name = "reader"
sha256 = "{read_hash}"
scopes = ["read"]

[[accounts]]
name = "incs-whatsapp"
provider = "incs"
callback_token = "sandbox-incs-callback"
[accounts.incs]
chat_base_url = "{sandbox_url}"
rcs_base_url = "{sandbox_url}"
api_base_url = "{sandbox_url}"
certification_code = "{INCS_CODE}"
timeout_ms = 2000
channels = ["whatsapp"]

[[accounts]]
name = "incs-viber"
provider = "incs"
[accounts.incs]
chat_base_url = "{sandbox_url}"
rcs_base_url = "{sandbox_url}"
api_base_url = "{sandbox_url}"
certification_code = "{INCS_CODE}"
timeout_ms = 2000
channels = ["viber"]

[[accounts]]
name = "incs-rcs"
provider = "incs"
[accounts.incs]
chat_base_url = "{sandbox_url}"
rcs_base_url = "{sandbox_url}"
api_base_url = "{sandbox_url}"
certification_code = "{INCS_CODE}"
timeout_ms = 2000
channels = ["rcs"]

[[senders]]
name = "hk-main"
channel = "whatsapp"
default = true
accounts = ["incs-whatsapp"]

[[senders]]
name = "viber-main"
channel = "viber"
default = true
accounts = ["incs-viber"]

[[senders]]
name = "rcs-main"
channel = "rcs"
default = true
accounts = ["incs-rcs"]
{extra}
"#
    )
}

/// A gateway running in this process.
pub struct TestGateway {
    pub base_url: String,
    pub client: reqwest::Client,
    handle: actix_web::dev::ServerHandle,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl TestGateway {
    pub async fn spawn(toml: &str) -> Self {
        let config = gateway_http::Config::from_toml(toml).unwrap_or_else(|e| panic!("test config: {e}"));
        let app = gateway_http::Application::build(config).unwrap_or_else(|e| panic!("build: {e}"));
        let base_url = format!("http://127.0.0.1:{}", app.port());
        let handle = app.handle();
        let task = tokio::spawn(app.run_until_stopped());
        Self { base_url, client: reqwest::Client::new(), handle, task: Some(task) }
    }

    pub async fn send(&self, body: &Value) -> reqwest::Response {
        self.client
            .post(format!("{}/v1/messages", self.base_url))
            .bearer_auth(API_KEY)
            .json(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST /v1/messages: {e}"))
    }

    pub async fn get_message(&self, id: &str) -> Value {
        let res = self
            .client
            .get(format!("{}/v1/messages/{id}", self.base_url))
            .bearer_auth(API_KEY)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET message: {e}"));
        res.json().await.unwrap_or(Value::Null)
    }

    /// Waits until the message has `status`; returns the message.
    pub async fn wait_for_status(&self, id: &str, status: &str, timeout: Duration) -> Value {
        let found = eventually(timeout, || async {
            let m = self.get_message(id).await;
            (m["status"] == status).then_some(m)
        })
        .await;
        match found {
            Some(m) => m,
            None => panic!("message {id} never reached `{status}`: {}", self.get_message(id).await),
        }
    }

    pub async fn stop(mut self) {
        self.handle.stop(true).await;
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

/// The provider sandbox running in this process.
pub struct TestSandbox {
    pub handle: provider_sandbox::SandboxHandle,
    pub client: reqwest::Client,
}

impl TestSandbox {
    pub async fn spawn() -> Self {
        Self::spawn_with(provider_sandbox::SandboxConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            ..Default::default()
        })
        .await
    }

    pub async fn spawn_with(config: provider_sandbox::SandboxConfig) -> Self {
        let handle = provider_sandbox::spawn(config).await.unwrap_or_else(|e| panic!("sandbox: {e}"));
        Self { handle, client: reqwest::Client::new() }
    }

    pub fn url(&self) -> String {
        self.handle.base_url()
    }

    pub async fn requests(&self, provider: &str) -> Vec<Value> {
        let res = self.client.get(format!("{}/_sandbox/requests?provider={provider}", self.url())).send().await;
        match res {
            Ok(r) => r.json().await.unwrap_or_default(),
            Err(e) => panic!("sandbox requests: {e}"),
        }
    }

    pub async fn fault(&self, fault: Value) {
        let res = self.client.post(format!("{}/_sandbox/faults", self.url())).json(&fault).send().await;
        assert!(res.is_ok_and(|r| r.status().is_success()), "fault refused");
    }

    pub async fn clear_faults(&self) {
        let _ = self.client.delete(format!("{}/_sandbox/faults", self.url())).send().await;
    }
}
