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
/// The sandbox's api host family code (templates, account).
pub const INCS_API_CODE: &str = provider_sandbox::DEFAULT_INCS_API_CERTIFICATION_CODE;

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

/// One INCS account on the sandbox, serving one channel.
fn incs_account(name: &str, channel: &str, sandbox_url: &str, callback_token: Option<&str>) -> String {
    let token = callback_token.map(|t| format!("callback_token = \"{t}\"\n")).unwrap_or_default();
    format!(
        r#"[[accounts]]
name = "{name}"
provider = "incs"
{token}[accounts.incs]
chat_base_url = "{sandbox_url}"
rcs_base_url = "{sandbox_url}"
api_base_url = "{sandbox_url}"
certification_code = "{INCS_CODE}"
api_certification_code = "{INCS_API_CODE}"
timeout_ms = 2000
channels = ["{channel}"]
"#
    )
}

/// A channel's default sender with one account.
fn default_sender(name: &str, channel: &str, account: &str) -> String {
    format!("[[senders]]\nname = \"{name}\"\nchannel = \"{channel}\"\ndefault = true\naccounts = [\"{account}\"]\n")
}

/// Gateway configuration for tests: the sandbox dev secrets, one INCS account per channel, and a
/// fast retry schedule. `extra` is appended (more accounts, senders, overrides).
pub fn gateway_toml(redis_url: &str, sandbox_url: &str, extra: &str) -> String {
    let read_hash = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(READ_ONLY_KEY.as_bytes()))
    };
    let accounts = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        incs_account("incs-whatsapp", "whatsapp", sandbox_url, Some("sandbox-incs-callback")),
        incs_account("incs-viber", "viber", sandbox_url, None),
        incs_account("incs-rcs", "rcs", sandbox_url, None),
        default_sender("hk-main", "whatsapp", "incs-whatsapp"),
        default_sender("viber-main", "viber", "incs-viber"),
        default_sender("rcs-main", "rcs", "incs-rcs"),
    );
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
workers = 2
shutdown_grace_secs = 5

[redis]
url = "{redis_url}"
key_prefix = "gw"
timeout_ms = 2000

[engine]
lease_ms = 11000
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

{accounts}{extra}
"#
    )
}

/// The secret of the tests' event subscriptions (the sandbox's dev secret).
pub const WEBHOOK_SECRET: &str = "whsec_c2FuZGJveC13ZWJob29rLXNlY3JldA==";

/// An event subscription `sink` to the sandbox at `sink_url`, for `events`, with `more` settings
/// (TOML lines) of its own: to pass as `extra` to a test configuration.
pub fn sink_subscription(sink_url: &str, events: &[&str], more: &str) -> String {
    let events = events.iter().map(|e| format!("\"{e}\"")).collect::<Vec<_>>().join(", ");
    format!("\n[[subscriptions]]\nname = \"sink\"\nurl = \"{sink_url}/_sandbox/webhooks\"\nevents = [{events}]\nsecret = \"{WEBHOOK_SECRET}\"\n{more}\n")
}

/// A gateway configuration as a TOML value, changed by key rather than by editing its text: a
/// change aimed at a table that is not there fails the test instead of silently doing nothing, and
/// a misspelt key fails the gateway's own validation (it refuses unknown keys).
#[derive(Debug, Clone)]
pub struct ConfigToml(toml::Table);

impl ConfigToml {
    pub fn parse(text: &str) -> Self {
        Self(text.parse().unwrap_or_else(|e| panic!("test config: {e}")))
    }

    /// Sets `key` in the table at `path`: dotted keys from the top, where a key naming an array
    /// of tables is followed by the `name` of one entry (`"engine"`, `"accounts.incs-rcs"`,
    /// `"accounts.incs-rcs.incs"`, `"senders.hk-main"`).
    #[must_use]
    pub fn set(mut self, path: &str, key: &str, value: impl Into<toml::Value>) -> Self {
        self.table(path).insert(key.to_owned(), value.into());
        self
    }

