//! The engine's Lua scripts: every state transition is one script, so it is atomic, and time comes
//! from the Redis server (`TIME`) so that instances with skewed clocks agree.
//!
//! All keys a script touches share the sender's hash tag. Keys named by id (message records, lane
//! queues) are built inside the script from a prefix passed in ARGV; they carry the same hash tag,
//! so on a Redis Cluster they live in the script's slot.

use redis::Script;

/// Milliseconds since the epoch, from the server's clock.
const NOW: &str = r#"
local __t = redis.call('TIME')
local now = tonumber(__t[1]) * 1000 + math.floor(tonumber(__t[2]) / 1000)
"#;

/// Appends a JSON object to a field holding a comma-separated list of JSON objects (the reader
/// wraps it in brackets): cheaper than decoding and re-encoding a JSON array on every change.
const APPEND: &str = r#"
local function append(key, field, item)
  local cur = redis.call('HGET', key, field)
  if cur and cur ~= '' then
    redis.call('HSET', key, field, cur .. ',' .. item)
  else
    redis.call('HSET', key, field, item)
  end
end
-- A worker acts on a message only while its claim token holds the lease; then the lease ends.
local function fenced(key, lease, id, token)
  if redis.call('HGET', key, 'token') ~= token then return false end
  redis.call('ZREM', lease, id)
  redis.call('HDEL', key, 'token')
  return true
end
local function history(key, status, now, source)
  append(key, 'history', '{"status":"' .. status .. '","at":' .. now .. ',"source":"' .. source .. '"}')
end
"#;

fn script(body: &str) -> Script {
    Script::new(&format!("{NOW}{APPEND}{body}"))
}

/// Stores a new message and queues it (or schedules it).
///
/// KEYS: message, lane ready list, delayed set.
/// ARGV: id, body JSON, lane, due ms (0: now).
/// Returns the acceptance time in ms, or 0 if the id already exists.
pub fn accept() -> Script {
    script(
        r#"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'body', ARGV[2], 'status', 'queued', 'lane', ARGV[3], 'attempt', 0,
  'created', now, 'updated', now)
history(KEYS[1], 'queued', now, 'api')
local due = tonumber(ARGV[4])
if due > now then
  redis.call('ZADD', KEYS[3], due, ARGV[1])
else
  redis.call('LPUSH', KEYS[2], ARGV[1])
end
return now
"#,
    )
}

/// Claims up to `max` ready messages of one lane for one worker.
///
/// First it moves due delayed messages (any lane of the sender) to the front of their lane, and
/// takes back expired leases (marking the message as a possible redelivery). Then, unless the lane
/// is paused, it pops messages from the lane's FIFO, each within the lane's GCRA rate, leases them
/// and gives each a fencing token.
///
/// KEYS: lane ready list, lease set, delayed set, lane pause key, lane rate key.
/// ARGV: lane, lease ms, max, token prefix, message key prefix, ready key prefix,
///       emission interval ms (1000 / rate), burst (messages).
/// Returns `{wait_ms, reason, id, token, body, attempt, redeliver, id, ...}`; `wait_ms` is how
/// long the worker may sleep before there may be work again (0: claim again at once; -1: nothing
/// known) and `reason` why: 0 more work may be ready, 1 the lane is paused, 2 its rate allows no
/// more now, 3 nothing is ready.
pub fn claim() -> Script {
    script(
        r#"
local msg_prefix, ready_prefix = ARGV[5], ARGV[6]
local due = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, 512)
for i = #due, 1, -1 do
  local id = due[i]
  redis.call('ZREM', KEYS[3], id)
  local lane = redis.call('HGET', msg_prefix .. id, 'lane')
  local st = redis.call('HGET', msg_prefix .. id, 'status')
  if lane and st == 'queued' then redis.call('RPUSH', ready_prefix .. lane, id) end
end
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 512)
for i = #expired, 1, -1 do
  local id = expired[i]
  redis.call('ZREM', KEYS[2], id)
  local mk = msg_prefix .. id
  if redis.call('HGET', mk, 'status') == 'sending' then
    local lane = redis.call('HGET', mk, 'lane')
    redis.call('HSET', mk, 'status', 'queued', 'redeliver', 1, 'updated', now)
    redis.call('HDEL', mk, 'token')
    redis.call('RPUSH', ready_prefix .. lane, id)
  end
