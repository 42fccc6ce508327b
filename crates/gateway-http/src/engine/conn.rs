//! One Redis or a Redis Cluster, behind one connection type, so the engine's code is the same for
//! both. Every script touches one hash tag, so the cluster client routes it by its first key.
//!
//! Calls share one multiplexed connection (cluster: one cluster connection) instead of taking a
//! pooled connection each time: a pooled connection is checked with `UNWATCH` + `PING` on every
//! checkout, which doubled the round trips of every engine call, while a multiplexed connection
//! pipelines concurrent calls over one socket. When a call fails, the shared connection is dropped
//! and the next call makes a new one.
//!
//! The client's own connect and response timeouts are set to `redis.timeout_ms`: left at the
//! client's default (500 ms), a reply slower than that failed the call even though the engine,
//! and the operator's setting, allowed more.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::{AsyncConnectionConfig, Client, Cmd, Pipeline, RedisFuture, Value};

#[derive(Clone)]
enum Target {
    Single(Client, AsyncConnectionConfig),
    Cluster(ClusterClient),
}

#[derive(Clone)]
pub struct RedisPool {
    target: Target,
    /// The node URLs it was given, for clients of single nodes (wake-up subscriptions).
    seeds: Vec<String>,
    shared: Arc<Mutex<Option<Conn>>>,
}

#[derive(Clone)]
pub enum Conn {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl RedisPool {
    /// `urls` holds one URL, or for a cluster one or more seed nodes. `timeout` bounds both
    /// connecting and each reply.
    ///
    /// # Errors
    /// A message naming the key (never the URL, which may hold a password).
    pub fn new(urls: &[String], cluster: bool, timeout: Duration) -> Result<Self, String> {
        let target = if cluster {
            ClusterClientBuilder::new(urls.to_vec())
                .connection_timeout(timeout)
                .response_timeout(timeout)
                .build()
                .map(Target::Cluster)
                .map_err(|_| "redis.url: not a usable list of cluster node URLs".to_owned())?
        } else {
            let url = urls.first().ok_or_else(|| "redis.url: empty".to_owned())?;
            let client = Client::open(url.as_str()).map_err(|_| "redis.url: not a usable Redis URL".to_owned())?;
            let config =
                AsyncConnectionConfig::new().set_connection_timeout(Some(timeout)).set_response_timeout(Some(timeout));
            Target::Single(client, config)
        };
        Ok(Self { target, seeds: urls.to_vec(), shared: Arc::new(Mutex::new(None)) })
    }

    fn cached(&self) -> Option<Conn> {
        self.shared.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// The shared connection, made on first use (or after a failure).
    pub async fn get(&self) -> Result<Conn, String> {
        if let Some(c) = self.cached() {
            return Ok(c);
        }
        let fresh = match &self.target {
            Target::Single(client, config) => client
                .get_multiplexed_async_connection_with_config(config)
                .await
                .map(Conn::Single)
                .map_err(|e| e.to_string())?,
            Target::Cluster(client) => {
                client.get_async_connection().await.map(Conn::Cluster).map_err(|e| e.to_string())?
            }
        };
        *self.shared.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(fresh.clone());
        Ok(fresh)
    }

    /// Clients for a subscription to the engine's wake-ups: the Redis itself, or each seed node of
    /// a cluster, any of which hears every `PUBLISH` of the cluster (it is broadcast on the bus).
    pub fn subscriber_clients(&self) -> Vec<Client> {
        match &self.target {
            Target::Single(client, _) => vec![client.clone()],
            Target::Cluster(_) => self.seeds.iter().filter_map(|u| Client::open(u.as_str()).ok()).collect(),
        }
    }

    /// Drops the shared connection after a failed call, so the next call reconnects.
    pub fn invalidate(&self) {
        *self.shared.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }
}

impl Conn {
    /// Runs the commands in their order and answers every reply: in one round trip on a single
    /// Redis, where a pipeline keeps the order; on a cluster one after another, because their keys
    /// may live on different nodes and a cluster pipeline may touch one slot only.
    pub async fn in_order(&mut self, pipe: &Pipeline) -> redis::RedisResult<Vec<Value>> {
        match self {
            Conn::Single(c) => pipe.query_async(c).await,
            Conn::Cluster(c) => {
                let mut out = Vec::with_capacity(pipe.len());
                for cmd in pipe.cmd_iter() {
                    out.push(cmd.query_async::<Value>(c).await?);
                }
                Ok(out)
            }
        }
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(cmd, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}