    fn table(&mut self, path: &str) -> &mut toml::Table {
        let mut table = &mut self.0;
        let mut segments = path.split('.');
        while let Some(key) = segments.next() {
            table = match table.get_mut(key) {
                Some(toml::Value::Table(t)) => t,
                Some(toml::Value::Array(items)) => {
                    let name = segments.next().unwrap_or_else(|| panic!("`{path}`: which `{key}` entry?"));
                    items
                        .iter_mut()
                        .find_map(|item| match item {
                            toml::Value::Table(t) if t.get("name").and_then(toml::Value::as_str) == Some(name) => {
                                Some(t)
                            }
                            _ => None,
                        })
                        .unwrap_or_else(|| panic!("test config has no {key} entry named `{name}`"))
                }
                _ => panic!("test config has no table `{key}` in `{path}`"),
            };
        }
        table
    }

    /// An account's lane rate and burst.
    #[must_use]
    pub fn lane_rate(self, account: &str, rate_per_second: i64, burst: i64) -> Self {
        let path = format!("accounts.{account}");
        self.set(&path, "rate_per_second", rate_per_second).set(&path, "burst", burst)
    }

    /// Listening on a known port (for a sandbox that calls back).
    #[must_use]
    pub fn listen(self, port: u16) -> Self {
        self.set("server", "listen", format!("127.0.0.1:{port}"))
    }

    /// The configuration as a file's text, for a gateway process.
    pub fn text(&self) -> String {
        toml::to_string(&self.0).unwrap_or_else(|e| panic!("test config: {e}"))
    }

    /// The configuration parsed and validated, for a gateway in this process.
    pub fn config(&self) -> gateway_http::Config {
        gateway_http::Config::from_toml(&self.text()).unwrap_or_else(|e| panic!("test config: {e}"))
    }
}