end

local function next_wait()
  local w = -1
  local d = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
  if d[2] then w = math.max(0, tonumber(d[2]) - now) end
  local l = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  if l[2] then
    local lw = math.max(0, tonumber(l[2]) - now)
    if w < 0 or lw < w then w = lw end
  end
  return w
end

local paused = redis.call('PTTL', KEYS[4])
if paused > 0 then return {paused, 1} end

-- GCRA: `burst` messages may go at once, then one per interval; so any window of length W holds
-- at most burst + W / interval of them.
local interval = tonumber(ARGV[7])
local tolerance = interval * math.max(0, tonumber(ARGV[8]) - 1)
local tat = tonumber(redis.call('GET', KEYS[5]) or '0')
if tat < now then tat = now end

local out = {0, 0}
local max = tonumber(ARGV[3])
local lease_until = now + tonumber(ARGV[2])
local claimed = 0
while claimed < max do
  if tat - now > tolerance then
    out[1] = math.ceil(tat - now - tolerance)
    out[2] = 2
    break
  end
  local id = redis.call('RPOP', KEYS[1])
  if not id then break end
  local mk = msg_prefix .. id
  local f = redis.call('HMGET', mk, 'status', 'body', 'attempt', 'redeliver')
  if f[1] == 'queued' then
    local token = ARGV[4] .. ':' .. redis.call('HINCRBY', mk, 'claims', 1)
    redis.call('HSET', mk, 'status', 'sending', 'token', token, 'updated', now)
    redis.call('ZADD', KEYS[2], lease_until, id)
    tat = tat + interval
    claimed = claimed + 1
    table.insert(out, id)
    table.insert(out, token)
    table.insert(out, f[2])
    table.insert(out, f[3] or '0')
    table.insert(out, f[4] or '0')
  end
end
if claimed > 0 then
  redis.call('SET', KEYS[5], tostring(tat), 'PX', math.ceil(tat - now + tolerance + 1000))
end
if out[2] == 0 and redis.call('LLEN', KEYS[1]) == 0 then
  out[1] = next_wait()
  out[2] = 3
end
return out
"#,
    )
}

