//! One Redis or a Redis Cluster, behind one connection type, so the engine's code is the same for
//! both. Every script touches one hash tag, so the cluster client routes it by its first key.
//!
//! Calls share one multiplexed connection (cluster: one cluster connection) instead of taking a
//! pooled connection each time: a pooled connection is checked with `UNWATCH` + `PING` on every
//! checkout, which doubled the round trips of every engine call, while a multiplexed connection
//! pipelines concurrent calls over one socket. The pool stays as the way to (re)connect: when a
//! call fails, the shared connection is dropped and the next call makes a new one.

use std::sync::{Arc, Mutex};

use deadpool_redis::Runtime;
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};

#[derive(Clone)]
enum Pool {
    Single(deadpool_redis::Pool),
    Cluster(deadpool_redis::cluster::Pool),
}

#[derive(Clone)]
pub struct RedisPool {
    pool: Pool,
    shared: Arc<Mutex<Option<Conn>>>,
}

#[derive(Clone)]
pub enum Conn {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl RedisPool {
    /// `urls` holds one URL, or for a cluster one or more seed nodes.
    ///
    /// # Errors
    /// A message naming the key (never the URL, which may hold a password).
    pub fn new(
        urls: &[String],
        cluster: bool,
        max_size: usize,
        timeouts: deadpool_redis::Timeouts,
    ) -> Result<Self, String> {
        let pool = if cluster {
            let mut cfg = deadpool_redis::cluster::Config::from_urls(urls.to_vec());
            cfg.pool = Some(deadpool_redis::PoolConfig { max_size, timeouts, ..Default::default() });
            cfg.create_pool(Some(Runtime::Tokio1))
                .map(Pool::Cluster)
                .map_err(|_| "redis.url: cannot build a cluster connection pool".to_owned())?
        } else {
            let url = urls.first().ok_or_else(|| "redis.url: empty".to_owned())?;
            let mut cfg = deadpool_redis::Config::from_url(url.as_str());
            cfg.pool = Some(deadpool_redis::PoolConfig { max_size, timeouts, ..Default::default() });
            cfg.create_pool(Some(Runtime::Tokio1))
                .map(Pool::Single)
                .map_err(|_| "redis.url: cannot build a connection pool".to_owned())?
        };
        Ok(Self { pool, shared: Arc::new(Mutex::new(None)) })
    }

    fn cached(&self) -> Option<Conn> {
        self.shared.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// The shared connection, made on first use (or after a failure).
    pub async fn get(&self) -> Result<Conn, String> {
        if let Some(c) = self.cached() {
            return Ok(c);
        }
        let fresh = match &self.pool {
            Pool::Single(p) => {
                p.get().await.map(|c| Conn::Single(deadpool_redis::Connection::take(c))).map_err(|e| e.to_string())?
            }
            Pool::Cluster(p) => p
                .get()
                .await
                .map(|c| Conn::Cluster(deadpool_redis::cluster::Connection::take(c)))
                .map_err(|e| e.to_string())?,
        };
        *self.shared.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(fresh.clone());
        Ok(fresh)
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