/// A gateway in this process with the test configuration, on a Redis and a sandbox of its own.
pub async fn gateway_with_sandbox() -> (TestRedis, TestSandbox, TestGateway) {
    let redis = TestRedis::single();
    let sandbox = TestSandbox::spawn().await;
    let gw = TestGateway::spawn(&redis.gateway_toml(&sandbox.url(), "")).await;
    (redis, sandbox, gw)
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
        Self::spawn_config(gateway_http::Config::from_toml(toml).unwrap_or_else(|e| panic!("test config: {e}"))).await
    }

    /// A gateway from a configuration value (a test changes a field, which the compiler checks);
    /// validated as at start-up.
    pub async fn spawn_config(config: gateway_http::Config) -> Self {
        if std::env::var_os("TEST_LOG").is_some() {
            let _ = gateway_http::telemetry::init(&gateway_http::telemetry::TracingConfig::default());
        }
        config.validate().unwrap_or_else(|e| panic!("test config: {e}"));
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

    /// `POST /v1/messages` with an `Idempotency-Key`.
    pub async fn send_idempotent(&self, body: &Value, key: &str) -> reqwest::Response {
        self.client
            .post(format!("{}/v1/messages", self.base_url))
            .bearer_auth(API_KEY)
            .header("Idempotency-Key", key)
            .json(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST /v1/messages: {e}"))
    }

    /// The gateway's Prometheus exposition.
    pub async fn metrics(&self) -> String {
        self.client.get(format!("{}/metrics", self.base_url)).send().await.unwrap().text().await.unwrap()
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
    /// Waits until the message has passed through `status` (its history holds it), whatever it
    /// is now: with a sandbox that calls back, a `submitted` message may already be `read`.
    pub async fn wait_until_passed(&self, id: &str, status: &str, timeout: Duration) -> Value {
        let passed = |m: &Value| m["history"].as_array().is_some_and(|h| h.iter().any(|e| e["status"] == status));
        let found = eventually(timeout, || async {
            let m = self.get_message(id).await;
            passed(&m).then_some(m)
        })
        .await;
        match found {
            Some(m) => m,
            None => panic!("message {id} never passed through `{status}`: {}", self.get_message(id).await),
        }
    }

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

/// The `gateway` binary next to this test binary (`make test` builds it first).
pub fn gateway_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    // target/<profile>/deps/e2e-<hash> → target/<profile>/gateway
    let dir = exe.parent().and_then(|p| p.parent()).map(PathBuf::from).unwrap_or_default();
    let bin = dir.join("gateway");
    assert!(bin.exists(), "{} is missing: run `cargo build --bins` (make test does)", bin.display());
    bin
}

/// A gateway as a separate OS process, so it can be killed with SIGKILL or stopped with SIGTERM.
pub struct GatewayProcess {
    pub base_url: String,
    pub client: reqwest::Client,
    child: Option<Child>,
    _config: tempfile::NamedTempFile,
}

impl GatewayProcess {
    /// Starts `gateway --config <toml>` listening on a free port and waits until it answers.
    pub async fn spawn(toml: &str) -> Self {
        Self::spawn_with(toml, free_port(), &[]).await
    }

    /// Starts `gateway --config <toml>` on `port` with extra environment variables.
    pub async fn spawn_with(toml: &str, port: u16, env: &[(&str, &str)]) -> Self {
        let toml = ConfigToml::parse(toml).listen(port).text();
        let mut file = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut file, toml.as_bytes()).unwrap();
        let child = Command::new(gateway_binary())
            .arg("--config")
            .arg(file.path())
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the gateway binary: {e}"));
        let base_url = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        let live = eventually(Duration::from_secs(20), || async {
            client.get(format!("{base_url}/health/live")).send().await.ok().filter(|r| r.status().is_success())
        })
        .await;
        assert!(live.is_some(), "the gateway process did not come up");
        Self { base_url, client, child: Some(child), _config: file }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then waits for the process to exit (up to `timeout`). Returns whether it exited.
    pub fn terminate(&mut self, timeout: Duration) -> bool {
        let Some(mut c) = self.child.take() else { return true };
        let _ = Command::new("kill").args(["-TERM", &c.id().to_string()]).status();
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = c.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = c.kill();
        let _ = c.wait();
        false
    }

    pub async fn metric(&self, name: &str) -> f64 {
        let text = self.client.get(format!("{}/metrics", self.base_url)).send().await.unwrap().text().await.unwrap();
        metric_value(&text, name)
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// The sum of a metric's samples in Prometheus text (0 when absent).
/// The sum of the samples of `name` whose labels contain `labels` (e.g. `outcome="retried"`).
pub fn metric_sample(text: &str, name: &str, labels: &str) -> f64 {
    text.lines()
        .filter(|l| l.strip_prefix(name).is_some_and(|rest| rest.starts_with('{')) && l.contains(labels))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

pub fn metric_value(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.split([' ', '{']).next() == Some(name))
        .filter_map(|l| l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()))
        .sum()
}

/// A Redis Cluster of three primaries, each node a child process.
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Three primaries, no replicas.
    pub fn start() -> Self {
        Self::start_with_replicas(0)
    }

    /// Three primaries with `replicas` replicas each; a replica takes over 2 s after its primary
    /// stops answering.
    pub fn start_with_replicas(replicas: usize) -> Self {
        let mut nodes = Vec::new();
        for _ in 0..3 * (1 + replicas) {
            let dir = tempfile::tempdir().unwrap();
            let port = free_port();
            let child = Command::new(redis_binary())
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes"])
                .args(["--cluster-enabled", "yes", "--cluster-node-timeout", "2000", "--dir"])
                .arg(dir.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start redis-server: {e}"));
            nodes.push(RedisServer { port, dir, child: Some(child) });
        }
        for n in &nodes {
            let deadline = Instant::now() + Duration::from_secs(10);
            while std::net::TcpStream::connect(("127.0.0.1", n.port)).is_err() {
                assert!(Instant::now() < deadline, "cluster node did not start");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let addrs: Vec<String> = nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect();
        let status = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addrs)
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap_or_else(|e| panic!("redis-cli --cluster create: {e}"));
        assert!(status.success(), "cluster create failed");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ok = nodes.iter().all(|n| {
                Command::new("redis-cli")
                    .args(["-p", &n.port.to_string(), "cluster", "info"])
                    .output()
                    .map(|o| String::from_utf8_lossy(&o.stdout).contains("cluster_state:ok"))
                    .unwrap_or(false)
            });
            if ok && (replicas == 0 || Self::replicas_in_sync(&nodes) == 3 * replicas) {
                break;
            }
            assert!(Instant::now() < deadline, "cluster never reached cluster_state:ok with its replicas in sync");
            std::thread::sleep(Duration::from_millis(100));
        }
        Self { nodes }
    }

    /// How many nodes are replicas whose link to their primary is up.
    fn replicas_in_sync(nodes: &[RedisServer]) -> usize {
        nodes
            .iter()
            .filter(|n| {
                Command::new("redis-cli")
                    .args(["-p", &n.port.to_string(), "info", "replication"])
                    .output()
                    .map(|o| {
                        let info = String::from_utf8_lossy(&o.stdout).into_owned();
                        info.contains("role:slave") && info.contains("master_link_status:up")
                    })
                    .unwrap_or(false)
            })
            .count()
    }

    /// The port of the primary that holds `key`'s slot now.
    pub fn primary_of(&self, key: &str) -> u16 {
        let any = self.nodes.iter().find(|n| n.child.is_some()).expect("a running node");
        let out = Command::new("redis-cli")
            .args(["-p", &any.port.to_string(), "cluster", "keyslot", key])
            .output()
            .expect("redis-cli cluster keyslot");
        let slot: u16 = String::from_utf8_lossy(&out.stdout).trim().parse().expect("a slot number");
        let out = Command::new("redis-cli")
            .args(["-p", &any.port.to_string(), "cluster", "nodes"])
            .output()
            .expect("redis-cli cluster nodes");
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 9 || !fields[2].contains("master") || fields[2].contains("fail") {
                continue;
            }
            let owns = fields[8..].iter().any(|range| match range.split_once('-') {
                Some((a, b)) => a.parse::<u16>().is_ok_and(|a| a <= slot) && b.parse::<u16>().is_ok_and(|b| slot <= b),
                None => range.parse::<u16>().is_ok_and(|s| s == slot),
            });
            if owns {
                let addr = fields[1].split('@').next().unwrap_or_default();
                return addr.rsplit(':').next().and_then(|p| p.parse().ok()).expect("a node port");
            }
        }
        panic!("no primary holds slot {slot}");
    }

    /// SIGKILL to the node on `port`, as a crash would.
    pub fn kill(&mut self, port: u16) {
        let node = self.nodes.iter_mut().find(|n| n.port == port).expect("a node on that port");
        node.kill();
    }

    /// Seed URLs, comma-separated, as `redis.url` takes them with `cluster = true`.
    pub fn url(&self) -> String {
        self.nodes.iter().map(|n| format!("redis://127.0.0.1:{}", n.port)).collect::<Vec<_>>().join(",")
    }
}

/// Where a test's Redis is: one server or a cluster.
pub enum TestRedis {
    Single(RedisServer),
    Cluster(RedisCluster),
}

impl TestRedis {
    pub fn single() -> Self {
        Self::Single(RedisServer::start())
    }
    pub fn cluster() -> Self {
        Self::Cluster(RedisCluster::start())
    }
    pub fn url(&self) -> String {
        match self {
            Self::Single(r) => r.url(),
            Self::Cluster(c) => c.url(),
        }
    }
    /// TOML to append to [`gateway_toml`]'s `extra` (the `[redis]` section is already there).
    pub fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster(_))
    }
    /// The same, parsed, for a test to change fields of.
    pub fn gateway_config(&self, sandbox_url: &str, extra: &str) -> gateway_http::Config {
        self.config(sandbox_url, extra).config()
    }
    /// A gateway configuration for this Redis.
    pub fn gateway_toml(&self, sandbox_url: &str, extra: &str) -> String {
        self.config(sandbox_url, extra).text()
    }
    /// The same as a value, for a test to change keys of.
    pub fn config(&self, sandbox_url: &str, extra: &str) -> ConfigToml {
        let config = ConfigToml::parse(&gateway_toml(&self.url(), sandbox_url, extra));
        if self.is_cluster() {
            config.set("redis", "cluster", true)
        } else {
            config
        }
    }
    /// A plain client connection (for checks the API does not expose, like lease sets).
    pub async fn client(&self) -> RedisClient {
        match self {
            Self::Single(r) => {
                let c = redis::Client::open(r.url()).unwrap();
                RedisClient::Single(c.get_multiplexed_async_connection().await.unwrap())
            }
            Self::Cluster(c) => {
                let urls: Vec<String> = c.url().split(',').map(str::to_owned).collect();
                let client = redis::cluster::ClusterClient::new(urls).unwrap();
                RedisClient::Cluster(client.get_async_connection().await.unwrap())
            }
        }
    }
}