/// The provider accepted the message.
///
/// KEYS: message, lease set, reconciliation set. ARGV: id, token, provider, provider message id,
/// attempt JSON, retention ms, lane, reconcile (1: poll this message's status if no news comes).
/// Returns 1, or 0 when the token no longer holds the lease (another worker owns the message).
pub fn submitted() -> Script {
    script(
        r#"
if not fenced(KEYS[1], KEYS[2], ARGV[1], ARGV[2]) then return 0 end
if ARGV[8] == '1' then redis.call('ZADD', KEYS[3], now, ARGV[1]) end
redis.call('HDEL', KEYS[1], 'error')
append(KEYS[1], 'attempts', ARGV[5])
redis.call('HINCRBY', KEYS[1], 'attempt', 1)
redis.call('HSET', KEYS[1], 'status', 'submitted', 'provider', ARGV[3], 'pmid', ARGV[4], 'lane', ARGV[7],
  'updated', now, 'submitted_at', now)
history(KEYS[1], 'submitted', now, ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
return 1
"#,
    )
}

/// The message failed for good.
///
/// KEYS: message, lease set, dead-letter set. ARGV: id, token, error JSON, attempt JSON, retention
/// ms, dead-letter (1/0), dead-letter cap, source, message key prefix. Dead letters pushed out by the
/// cap lose their records too.
/// Returns 1, or 0 when the token no longer holds the lease.
pub fn failed() -> Script {
    script(
        r#"
if not fenced(KEYS[1], KEYS[2], ARGV[1], ARGV[2]) then return 0 end
append(KEYS[1], 'attempts', ARGV[4])
redis.call('HINCRBY', KEYS[1], 'attempt', 1)
redis.call('HSET', KEYS[1], 'status', 'failed', 'error', ARGV[3], 'updated', now)
history(KEYS[1], 'failed', now, ARGV[8])
if ARGV[6] == '1' then
  redis.call('ZADD', KEYS[3], now, ARGV[1])
  local excess = redis.call('ZCARD', KEYS[3]) - tonumber(ARGV[7])
  if excess > 0 then
    local oldest = redis.call('ZRANGE', KEYS[3], 0, excess - 1)
    redis.call('ZREMRANGEBYRANK', KEYS[3], 0, excess - 1)
    for _, old in ipairs(oldest) do redis.call('DEL', ARGV[9] .. old) end
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
"#,
    )
}

/// A transient failure: schedule the next attempt.
///
/// KEYS: message, lease set, delayed set. ARGV: id, token, error JSON, attempt JSON, delay ms,
/// spend (1: the attempt counts against the retry budget; 0: it does not, as for pair-rate waits),
/// ambiguous (1: the provider may have the message already, so the next send may duplicate it).
/// Returns 1, or 0 when the token no longer holds the lease.
pub fn retry() -> Script {
    script(
        r#"
if not fenced(KEYS[1], KEYS[2], ARGV[1], ARGV[2]) then return 0 end
append(KEYS[1], 'attempts', ARGV[4])
if ARGV[6] == '1' then redis.call('HINCRBY', KEYS[1], 'attempt', 1) end
if ARGV[7] == '1' then redis.call('HSET', KEYS[1], 'redeliver', 1) end
redis.call('HSET', KEYS[1], 'status', 'queued', 'error', ARGV[3], 'updated', now)
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[5]), ARGV[1])
return 1
"#,
    )
}

/// The provider throttled the lane: the message goes back to the front of its lane without
/// spending an attempt, and the lane pauses.
///
/// KEYS: message, lease set, lane ready list, lane pause key. ARGV: id, token, attempt JSON, pause ms,
/// spend (1: count the attempt, for deliveries that must keep their order while they retry).
/// Returns 1, or 0 when the token no longer holds the lease.
pub fn throttled() -> Script {
    script(
        r#"
if not fenced(KEYS[1], KEYS[2], ARGV[1], ARGV[2]) then return 0 end
append(KEYS[1], 'attempts', ARGV[3])
if ARGV[5] == '1' then redis.call('HINCRBY', KEYS[1], 'attempt', 1) end
redis.call('HSET', KEYS[1], 'status', 'queued', 'updated', now)
redis.call('RPUSH', KEYS[3], ARGV[1])
local pause = tonumber(ARGV[4])
if redis.call('PTTL', KEYS[4]) < pause then
  redis.call('SET', KEYS[4], now + pause, 'PX', pause)
end
return 1
"#,
    )
}

/// Hands a claimed message back untouched (shutdown before the provider call): front of its lane.
///
/// KEYS: message, lease set, lane ready list. ARGV: id, token.
pub fn release() -> Script {
    script(
        r#"
if not fenced(KEYS[1], KEYS[2], ARGV[1], ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], 'status', 'queued', 'updated', now)
redis.call('RPUSH', KEYS[3], ARGV[1])
return 1
"#,
    )
}

/// Cancels a message that has not been handed to a provider.
///
/// KEYS: message, delayed set. ARGV: id, retention ms.
/// Returns `{1}` when cancelled, `{0, status}` when it cannot be (or `{0}` when it does not exist).
/// A cancelled id may stay in its lane's FIFO: the claim script skips anything not `queued`.
pub fn cancel() -> Script {
    script(
        r#"
local st = redis.call('HGET', KEYS[1], 'status')
if not st then return {0} end
if st ~= 'queued' then return {0, st} end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[1], 'status', 'cancelled', 'updated', now)
history(KEYS[1], 'cancelled', now, 'api')
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {1}
"#,
    )
}

