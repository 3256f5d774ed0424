//! [`Directory`]: the cluster's state in Redis, every access bounded by [`REDIS_TIMEOUT`].
//!
//! | key | value | written by |
//! |---|---|---|
//! | `lamina:nodes` | set of node ids | each node, at registration |
//! | `lamina:node:<id>` | [`NodeRecord`] JSON, expires after [`NODE_TTL`] | the node, every refresh |
//! | `lamina:room:<room>` | owner node id, expires after [`ROOM_TTL`] | [`CLAIM`], then the owner's refresh |
//! | `lamina:drain:<id>` | `1` | `lamina drain` |
//!
//! Every read-modify-write is one Lua script, so it is atomic. The scripts build the node key
//! from its id, which suits one Redis server (or a primary with replicas), not Redis Cluster.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::{AsyncCommands, Script};

use super::record::NodeRecord;
use super::ClusterError;

/// Longest wait for any Redis command; beyond it Redis counts as unavailable.
pub const REDIS_TIMEOUT: Duration = Duration::from_secs(1);
/// Lifetime of a node's registration without refresh.
pub const NODE_TTL: Duration = Duration::from_secs(3);
/// Lifetime of a room claim without refresh by its owner.
pub const ROOM_TTL: Duration = Duration::from_secs(3);

const NODES: &str = "lamina:nodes";
const NODE_PREFIX: &str = "lamina:node:";
const ROOM_PREFIX: &str = "lamina:room:";
const DRAIN_PREFIX: &str = "lamina:drain:";

/// Registers or refreshes a node unless another live process holds its id.
/// KEYS: node key, nodes set. ARGV: instance, record JSON, TTL ms, node id.
/// Returns 1 (registered), 0 (the id is held by another instance), 2 (replaced an unreadable
/// record).
const REGISTER: &str = r"
local cur = redis.call('GET', KEYS[1])
local code = 1
if cur then
  local ok, rec = pcall(cjson.decode, cur)
  if ok and type(rec) == 'table' and type(rec.instance) == 'string' then
    if rec.instance ~= ARGV[1] then return 0 end
  else
    code = 2
  end
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
redis.call('SADD', KEYS[2], ARGV[4])
return code
";

/// Claims a room for a candidate node unless a live node owns it already.
/// KEYS: room key. ARGV: candidate id, TTL ms, node key prefix. Returns the owner id.
const CLAIM: &str = r"
local cur = redis.call('GET', KEYS[1])
if cur and redis.call('EXISTS', ARGV[3] .. cur) == 1 then return cur end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return ARGV[1]
";

/// Keeps the claims of an owner's rooms (re-claiming those Redis lost, as after a restart).
/// KEYS: room keys. ARGV: node id, TTL ms. Returns the 1-based indexes of rooms another node
/// owns now.
const KEEP: &str = r"
local lost = {}
for i, k in ipairs(KEYS) do
  local cur = redis.call('GET', k)
  if not cur then
    redis.call('SET', k, ARGV[1], 'PX', ARGV[2])
  elseif cur == ARGV[1] then
    redis.call('PEXPIRE', k, ARGV[2])
  else
    table.insert(lost, i)
  end
end
return lost
";

/// Drops an owner's claims of rooms it no longer runs. KEYS: room keys. ARGV: node id.
const RELEASE: &str = r"
for _, k in ipairs(KEYS) do
  if redis.call('GET', k) == ARGV[1] then redis.call('DEL', k) end
end
return 0
";

/// Removes a node's registration if it is still this instance's. KEYS: node key, nodes set.
/// ARGV: instance, node id.
const DEREGISTER: &str = r"
local cur = redis.call('GET', KEYS[1])
if cur then
  local ok, rec = pcall(cjson.decode, cur)
  if ok and type(rec) == 'table' and rec.instance == ARGV[1] then redis.call('DEL', KEYS[1]) end
end
if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('SREM', KEYS[2], ARGV[2]) end
return 0
";

/// A script hashed once; Redis runs it by hash, loading it on first use.
type Lua = std::sync::LazyLock<Script>;
static REGISTER_LUA: Lua = Lua::new(|| Script::new(REGISTER));
static CLAIM_LUA: Lua = Lua::new(|| Script::new(CLAIM));
static KEEP_LUA: Lua = Lua::new(|| Script::new(KEEP));
static RELEASE_LUA: Lua = Lua::new(|| Script::new(RELEASE));
static DEREGISTER_LUA: Lua = Lua::new(|| Script::new(DEREGISTER));