pub enum RedisClient {
    Single(redis::aio::MultiplexedConnection),
    Cluster(redis::cluster_async::ClusterConnection),
}

impl RedisClient {
    pub async fn query<T: redis::FromRedisValue>(&mut self, cmd: &redis::Cmd) -> T {
        match self {
            Self::Single(c) => cmd.query_async(c).await.unwrap(),
            Self::Cluster(c) => cmd.query_async(c).await.unwrap(),
        }
    }
}

/// Sends `n` text messages `"{prefix}-{i}"` with `concurrency` clients; returns the ids of the
/// accepted ones by index, and the statuses of the others.
pub async fn send_texts(
    client: &reqwest::Client,
    base_url: &str,
    prefix: &str,
    n: usize,
    concurrency: usize,
) -> (Vec<(usize, String)>, Vec<u16>) {
    use futures::StreamExt;
    let results: Vec<(usize, Result<String, u16>)> = futures::stream::iter(0..n)
        .map(|i| {
            let client = client.clone();
            let url = format!("{base_url}/v1/messages");
            let text = format!("{prefix}-{i}");
            async move {
                let body =
                    serde_json::json!({"channel": "whatsapp", "to": "85268411234", "type": "text", "text": text});
                match client.post(&url).bearer_auth(API_KEY).json(&body).send().await {
                    Ok(r) if r.status() == 202 => {
                        let v: Value = r.json().await.unwrap_or(Value::Null);
                        (i, v["id"].as_str().map(str::to_owned).ok_or(0))
                    }
                    Ok(r) => (i, Err(r.status().as_u16())),
                    Err(_) => (i, Err(0)),
                }
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let mut ok = Vec::new();
    let mut failed = Vec::new();
    for (i, r) in results {
        match r {
            Ok(id) => ok.push((i, id)),
            Err(s) => failed.push(s),
        }
    }
    (ok, failed)
}

/// How many times the sandbox received each text body.
pub fn texts_received(requests: &[Value]) -> std::collections::HashMap<String, usize> {
    let mut seen = std::collections::HashMap::new();
    for r in requests {
        if let Some(t) = r["body"]["text"].as_str() {
            *seen.entry(t.to_owned()).or_insert(0) += 1;
        }
    }
    seen
}

/// A sandbox whose INCS callbacks go to a gateway on `gateway_port` (started after it), with
/// `sent`/`delivered`/`read` at 100/250/400 ms.
pub async fn sandbox_calling_back(gateway_port: u16) -> TestSandbox {
    sandbox_calling_back_after(gateway_port, [100, 250, 400]).await
}

/// The same, with INCS's `sent`, `delivered` and `read` reports these many milliseconds after
/// each send.
pub async fn sandbox_calling_back_after(gateway_port: u16, delays_ms: [u64; 3]) -> TestSandbox {
    TestSandbox::spawn_with(provider_sandbox::SandboxConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        incs_callback_url: Some(format!("http://127.0.0.1:{gateway_port}/callbacks/incs/sandbox-incs-callback")),
        incs_callback_delays: delays_ms.map(Duration::from_millis),
        ..Default::default()
    })
    .await
}

/// A webhook delivery the sandbox's sink recorded, its Standard Webhooks signature verified with
/// [`WEBHOOK_SECRET`]: the event.
pub fn verified_webhook(delivery: &Value) -> Value {
    use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
    let mut headers = HeaderMap::new();
    for (k, v) in delivery["headers"].as_object().unwrap() {
        headers
            .insert(HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v.as_str().unwrap()).unwrap());
    }
    let raw = delivery["raw_body"].as_str().unwrap();
    let webhook = standardwebhooks::Webhook::new(WEBHOOK_SECRET).unwrap();
    webhook.verify(raw.as_bytes(), &headers).unwrap_or_else(|e| panic!("signature does not verify: {e:?}"));
    serde_json::from_str(raw).unwrap()
}

/// A message as the engine stores it, for sender `hk-main` on its WhatsApp lane.
pub fn stored_on_hk_main(
    id: gateway_core::MessageId,
    message: gateway_core::OutboundMessage,
) -> gateway_http::engine::record::StoredMessageV1 {
    gateway_http::engine::record::StoredMessageV1 {
        id,
        sender: "hk-main".into(),
        lanes: vec!["incs-whatsapp".into()],
        message,
        fallback: Vec::new(),
        chain: None,
    }
}

impl TestSandbox {
    /// Sets how sends to `to` on `channel` end (`normal`, `undeliverable`, `no_receipts`).
    pub async fn recipient(&self, to: &str, channel: &str, behaviour: &str) {
        let body = serde_json::json!({"to": to, "channel": channel, "behaviour": behaviour});
        let res = self.client.post(format!("{}/_sandbox/recipients", self.url())).json(&body).send().await;
        assert!(res.is_ok_and(|r| r.status() == 201), "recipient behaviour refused");
    }

    /// Creates a WhatsApp template at the InnoPaaS stand-in directly (a `template/submit` body
    /// without `wabaId`), so template sends to it have one to name; the request is not kept in
    /// the sandbox's log.
    pub async fn innopaas_template(&self, mut template: Value) {
        template["wabaId"] = serde_json::json!("102290129340398");
        let res = self
            .client
            .post(format!("{}/api/whatsapp/v3/template/submit", self.url()))
            .header("AppKey", "sandbox-innopaas-appkey")
            .header("Authorization", "sandbox-innopaas-token")
            .json(&template)
            .send()
            .await
            .unwrap_or_else(|e| panic!("template/submit: {e}"));
        let envelope: Value = res.json().await.unwrap_or_default();
        assert_eq!(envelope["code"], "0", "template/submit refused: {envelope}");
        let cleared = self.client.delete(format!("{}/_sandbox/requests", self.url())).send().await;
        assert!(cleared.is_ok_and(|r| r.status().is_success()), "could not clear the request log");
    }

    /// The recorded requests to one provider path.
    pub async fn requests_to(&self, provider: &str, path: &str) -> Vec<Value> {
        self.requests(provider).await.into_iter().filter(|r| r["path"] == path).collect()
    }
}

/// Milliseconds since the epoch of an RFC 3339 time in a JSON value.
pub fn ms_of(v: &Value) -> i64 {
    let s = v.as_str().unwrap_or_else(|| panic!("not a time: {v}"));
    chrono::DateTime::parse_from_rfc3339(s).unwrap_or_else(|e| panic!("{s}: {e}")).timestamp_millis()
}

/// Waits `d` on purpose, where a test must show that something did NOT happen in that time.
pub async fn quiet_period(d: Duration, reason: &str) {
    eprintln!("quiet period of {} ms: {reason}", d.as_millis());
    tokio::time::sleep(d).await;
}

/// A first attempt that the INCS account `incs-whatsapp` took, for tests that record sends
/// through the engine directly.
pub fn submitted_attempt() -> gateway_http::engine::record::AttemptRecord {
    gateway_http::engine::record::AttemptRecord {
        n: 1,
        provider: "incs".into(),
        account: "incs-whatsapp".into(),
        at: chrono::Utc::now(),
        outcome: "submitted".into(),
        http_status: None,
        provider_code: None,
        latency_ms: 3,
    }
}