/// Sends a dead letter again: a fresh retry budget, at the front of its lane.
///
/// KEYS: message, dead-letter set. ARGV: id, lane ready key prefix.
/// Returns 1, or 0 when the id is not a dead letter (or its record is gone).
pub fn replay() -> Script {
    script(
        r#"
if not redis.call('ZSCORE', KEYS[2], ARGV[1]) then return 0 end
redis.call('ZREM', KEYS[2], ARGV[1])
local lane = redis.call('HGET', KEYS[1], 'lane')
if not lane then return 0 end
redis.call('PERSIST', KEYS[1])
redis.call('HSET', KEYS[1], 'status', 'queued', 'attempt', 0, 'updated', now)
redis.call('HDEL', KEYS[1], 'error', 'redeliver')
history(KEYS[1], 'queued', now, 'replay')
redis.call('RPUSH', ARGV[2] .. lane, ARGV[1])
return 1
"#,
    )
}

/// Drops a dead letter and its record.
///
/// KEYS: message, dead-letter set. ARGV: id. Returns 1, or 0 when the id is not a dead letter.
pub fn drop_dead_letter() -> Script {
    script(
        r#"
if redis.call('ZREM', KEYS[2], ARGV[1]) == 0 then return 0 end
redis.call('DEL', KEYS[1])
return 1
"#,
    )
}

/// Starts an idempotent request: claims the key, or says what it holds.
///
/// KEYS: idempotency key. ARGV: value to store while processing, processing TTL ms.
/// Returns `{1}` when claimed, `{0, stored value}` otherwise.
pub fn idempotency_begin() -> Script {
    Script::new(
        r#"
local cur = redis.call('GET', KEYS[1])
if cur then return {0, cur} end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return {1}
"#,
    )
}

/// Moves a claimed message to its next account (failover): a fresh retry budget there, at the
/// front of that lane.
///
/// KEYS: message, lease set, next lane's ready list. ARGV: id, token, next lane, attempt JSON (or
/// empty), error JSON (or empty).
/// Returns 1, or 0 when the token no longer holds the lease.
pub fn failover() -> Script {
    script(
        r#"
if not fenced(KEYS[1], KEYS[2], ARGV[1], ARGV[2]) then return 0 end
if ARGV[4] ~= '' then append(KEYS[1], 'attempts', ARGV[4]) end
if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'error', ARGV[5]) end
redis.call('HSET', KEYS[1], 'lane', ARGV[3], 'status', 'queued', 'attempt', 0, 'updated', now)
redis.call('RPUSH', KEYS[3], ARGV[1])
return 1
"#,
    )
}

/// Applies a status a provider reported. The status rule itself lives in gateway-core; the caller
/// passes the statuses from which the reported one advances, so this script only applies it.
///
/// KEYS: message, reconciliation set. ARGV: reported status, at (ms, provider's time or 0 for now),
/// source, error JSON (or empty), statuses it advances from (`|a|b|`), retention ms, done (1: no
/// more reconciliation polls are needed).
/// Returns `{outcome, previous status, created ms, chain link}`, outcome one of `missing`,
/// `duplicate`, `advanced`, `history`; the chain link is empty for a message in no fallback chain.
pub fn apply_report() -> Script {
    script(
        r#"
local st = redis.call('HGET', KEYS[1], 'status')
if not st then return {'missing', '', 0, ''} end
local created = tonumber(redis.call('HGET', KEYS[1], 'created') or '0')
local seen = redis.call('HGET', KEYS[1], 'seen') or '|'
if string.find(seen, '|' .. ARGV[1] .. '|', 1, true) then return {'duplicate', st, created, ''} end
redis.call('HSET', KEYS[1], 'seen', seen .. ARGV[1] .. '|')
local at = tonumber(ARGV[2])
if at <= 0 then at = now end
history(KEYS[1], ARGV[1], at, ARGV[3])
local outcome = 'history'
if string.find(ARGV[5], '|' .. st .. '|', 1, true) then
  redis.call('HSET', KEYS[1], 'status', ARGV[1], 'updated', now)
  if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'error', ARGV[4]) end
  outcome = 'advanced'
end
local id = string.match(KEYS[1], ':m:(.+)$')
if ARGV[7] == '1' then
  redis.call('ZREM', KEYS[2], id)
elseif redis.call('ZSCORE', KEYS[2], id) then
  redis.call('ZADD', KEYS[2], now, id)
end
redis.call('PEXPIRE', KEYS[1], ARGV[6])
return {outcome, st, created, redis.call('HGET', KEYS[1], 'chain') or ''}
"#,
    )
}