/// The cluster's state in Redis. Cheap to clone.
#[derive(Clone)]
pub struct Directory {
    client: redis::Client,
    /// The shared connection; replaced after a garbage answer or a timeout, which may leave
    /// the old one out of step with its replies.
    conn: Arc<Mutex<ConnectionManager>>,
}

/// The node key of `id`.
fn node_key(id: &str) -> String {
    format!("{NODE_PREFIX}{id}")
}

/// The claim key of a room.
fn room_key(room: &str) -> String {
    format!("{ROOM_PREFIX}{room}")
}

fn millis(d: Duration) -> u64 {
    d.as_millis() as u64
}

fn manager_config() -> redis::aio::ConnectionManagerConfig {
    redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(Some(REDIS_TIMEOUT))
        .set_response_timeout(Some(REDIS_TIMEOUT))
        .set_number_of_retries(1)
        .set_max_delay(Duration::from_millis(500))
}

impl Directory {
    /// Connects to the Redis at `url` (failing after [`REDIS_TIMEOUT`]); the connection then
    /// reconnects by itself after Redis restarts or the network comes back.
    pub async fn connect(url: &str) -> Result<Self, ClusterError> {
        let client = redis::Client::open(url)
            .map_err(|e| ClusterError::Config(format!("invalid --redis-url: {e}")))?;
        let conn = bounded(ConnectionManager::new_with_config(
            client.clone(),
            manager_config(),
        ))
        .await?;
        let dir = Self {
            client,
            conn: Arc::new(Mutex::new(conn)),
        };
        let pong: String = dir
            .run(|mut c| async move { redis::cmd("PING").query_async(&mut c).await })
            .await?;
        if pong != "PONG" {
            return Err(ClusterError::Garbage(format!("PING answered {pong:?}")));
        }
        Ok(dir)
    }

