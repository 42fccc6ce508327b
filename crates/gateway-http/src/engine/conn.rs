//! One Redis or a Redis Cluster, behind one connection type, so the engine's code is the same for
//! both. Every script touches one hash tag, so the cluster client routes it by its first key.

use deadpool_redis::Runtime;
use redis::aio::ConnectionLike;
use redis::{Cmd, Pipeline, RedisFuture, Value};

#[derive(Clone)]
pub enum RedisPool {
    Single(deadpool_redis::Pool),
    Cluster(deadpool_redis::cluster::Pool),
}

pub enum Conn {
    Single(deadpool_redis::Connection),
    Cluster(deadpool_redis::cluster::Connection),
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
        if cluster {
            let mut cfg = deadpool_redis::cluster::Config::from_urls(urls.to_vec());
            cfg.pool = Some(deadpool_redis::PoolConfig { max_size, timeouts, ..Default::default() });
            cfg.create_pool(Some(Runtime::Tokio1))
                .map(RedisPool::Cluster)
                .map_err(|_| "redis.url: cannot build a cluster connection pool".to_owned())
        } else {
            let url = urls.first().ok_or_else(|| "redis.url: empty".to_owned())?;
            let mut cfg = deadpool_redis::Config::from_url(url.as_str());
            cfg.pool = Some(deadpool_redis::PoolConfig { max_size, timeouts, ..Default::default() });
            cfg.create_pool(Some(Runtime::Tokio1))
                .map(RedisPool::Single)
                .map_err(|_| "redis.url: cannot build a connection pool".to_owned())
        }
    }

    pub async fn get(&self) -> Result<Conn, String> {
        match self {
            RedisPool::Single(p) => p.get().await.map(Conn::Single).map_err(|e| e.to_string()),
            RedisPool::Cluster(p) => p.get().await.map(Conn::Cluster).map_err(|e| e.to_string()),
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