/// Takes every report buffered for a provider message id (they came before the send's answer).
///
/// KEYS: buffer list. Returns the reports.
pub fn drain() -> Script {
    Script::new(
        r#"
local items = redis.call('LRANGE', KEYS[1], 0, -1)
redis.call('DEL', KEYS[1])
return items
"#,
    )
}

/// Stores and queues a message of a fallback chain: the first message (with its chain state and
/// its wait timer) or a step (created by [`fallback_advance`]'s caller, under an id chosen at
/// acceptance, so a hand-off repeated after a crash finds it and changes nothing).
///
/// KEYS: message, lane ready list, delayed set, fallback wait set (the message's own sender's).
/// ARGV: id, body JSON, lane, due ms (0: now), chain link, steps (0 for a step), wait ms before the
/// first check of the first message, history source.
/// Returns the acceptance time in ms, or 0 if the id already exists.
pub fn accept_chained() -> Script {
    script(
        r#"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'body', ARGV[2], 'status', 'queued', 'lane', ARGV[3], 'attempt', 0,
  'created', now, 'updated', now, 'chain', ARGV[5])
history(KEYS[1], 'queued', now, ARGV[8])
local due = tonumber(ARGV[4])
if due > now then
  redis.call('ZADD', KEYS[3], due, ARGV[1])
else
  redis.call('LPUSH', KEYS[2], ARGV[1])
end
if tonumber(ARGV[6]) > 0 then
  redis.call('HSET', KEYS[1], 'fbn', ARGV[6], 'fbcur', 0)
  redis.call('ZADD', KEYS[4], math.max(due, now) + tonumber(ARGV[7]), ARGV[1])
end
return now
"#,
    )
}

/// Takes the chains whose timer is due, and sets each one's timer `lease` ms ahead: an instance
/// that dies while checking one leaves it to be checked again then.
///
/// KEYS: fallback wait set. ARGV: max, lease ms. Returns the first messages' ids.
pub fn fallback_due() -> Script {
    script(
        r#"
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
for _, id in ipairs(ids) do redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), id) end
return ids
"#,
    )
}

/// Moves a chain to its next step: records the step's id and why it is sent, and marks the
/// hand-off pending (with a timer `recheck` ms ahead, so it is finished even if this instance
/// dies before creating the step's message). Fenced by the step the caller saw in play, so only
/// one caller ever moves the chain from a step.
///
/// KEYS: first message, fallback wait set. ARGV: first message's id, step in play, next step's
/// message id, reason, recheck ms.
/// Returns 1 when moved, 0 when the chain is done, gone, or another caller moved it.
pub fn fallback_advance() -> Script {
    script(
        r#"
local f = redis.call('HMGET', KEYS[1], 'fbcur', 'fbdone', 'fbn', 'status')
if not f[4] or f[2] == '1' then return 0 end
local cur = tonumber(f[1] or '0')
if cur ~= tonumber(ARGV[2]) then return 0 end
local nxt = cur + 1
if nxt > tonumber(f[3] or '0') then return 0 end
redis.call('HSET', KEYS[1], 'fbcur', nxt, 'fb' .. nxt, ARGV[3], 'fbr' .. nxt, ARGV[4], 'fbho', 1, 'updated', now)
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[5]), ARGV[1])
return 1
"#,
    )
}