    /// Runs one request on the shared connection, bounded by [`REDIS_TIMEOUT`]; after a
    /// garbage answer or no answer the connection is replaced (it connects on next use).
    async fn run<T, F, Fut>(&self, request: F) -> Result<T, ClusterError>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let conn = self.conn.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let result = bounded(request(conn)).await;
        if let Err(ClusterError::Garbage(_) | ClusterError::Unavailable(_)) = &result {
            if let Ok(fresh) =
                ConnectionManager::new_lazy_with_config(self.client.clone(), manager_config())
            {
                *self.conn.lock().unwrap_or_else(|e| e.into_inner()) = fresh;
            }
        }
        result
    }

    /// Registers or refreshes `record` under its id with [`NODE_TTL`].
    pub async fn register(&self, record: &NodeRecord) -> Result<(), ClusterError> {
        let json = serde_json::to_string(record).expect("a record serializes");
        let code: i64 = self
            .run(|mut c| async move {
                REGISTER_LUA
                    .key(node_key(&record.id))
                    .key(NODES)
                    .arg(&record.instance)
                    .arg(json)
                    .arg(millis(NODE_TTL))
                    .arg(&record.id)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        match code {
            1 => Ok(()),
            2 => {
                tracing::warn!(node = %record.id, "replaced an unreadable registration");
                Ok(())
            }
            0 => Err(ClusterError::NodeIdClash(record.id.clone())),
            other => Err(ClusterError::Garbage(format!("register answered {other}"))),
        }
    }

    /// Removes this instance's registration (on a clean stop).
    pub async fn deregister(&self, record: &NodeRecord) -> Result<(), ClusterError> {
        let _: i64 = self
            .run(|mut c| async move {
                DEREGISTER_LUA
                    .key(node_key(&record.id))
                    .key(NODES)
                    .arg(&record.instance)
                    .arg(&record.id)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        Ok(())
    }

    /// Claims `room` for `candidate` unless a live node owns it; returns the owner's id.
    pub async fn claim(&self, room: &str, candidate: &str) -> Result<String, ClusterError> {
        self.run(|mut c| async move {
            CLAIM_LUA
                .key(room_key(room))
                .arg(candidate)
                .arg(millis(ROOM_TTL))
                .arg(NODE_PREFIX)
                .invoke_async(&mut c)
                .await
        })
        .await
    }

    /// Keeps `node`'s claims of `rooms`; returns the rooms another node owns now.
    pub async fn keep(&self, node: &str, rooms: &[String]) -> Result<Vec<String>, ClusterError> {
        if rooms.is_empty() {
            return Ok(Vec::new());
        }
        let lost: Vec<usize> = self
            .run(|mut c| async move {
                let mut script = KEEP_LUA.prepare_invoke();
                for room in rooms {
                    script.key(room_key(room));
                }
                script.arg(node).arg(millis(ROOM_TTL));
                script.invoke_async(&mut c).await
            })
            .await?;
        Ok(lost
            .into_iter()
            .filter_map(|i| rooms.get(i.wrapping_sub(1)).cloned())
            .collect())
    }

    /// Drops `node`'s claims of `rooms` (rooms that ended).
    pub async fn release(&self, node: &str, rooms: &[String]) -> Result<(), ClusterError> {
        if rooms.is_empty() {
            return Ok(());
        }
        let _: i64 = self
            .run(|mut c| async move {
                let mut script = RELEASE_LUA.prepare_invoke();
                for room in rooms {
                    script.key(room_key(room));
                }
                script.arg(node);
                script.invoke_async(&mut c).await
            })
            .await?;
        Ok(())
    }

    /// The owner id of `room`'s claim, if any.
    pub async fn owner(&self, room: &str) -> Result<Option<String>, ClusterError> {
        self.run(|mut c| async move { c.get(room_key(room)).await })
            .await
    }

    /// One node's record; `None` when it is not registered (or no longer).
    pub async fn node(&self, id: &str) -> Result<Option<NodeRecord>, ClusterError> {
        let json: Option<String> = self
            .run(|mut c| async move { c.get(node_key(id)).await })
            .await?;
        json.map(|j| parse_record(id, &j)).transpose()
    }

    /// Every live node's record, sorted by id; ids whose registration expired are dropped from
    /// the set, and unreadable records are skipped with a warning.
    pub async fn nodes(&self) -> Result<Vec<NodeRecord>, ClusterError> {
        let mut ids: Vec<String> = self
            .run(|mut c| async move { c.smembers(NODES).await })
            .await?;
        ids.sort();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = ids.iter().map(|id| node_key(id)).collect();
        let values: Vec<Option<String>> =
            self.run(|mut c| async move { c.mget(&keys).await }).await?;
        let mut live = Vec::new();
        let mut gone = Vec::new();
        for (id, value) in ids.into_iter().zip(values) {
            match value {
                None => gone.push(id),
                Some(json) => match parse_record(&id, &json) {
                    Ok(record) => live.push(record),
                    Err(e) => tracing::warn!(node = %id, error = %e, "skipping a node record"),
                },
            }
        }
        if !gone.is_empty() {
            let _: i64 = self
                .run(|mut c| async move { c.srem(NODES, &gone).await })
                .await?;
        }
        Ok(live)
    }

    /// Whether `lamina drain` asked `node` to drain.
    pub async fn drain_requested(&self, node: &str) -> Result<bool, ClusterError> {
        self.run(|mut c| async move { c.exists(format!("{DRAIN_PREFIX}{node}")).await })
            .await
    }

    /// Asks `node` to drain (it reads this at its next refresh); the request lasts a day.
    pub async fn request_drain(&self, node: &str) -> Result<(), ClusterError> {
        self.run(|mut c| async move {
            c.set_ex::<_, _, ()>(format!("{DRAIN_PREFIX}{node}"), 1, 86_400)
                .await
        })
        .await
    }

    /// Clears a drain request (a node that starts again under the same id takes rooms again).
    pub async fn clear_drain(&self, node: &str) -> Result<(), ClusterError> {
        let _: i64 = self
            .run(|mut c| async move { c.del(format!("{DRAIN_PREFIX}{node}")).await })
            .await?;
        Ok(())
    }
}

/// A record read back, checked against the id it was stored under.
fn parse_record(id: &str, json: &str) -> Result<NodeRecord, ClusterError> {
    let record: NodeRecord = serde_json::from_str(json)
        .map_err(|e| ClusterError::Garbage(format!("node {id}'s record: {e}")))?;
    if record.id != id {
        return Err(ClusterError::Garbage(format!(
            "node {id}'s record names node {}",
            record.id
        )));
    }
    Ok(record)
}

/// Runs one Redis request, bounded by [`REDIS_TIMEOUT`], mapping its errors.
async fn bounded<T>(
    request: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> Result<T, ClusterError> {
    match tokio::time::timeout(REDIS_TIMEOUT, request).await {
        Err(_) => Err(ClusterError::Unavailable(format!(
            "no answer within {} ms",
            REDIS_TIMEOUT.as_millis()
        ))),
        Ok(Err(e))
            if e.kind() == redis::ErrorKind::Parse
                || e.kind() == redis::ErrorKind::UnexpectedReturnType =>
        {
            Err(ClusterError::Garbage(e.to_string()))
        }
        Ok(Err(e)) => Err(ClusterError::Unavailable(e.to_string())),
        Ok(Ok(v)) => Ok(v),
    }
}