/// The step's message exists: the hand-off is over. Its timer is set for the next check (or
/// dropped after the last step).
///
/// KEYS: first message, fallback wait set. ARGV: first message's id, step, wait ms (0: none).
/// Returns 1 when this call finished the hand-off, 2 when it did but the chain was closed
/// meanwhile (cancelled: the caller cancels the step), 0 when another caller finished it.
pub fn fallback_handed() -> Script {
    script(
        r#"
local f = redis.call('HMGET', KEYS[1], 'fbcur', 'fbho', 'fbdone')
if f[2] ~= '1' or tonumber(f[1] or '0') ~= tonumber(ARGV[2]) then return 0 end
redis.call('HDEL', KEYS[1], 'fbho')
if f[3] == '1' then
  redis.call('ZREM', KEYS[2], ARGV[1])
  return 2
end
if tonumber(ARGV[3]) > 0 then
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[1])
else
  redis.call('ZREM', KEYS[2], ARGV[1])
end
return 1
"#,
    )
}

/// A message of the chain reached its status: the first to do so is the chain's outcome, and
/// the chain sends nothing more.
///
/// KEYS: first message, fallback wait set. ARGV: first message's id, step, that step's message id.
/// Returns `{late, counted}`: late 1 when a later step had already been sent; counted 0 when this
/// step's success was recorded before (a `read` after `delivered`).
pub fn fallback_reached() -> Script {
    script(
        r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return {0, 0} end
local seen = 'fbok' .. ARGV[2]
if redis.call('HSETNX', KEYS[1], seen, 1) == 0 then return {0, 0} end
redis.call('HSETNX', KEYS[1], 'outcome', ARGV[3])
if redis.call('HGET', KEYS[1], 'fbdone') ~= '1' then
  redis.call('HSET', KEYS[1], 'fbdone', 1, 'updated', now)
  redis.call('ZREM', KEYS[2], ARGV[1])
end
local late = 0
if tonumber(ARGV[2]) < tonumber(redis.call('HGET', KEYS[1], 'fbcur') or '0') then late = 1 end
return {late, 1}
"#,
    )
}

/// Closes a chain: it sends nothing more (cancelled, or its last step ended undelivered).
///
/// KEYS: first message, fallback wait set. ARGV: first message's id, step in play the caller saw
/// (-1: whatever it is).
/// Returns `{closed, step in play, hand-off pending}`; closed 0 when it was closed already, is
/// gone, or moved on from the step the caller saw.
pub fn fallback_close() -> Script {
    script(
        r#"
local f = redis.call('HMGET', KEYS[1], 'fbcur', 'fbdone', 'fbho', 'status')
local cur = tonumber(f[1] or '0')
if not f[4] or f[2] == '1' then return {0, cur, 0} end
if tonumber(ARGV[2]) >= 0 and cur ~= tonumber(ARGV[2]) then return {0, cur, 0} end
redis.call('HSET', KEYS[1], 'fbdone', 1, 'updated', now)
redis.call('ZREM', KEYS[2], ARGV[1])
return {1, cur, tonumber(f[3] or '0')}
"#,
    )
}

/// Sets a chain's timer, if the chain is still at the step the caller checked.
///
/// KEYS: first message, fallback wait set. ARGV: first message's id, step in play, due ms (< 0:
/// no more checks).
/// Returns 1 when set; 0 when the chain moved on (the mover set the timer) or is over (the timer
/// is dropped).
pub fn fallback_rearm() -> Script {
    script(
        r#"
local f = redis.call('HMGET', KEYS[1], 'fbcur', 'fbdone', 'status')
if not f[3] or f[2] == '1' or tonumber(ARGV[3]) < 0 then
  redis.call('ZREM', KEYS[2], ARGV[1])
  return 0
end
if tonumber(f[1] or '0') ~= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[2], tonumber(ARGV[3]), ARGV[1])
return 1
"#,
    )
}
