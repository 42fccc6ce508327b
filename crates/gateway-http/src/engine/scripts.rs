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
-- Tells every instance that a lane may have work now, or a due time sooner than it knew: an idle
-- lane's workers sleep long and count on this (`<prefix>:wake`, the lane's name as the message;
-- PUBLISH reaches every node of a cluster). `key` is any key of the sender.
local function wake(key, lane)
  redis.call('PUBLISH', string.match(key, '^(.-):{') .. ':wake', lane)
end
-- The same for the sender's fallback timers (`!<sender>`): a chain's check is due sooner.
local function wake_chains(key)
  local prefix, sender = string.match(key, '^(.-):{(.-)}')
  redis.call('PUBLISH', prefix .. ':wake', '!' .. sender)
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
-- A message's ready list: its lane's, for its priority class (`pq`: '' normal, ':high', ':bulk').
local function ready_of(prefix, key, lane)
  return prefix .. lane .. (redis.call('HGET', key, 'pq') or '')
end
-- A message that ended keeps its campaign's member set alive as long as its own record.
local function keep_batch(key, retention)
  local b = redis.call('HGET', key, 'batch')
  if b then
    local set = string.gsub(key, ':m:[^:]+$', ':b:' .. b)
    redis.call('PEXPIRE', set, retention)
  end
end
-- Search indexes (messages only: event jobs have no recipient). Each index is a sorted set of ids
-- by acceptance time, kept for the retention after its last write; each write also drops up to
-- two entries older than the retention whose records are gone, so an index never grows with
-- ended messages.
local function trim(ix, now, rt)
  local old = redis.call('ZRANGEBYSCORE', ix, '-inf', now - rt, 'LIMIT', 0, 2)
  local base = string.match(ix, '^(.*):ix')
  for _, id in ipairs(old) do
    if redis.call('EXISTS', base .. ':m:' .. id) == 0 then redis.call('ZREM', ix, id) end
  end
end
local function index(ix, score, id, now, rt)
  redis.call('ZADD', ix, score, id)
  redis.call('PEXPIRE', ix, rt)
  trim(ix, now, rt)
end
-- `index` for a batch: `entries` holds score, id, score, id...; one write of them all, and as many
-- old entries dropped as `index` would drop for each.
local function index_many(ix, entries, now, rt)
  redis.call('ZADD', ix, unpack(entries))
  redis.call('PEXPIRE', ix, rt)
  local old = redis.call('ZRANGEBYSCORE', ix, '-inf', now - rt, 'LIMIT', 0, #entries)
  local base = string.match(ix, '^(.*):ix')
  for _, id in ipairs(old) do
    if redis.call('EXISTS', base .. ':m:' .. id) == 0 then redis.call('ZREM', ix, id) end
  end
end
-- Appends to a list kept in a table of lists by key.
local function push(t, k, ...)
  local l = t[k]
  if not l then l = {}; t[k] = l end
  for _, v in ipairs({...}) do l[#l + 1] = v end
end
-- A claimed message stays in the `queued` index: claims and lease returns are the hot path, and
-- a search for `sending` reads that index and checks the records.
local function status_index(st)
  if st == 'sending' then return 'queued' end
  return st
end
-- What the search indexes need from a record: `sx` is `<retention ms>:<recipient>`, one field
-- rather than two because a queued record's size is mostly per-field overhead. Records written
-- before it keep `rt` and `to`.
local function search_fields(sx, to, rt)
  if sx then
    local r, t = string.match(sx, '^(%d+):(.*)$')
    return t, tonumber(r)
  end
  if to then return to, tonumber(rt) end
  return nil
end
local function set_status(key, st)
  local f = redis.call('HMGET', key, 'status', 'sx', 'created', 'to', 'rt')
  redis.call('HSET', key, 'status', st)
  local to, rt = search_fields(f[2], f[4], f[5])
  if not to then return end
  local old, new = f[1] and status_index(f[1]), status_index(st)
  if old == new then return end
  local base, id = string.match(key, '^(.*):m:([^:]+)$')
  if old then redis.call('ZREM', base .. ':ix:st:' .. old, id) end
  index(base .. ':ix:st:' .. new, f[3], id, now, rt)
  if st ~= 'queued' and st ~= 'sending' then
    -- With a provider or ended: the record now has a TTL, and its indexes last as long.
    redis.call('PEXPIRE', base .. ':ix:to:' .. to, rt)
    keep_batch(key, rt)
  end
end
"#;

pub(super) fn script(body: &str) -> Script {
    Script::new(&format!("{NOW}{APPEND}{body}"))
}

/// Stores new messages and queues them (or schedules them); every message, a fallback chain's
/// included, is accepted here. Takes a batch: the accepts of one sender that arrived while the
/// previous batch was in Redis, so that a busy sender pays for one script call, not one each.
///
/// KEYS: delayed set, validity set, fallback wait set (all of one sender).
/// ARGV: the sender's key tag (`<prefix>:{<sender>}`), retention ms, then 12 per message: id, body
/// JSON, lane, due ms (0: now), priority class suffix (`''`, `:high`, `:bulk`), validity ms (0:
/// none), campaign id (`''`: none), recipient (`''`: a job that is not a message, which no search
/// index holds), chain link (`''`: not in a chain), steps (> 0 for a chain's first message), wait
/// ms before the chain's first check, history source.
/// Returns each message's acceptance time in ms, in order, or 0 where the id already exists.
pub fn accept() -> Script {
    script(
        r#"
local base, rt = ARGV[1], tonumber(ARGV[2])
local nows = tostring(now)
local out = {}
-- The batch's writes to shared keys, made once each after the loop: a call per key, not per
-- message.
local queued_ix, to_ix, ready, delayed, validity = {}, {}, {}, {}, {}
local lane_of, ring, chains_woken = {}, {}, false
for i = 3, #ARGV, 12 do
  local id, lane, due, class = ARGV[i], ARGV[i + 2], tonumber(ARGV[i + 3]), ARGV[i + 4]
  local ttl, batch, to, chain = tonumber(ARGV[i + 5]), ARGV[i + 6], ARGV[i + 7], ARGV[i + 8]
  local mk = base .. ':m:' .. id
  if redis.call('EXISTS', mk) == 1 then
    out[#out + 1] = 0
  else
    -- One write of every field. No `attempt` (0) nor `updated` (= `created`) yet: every field
    -- costs a queued message memory.
    local f = {'body', ARGV[i + 1], 'lane', lane, 'created', nows, 'status', 'queued',
      'history', '{"status":"queued","at":' .. nows .. ',"source":"' .. ARGV[i + 11] .. '"}'}
    local function field(k, v) f[#f + 1] = k; f[#f + 1] = v end
    if to ~= '' then
      field('sx', ARGV[2] .. ':' .. to)
      queued_ix[#queued_ix + 1] = nows
      queued_ix[#queued_ix + 1] = id
      push(to_ix, to, nows, id)
    end
    if class ~= '' then field('pq', class) end
    if ttl > 0 then
      -- Validity counts from acceptance, or from `send_at` when scheduled.
      local exp = math.max(now, due) + ttl
      field('exp', exp)
      validity[#validity + 1] = exp
      validity[#validity + 1] = id
    end
    if batch ~= '' then
      field('batch', batch)
      local bk = base .. ':b:' .. batch
      redis.call('ZADD', bk, nows, id)
      if redis.call('PTTL', bk) < rt then redis.call('PEXPIRE', bk, rt) end
    end
    if chain ~= '' then
      field('chain', chain)
      local steps = tonumber(ARGV[i + 9])
      if steps > 0 then
        field('fbn', steps)
        field('fbcur', 0)
        redis.call('ZADD', KEYS[3], math.max(due, now) + tonumber(ARGV[i + 10]), id)
        if not chains_woken then chains_woken = true; wake_chains(KEYS[3]) end
      end
    end
    redis.call('HSET', mk, unpack(f))
    if due > now then
      delayed[#delayed + 1] = due
      delayed[#delayed + 1] = id
      ring[lane] = true
    else
      push(ready, lane .. class, id)
      lane_of[lane .. class] = lane
    end
    out[#out + 1] = now
  end
end
if #validity > 0 then redis.call('ZADD', KEYS[2], unpack(validity)) end
if #delayed > 0 then redis.call('ZADD', KEYS[1], unpack(delayed)) end
for q, ids in pairs(ready) do
  -- A list that held work has a worker on it already (or one is told by the push that filled
  -- it).
  if redis.call('LPUSH', base .. ':q:' .. q, unpack(ids)) == #ids then ring[lane_of[q]] = true end
end
for lane in pairs(ring) do wake(KEYS[1], lane) end
if #queued_ix > 0 then index_many(base .. ':ix:st:queued', queued_ix, now, rt) end
for to, ix in pairs(to_ix) do index_many(base .. ':ix:to:' .. to, ix, now, rt) end
return out
"#,
    )
}

/// Claims up to `max` ready messages of one lane for one worker.
///
/// First it moves due delayed messages (any lane of the sender) to the front of their lane's list
/// for their priority class, takes back expired leases (marking the message as a possible
/// redelivery), and ends every queued message of the sender whose validity has passed (status
/// `expired`), even while the sender is paused. Then, unless the sender is paused by an operator
/// or the lane by its provider, it takes messages from the lane's three ready lists (high, normal,
/// bulk) by smooth weighted round robin over the lists that hold work, each within the lane's GCRA
/// rate, leases them and gives each a fencing token. A popped message whose validity has passed is
/// expired instead of leased.
///
/// KEYS: lane ready list (normal), lease set, delayed set, lane pause key, lane rate key, ready
///       list (high), ready list (bulk), round-robin state, validity set, sender pause (hold) key.
/// ARGV: lane, lease ms, max, token prefix, message key prefix, ready key prefix,
///       emission interval ms (1000 / rate), burst (messages), weights high, normal, bulk,
///       retention ms.
/// With nothing ready and nothing due it returns at once (the idle lane's look for work, a few
/// reads).
///
/// Returns `{wait_ms, reason, n_expired, expired id..., id, token, body, attempt, redeliver,
/// class, id, ...}`; `wait_ms` is how long the worker may sleep before there may be work again
/// (0: claim again at once; -1: nothing known) and `reason` why: 0 more work may be ready, 1 the
/// lane or sender is paused, 2 its rate allows no more now, 3 nothing is ready.
pub fn claim() -> Script {
    script(
        r#"
-- The idle case in a few reads: nothing ready and nothing due (delays, leases, validity) answers
-- how long until something is due, without the sweeps below.
if redis.call('LLEN', KEYS[1]) == 0 and redis.call('LLEN', KEYS[6]) == 0 and redis.call('LLEN', KEYS[7]) == 0 then
  local w, due_now = -1, false
  for _, k in ipairs({KEYS[3], KEYS[2], KEYS[9]}) do
    local d = redis.call('ZRANGE', k, 0, 0, 'WITHSCORES')
    if d[2] then
      local dw = tonumber(d[2]) - now
      if dw <= 0 then due_now = true end
      if w < 0 or dw < w then w = dw end
    end
  end
  if not due_now then return {w, 3, 0} end
end
local msg_prefix, ready_prefix = ARGV[5], ARGV[6]
local retention = tonumber(ARGV[12])
local expired_ids = {}
local function expire(mk, id)
  set_status(mk, 'expired')
  redis.call('HSET', mk, 'updated', now)
  redis.call('HDEL', mk, 'token')
  history(mk, 'expired', now, 'gateway')
  redis.call('PEXPIRE', mk, retention)
  redis.call('ZREM', KEYS[3], id)
  redis.call('ZREM', KEYS[9], id)
  table.insert(expired_ids, id)
end
local function past_validity(v)
  return v and tonumber(v) <= now
end

-- Other lanes of the sender that this claim gave work to: their workers are woken.
local woken = {}
local function wake_other(lane)
  if lane ~= ARGV[1] and not woken[lane] then
    woken[lane] = true
    wake(KEYS[3], lane)
  end
end
local due = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, 512)
for i = #due, 1, -1 do
  local id = due[i]
  redis.call('ZREM', KEYS[3], id)
  local mk = msg_prefix .. id
  local lane = redis.call('HGET', mk, 'lane')
  local st = redis.call('HGET', mk, 'status')
  if lane and st == 'queued' then
    redis.call('RPUSH', ready_of(ready_prefix, mk, lane), id)
    wake_other(lane)
  end
end
local leases = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 512)
for i = #leases, 1, -1 do
  local id = leases[i]
  redis.call('ZREM', KEYS[2], id)
  local mk = msg_prefix .. id
  if redis.call('HGET', mk, 'status') == 'sending' then
    local lane = redis.call('HGET', mk, 'lane')
    set_status(mk, 'queued')
    redis.call('HSET', mk, 'redeliver', 1, 'updated', now)
    redis.call('HDEL', mk, 'token')
    redis.call('RPUSH', ready_of(ready_prefix, mk, lane), id)
    wake_other(lane)
  end
end
local ended = redis.call('ZRANGEBYSCORE', KEYS[9], '-inf', now, 'LIMIT', 0, 512)
for _, id in ipairs(ended) do
  local mk = msg_prefix .. id
  local st = redis.call('HGET', mk, 'status')
  if st == 'queued' then
    expire(mk, id)
  elseif st == 'sending' then
    -- With a worker: looked at again when its lease ends, in case it comes back unsent.
    local lease = tonumber(redis.call('ZSCORE', KEYS[2], id) or '0')
    redis.call('ZADD', KEYS[9], math.max(lease, now + 1000), id)
  else
    redis.call('ZREM', KEYS[9], id)
  end
end

local function next_wait()
  local w = -1
  for _, k in ipairs({KEYS[3], KEYS[2], KEYS[9]}) do
    local d = redis.call('ZRANGE', k, 0, 0, 'WITHSCORES')
    if d[2] then
      local dw = math.max(0, tonumber(d[2]) - now)
      if w < 0 or dw < w then w = dw end
    end
  end
  return w
end
local function reply(wait, reason, claimed)
  local out = {wait, reason, #expired_ids}
  for _, id in ipairs(expired_ids) do table.insert(out, id) end
  for _, v in ipairs(claimed or {}) do table.insert(out, v) end
  return out
end

if redis.call('EXISTS', KEYS[10]) == 1 then return reply(next_wait(), 1) end
local paused = redis.call('PTTL', KEYS[4])
if paused > 0 then return reply(paused, 1) end

-- GCRA: `burst` messages may go at once, then one per interval; so any window of length W holds
-- at most burst + W / interval of them.
local interval = tonumber(ARGV[7])
local tolerance = interval * math.max(0, tonumber(ARGV[8]) - 1)
local tat = tonumber(redis.call('GET', KEYS[5]) or '0')
if tat < now then tat = now end

-- Smooth weighted round robin over the classes that hold work: each pick adds every waiting
-- class's weight to its credit and takes the class with the most, which then pays the sum. With
-- several classes waiting, each gets its weight's share of the sends, in an even interleave.
local lists = {KEYS[6], KEYS[1], KEYS[7]}
local classes = {':high', '', ':bulk'}
local weights = {tonumber(ARGV[9]), tonumber(ARGV[10]), tonumber(ARGV[11])}
local credit = {0, 0, 0}
local saved = redis.call('GET', KEYS[8])
if saved then
  local i = 1
  for v in string.gmatch(saved, '[^,]+') do credit[i] = tonumber(v) or 0; i = i + 1 end
end
-- The lists' lengths, read once: nothing else changes them while the script runs.
local lens = {redis.call('LLEN', lists[1]), redis.call('LLEN', lists[2]), redis.call('LLEN', lists[3])}
local function pick()
  local total, best = 0, nil
  for i = 1, 3 do
    if lens[i] > 0 then
      credit[i] = credit[i] + weights[i]
      total = total + weights[i]
      if not best or credit[i] > credit[best] then best = i end
    end
  end
  if best then credit[best] = credit[best] - total end
  return best
end

local claimed_items = {}
local leased = {}
local reason, wait = 0, 0
local max = tonumber(ARGV[3])
local lease_until = now + tonumber(ARGV[2])
local claimed = 0
local picks = 0
while claimed < max do
  if tat - now > tolerance then
    wait = math.ceil(tat - now - tolerance)
    reason = 2
    break
  end
  local class = pick()
  if not class then break end
  picks = picks + 1
  local id = redis.call('RPOP', lists[class])
  lens[class] = lens[class] - 1
  local mk = msg_prefix .. id
  local f = redis.call('HMGET', mk, 'status', 'body', 'attempt', 'redeliver', 'exp', 'claims')
  if f[1] == 'queued' and past_validity(f[5]) then
    expire(mk, id)
  elseif f[1] == 'queued' then
    local claims = (tonumber(f[6]) or 0) + 1
    local token = ARGV[4] .. ':' .. claims
    -- `sending` stays in the `queued` search index (`status_index`): only the field changes.
    redis.call('HSET', mk, 'status', 'sending', 'token', token, 'updated', now, 'claims', claims)
    leased[#leased + 1] = lease_until
    leased[#leased + 1] = id
    tat = tat + interval
    claimed = claimed + 1
    table.insert(claimed_items, id)
    table.insert(claimed_items, token)
    table.insert(claimed_items, f[2])
    table.insert(claimed_items, f[3] or '0')
    table.insert(claimed_items, f[4] or '0')
    table.insert(claimed_items, classes[class])
  end
end
if claimed > 0 then
  redis.call('ZADD', KEYS[2], unpack(leased))
  redis.call('SET', KEYS[5], tostring(tat), 'PX', math.ceil(tat - now + tolerance + 1000))
end
if picks > 0 then
  redis.call('SET', KEYS[8], credit[1] .. ',' .. credit[2] .. ',' .. credit[3], 'PX', 60000)
end
if reason == 0 and lens[1] + lens[2] + lens[3] == 0 then
  wait = next_wait()
  reason = 3
end
return reply(wait, reason, claimed_items)
"#,
    )
}

/// The provider accepted these messages: the answers one sender's sends got back while the
/// previous batch was being recorded, in one script call.
///
/// KEYS: lease set, reconciliation set, validity set (all of one sender). ARGV: the sender's key
/// tag, retention ms, then 7 per message: id, token, provider, provider message id, attempt
/// JSON, lane, reconcile (1: poll this message's status if no news comes).
/// Returns, in order, 1 for each recorded message, or 0 where the token no longer holds the lease
/// (another worker owns the message).
pub fn submitted() -> Script {
    script(
        r#"
local base, rt = ARGV[1], tonumber(ARGV[2])
local nows = tostring(now)
local out = {}
-- The batch's writes to shared keys, made once each after the loop.
local ended, reconcile, left_ix, submitted_ix, keep_to, keep_batch = {}, {}, {}, {}, {}, {}
for i = 3, #ARGV, 7 do
  local id, provider = ARGV[i], ARGV[i + 2]
  local mk = base .. ':m:' .. id
  -- Everything the transition reads, in one call; then one write of every field.
  local f = redis.call('HMGET', mk, 'token', 'status', 'sx', 'created', 'to', 'rt', 'attempts', 'history',
    'attempt', 'batch')
  if f[1] ~= ARGV[i + 1] then
    out[#out + 1] = 0
  else
    ended[#ended + 1] = id
    redis.call('HDEL', mk, 'token', 'error')
    if ARGV[i + 6] == '1' then
      reconcile[#reconcile + 1] = nows
      reconcile[#reconcile + 1] = id
    end
    local item = '{"status":"submitted","at":' .. nows .. ',"source":"' .. provider .. '"}'
    local attempts, hist = ARGV[i + 4], item
    if f[7] and f[7] ~= '' then attempts = f[7] .. ',' .. attempts end
    if f[8] and f[8] ~= '' then hist = f[8] .. ',' .. item end
    redis.call('HSET', mk, 'status', 'submitted', 'attempts', attempts, 'attempt', (tonumber(f[9]) or 0) + 1,
      'provider', provider, 'pmid', ARGV[i + 3], 'lane', ARGV[i + 5], 'updated', nows, 'submitted_at', nows,
      'history', hist)
    -- The search indexes, as `set_status` keeps them.
    local to, trt = search_fields(f[3], f[5], f[6])
    local old = f[2] and status_index(f[2])
    if to and old ~= 'submitted' then
      if old then push(left_ix, old, id) end
      push(submitted_ix, trt, f[4], id)
      keep_to[to] = trt
      if f[10] then keep_batch[f[10]] = trt end
    end
    redis.call('PEXPIRE', mk, rt)
    out[#out + 1] = 1
  end
end
if #ended > 0 then
  redis.call('ZREM', KEYS[1], unpack(ended))
  redis.call('ZREM', KEYS[3], unpack(ended))
end
if #reconcile > 0 then redis.call('ZADD', KEYS[2], unpack(reconcile)) end
for st, ids in pairs(left_ix) do redis.call('ZREM', base .. ':ix:st:' .. st, unpack(ids)) end
for trt, ix in pairs(submitted_ix) do index_many(base .. ':ix:st:submitted', ix, now, trt) end
-- With a provider: the record now has a TTL, and its indexes last as long.
for to, trt in pairs(keep_to) do redis.call('PEXPIRE', base .. ':ix:to:' .. to, trt) end
for b, trt in pairs(keep_batch) do redis.call('PEXPIRE', base .. ':b:' .. b, trt) end
return out
"#,
    )
}

/// The message failed for good.
///
/// KEYS: message, lease set, dead-letter set, validity set. ARGV: id, token, error JSON, attempt JSON, retention
/// ms, dead-letter (1/0), dead-letter cap, source, message key prefix. Dead letters pushed out by the
/// cap lose their records too.
/// Returns 1, or 0 when the token no longer holds the lease.
pub fn failed() -> Script {
    script(
        r#"
if not fenced(KEYS[1], KEYS[2], ARGV[1], ARGV[2]) then return 0 end
append(KEYS[1], 'attempts', ARGV[4])
redis.call('HINCRBY', KEYS[1], 'attempt', 1)
set_status(KEYS[1], 'failed')
redis.call('HSET', KEYS[1], 'error', ARGV[3], 'updated', now)
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
redis.call('ZREM', KEYS[4], ARGV[1])
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
set_status(KEYS[1], 'queued')
redis.call('HSET', KEYS[1], 'error', ARGV[3], 'updated', now)
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[5]), ARGV[1])
wake(KEYS[1], redis.call('HGET', KEYS[1], 'lane'))
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
set_status(KEYS[1], 'queued')
redis.call('HSET', KEYS[1], 'updated', now)
redis.call('RPUSH', KEYS[3], ARGV[1])
local pause = tonumber(ARGV[4])
if redis.call('PTTL', KEYS[4]) < pause then
  redis.call('SET', KEYS[4], now + pause, 'PX', pause)
end
wake(KEYS[1], redis.call('HGET', KEYS[1], 'lane'))
return 1
"#,
    )
}

/// Extends a claim's lease while its send is in flight. A claim whose token no longer holds the
/// message (its lease ran out and the message was claimed again, or its outcome is recorded) is
/// not extended: the lease has moved on.
///
/// KEYS: message, lease set. ARGV: id, token, lease ms.
/// Returns 1, or 0 when the token no longer holds the lease.
pub fn renew() -> Script {
    script(
        r#"
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[2] then return 0 end
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[1])
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
set_status(KEYS[1], 'queued')
redis.call('HSET', KEYS[1], 'updated', now)
redis.call('RPUSH', KEYS[3], ARGV[1])
wake(KEYS[1], redis.call('HGET', KEYS[1], 'lane'))
return 1
"#,
    )
}

/// Cancels a message that has not been handed to a provider.
///
/// KEYS: message, delayed set, validity set. ARGV: id, retention ms.
/// Returns `{1}` when cancelled, `{0, status}` when it cannot be (or `{0}` when it does not exist).
/// A cancelled id may stay in its lane's FIFO: the claim script skips anything not `queued`.
pub fn cancel() -> Script {
    script(
        r#"
local st = redis.call('HGET', KEYS[1], 'status')
if not st then return {0} end
if st ~= 'queued' then return {0, st} end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
set_status(KEYS[1], 'cancelled')
redis.call('HSET', KEYS[1], 'updated', now)
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
set_status(KEYS[1], 'queued')
redis.call('HSET', KEYS[1], 'attempt', 0, 'updated', now)
redis.call('HDEL', KEYS[1], 'error', 'redeliver')
history(KEYS[1], 'queued', now, 'replay')
redis.call('RPUSH', ready_of(ARGV[2], KEYS[1], lane), ARGV[1])
wake(KEYS[1], lane)
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
set_status(KEYS[1], 'queued')
redis.call('HSET', KEYS[1], 'lane', ARGV[3], 'attempt', 0, 'updated', now)
redis.call('RPUSH', KEYS[3], ARGV[1])
wake(KEYS[1], ARGV[3])
return 1
"#,
    )
}

/// Applies a status a provider reported. The status rule itself lives in gateway-core; the caller
/// passes the statuses from which the reported one advances, so this script only applies it.
///
/// A report about an attempt a reported failure already replaced (its id is in `superseded` and
/// not the current `pmid`) is stale: a late `delivered` for the first send must not move the
/// second.
///
/// KEYS: message, reconciliation set. ARGV: reported status, at (ms, provider's time or 0 for now),
/// source, error JSON (or empty), statuses it advances from (`|a|b|`), retention ms, done (1: no
/// more reconciliation polls are needed), the report's ids (`|a|b|`).
/// Returns `{outcome, previous status, created ms, chain link}`, outcome one of `missing`, `stale`,
/// `duplicate`, `advanced`, `history`; the chain link is empty for a message in no fallback chain.
pub fn apply_report() -> Script {
    script(
        r#"
local f = redis.call('HMGET', KEYS[1], 'status', 'pmid', 'superseded')
local st = f[1]
if not st then return {'missing', '', 0, ''} end
local created = tonumber(redis.call('HGET', KEYS[1], 'created') or '0')
if f[3] and not (f[2] and string.find(ARGV[8], '|' .. f[2] .. '|', 1, true)) then
  for rid in string.gmatch(ARGV[8], '[^|]+') do
    if string.find(f[3], '|' .. rid .. '|', 1, true) then return {'stale', st, created, ''} end
  end
end
local seen = redis.call('HGET', KEYS[1], 'seen') or '|'
if string.find(seen, '|' .. ARGV[1] .. '|', 1, true) then return {'duplicate', st, created, ''} end
redis.call('HSET', KEYS[1], 'seen', seen .. ARGV[1] .. '|')
local at = tonumber(ARGV[2])
if at <= 0 then at = now end
history(KEYS[1], ARGV[1], at, ARGV[3])
local outcome = 'history'
if string.find(ARGV[5], '|' .. st .. '|', 1, true) then
  set_status(KEYS[1], ARGV[1])
  redis.call('HSET', KEYS[1], 'updated', now)
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

/// A provider reported by callback that a message it had accepted failed, for a reason worth
/// another attempt: the message is queued again as the retry policy decided, its history keeping
/// the failure, and the failed attempt's provider id is kept in `superseded` (see
/// `apply_report`). Fenced on the status, the provider id and the attempt count the decision was
/// made from, so a late or repeated report cannot queue it twice.
///
/// KEYS: message, delayed set, reconciliation set.
/// ARGV: accepted provider ids (`|a|b|`), at ms (0: now), source, error JSON, mode (`retry`: after
/// the delay, the attempt spent; `wait`: after the delay, the attempt not spent; `failover`: at
/// the front of the next lane), the attempt count decided on, next lane (or empty), delay ms, id,
/// ready list key prefix (the next lane's list, for the message's priority class, is built from
/// it).
/// Returns `retry`, `failover` or `skip` (the message is not waiting on that send).
pub fn reopen() -> Script {
    script(
        r#"
local f = redis.call('HMGET', KEYS[1], 'status', 'pmid', 'attempt')
if f[1] ~= 'submitted' and f[1] ~= 'sent' then return 'skip' end
if not f[2] or not string.find(ARGV[1], '|' .. f[2] .. '|', 1, true) then return 'skip' end
if tonumber(f[3] or '0') ~= tonumber(ARGV[6]) then return 'skip' end
local mode = ARGV[5]
if mode == 'wait' then
  redis.call('HINCRBY', KEYS[1], 'attempt', -1)
  mode = 'retry'
end
local at = tonumber(ARGV[2])
if at <= 0 then at = now end
history(KEYS[1], 'failed', at, ARGV[3])
set_status(KEYS[1], 'queued')
local superseded = redis.call('HGET', KEYS[1], 'superseded') or '|'
redis.call('HSET', KEYS[1], 'error', ARGV[4], 'updated', now, 'superseded', superseded .. f[2] .. '|')
redis.call('HDEL', KEYS[1], 'seen')
redis.call('PERSIST', KEYS[1])
redis.call('ZREM', KEYS[3], ARGV[9])
if mode == 'retry' then
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[8]), ARGV[9])
else
  redis.call('HSET', KEYS[1], 'lane', ARGV[7], 'attempt', 0)
  redis.call('RPUSH', ready_of(ARGV[10], KEYS[1], ARGV[7]), ARGV[9])
end
wake(KEYS[1], redis.call('HGET', KEYS[1], 'lane'))
return mode
"#,
    )
}

/// Takes every report buffered for a provider message id (they came before the send's answer).
///
/// KEYS: buffer list, buffer index. Returns the reports.
pub fn drain() -> Script {
    Script::new(
        r#"
local items = redis.call('LRANGE', KEYS[1], 0, -1)
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], KEYS[1])
return items
"#,
    )
}

/// Keeps a status report for a provider message id we do not know yet, within the buffer's
/// bounds: each id keeps its newest `per id` reports, the index forgets ids whose TTL passed, and
/// beyond `cap` ids the ids written longest ago are deleted with their reports. A flood of made-up
/// ids thus only pushes out older entries, while a real early report lives for milliseconds.
///
/// KEYS: buffer list, buffer index (same hash tag). ARGV: report, TTL ms, cap (ids), per id.
/// Returns the number of reports dropped to stay within the bounds.
pub fn buffer_report() -> Script {
    Script::new(
        r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
local cap = tonumber(ARGV[3])
local per_id = tonumber(ARGV[4])
local dropped = 0
local n = redis.call('RPUSH', KEYS[1], ARGV[1])
if n > per_id then
  redis.call('LTRIM', KEYS[1], -per_id, -1)
  dropped = dropped + n - per_id
end
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('ZADD', KEYS[2], now, KEYS[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - ttl)
-- At most 1000 evictions a call, so a lowered cap is reached over several calls.
local over = math.min(redis.call('ZCARD', KEYS[2]) - cap, 1000)
if over > 0 then
  local oldest = redis.call('ZPOPMIN', KEYS[2], over)
  for i = 1, #oldest, 2 do
    dropped = dropped + redis.call('LLEN', oldest[i])
    redis.call('DEL', oldest[i])
  end
end
redis.call('PEXPIRE', KEYS[2], ttl)
return dropped
"#,
    )
}

/// Cancels every message of one campaign on one sender that has not been handed to a provider,
/// atomically: once it returns, no claim on any instance can take one of them.
///
/// KEYS: campaign member set, delayed set, validity set. ARGV: message key prefix, retention ms.
/// Returns `{cancelled now, then every member's status after the call, ...}` as
/// `{n_cancelled_now, id..., status, count, status, count, ...}`.
pub fn cancel_batch() -> Script {
    script(
        r#"
local ids = redis.call('ZRANGE', KEYS[1], 0, -1)
local now_cancelled = {}
local counts = {}
for _, id in ipairs(ids) do
  local mk = ARGV[1] .. id
  local st = redis.call('HGET', mk, 'status')
  if st == 'queued' then
    redis.call('ZREM', KEYS[2], id)
    redis.call('ZREM', KEYS[3], id)
    set_status(mk, 'cancelled')
    redis.call('HSET', mk, 'updated', now)
    history(mk, 'cancelled', now, 'api')
    redis.call('PEXPIRE', mk, ARGV[2])
    table.insert(now_cancelled, id)
    st = 'cancelled'
  end
  if st then counts[st] = (counts[st] or 0) + 1 end
end
if #now_cancelled > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
local out = {#now_cancelled}
for _, id in ipairs(now_cancelled) do table.insert(out, id) end
for st, n in pairs(counts) do
  table.insert(out, st)
  table.insert(out, n)
end
return out
"#,
    )
}

/// Takes the chains whose timer is due, and sets each one's timer `lease` ms ahead: an instance
/// that dies while checking one leaves it to be checked again then.
///
/// KEYS: fallback wait set. ARGV: max, lease ms. Returns `{ms until the earliest timer left
/// (-1: none), first message id...}`.
pub fn fallback_due() -> Script {
    script(
        r#"
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
for _, id in ipairs(ids) do redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), id) end
-- Other instances check these again when this one's lease on them ends, should it die.
if #ids > 0 then wake_chains(KEYS[1]) end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local next_ms = -1
if first[2] then next_ms = math.max(0, tonumber(first[2]) - now) end
table.insert(ids, 1, next_ms)
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
wake_chains(KEYS[2])
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
  wake_chains(KEYS[2])
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
wake_chains(KEYS[2])
return 1
"#,
    )
}

/// Counts the statuses of one campaign's messages on one sender.
///
/// KEYS: campaign member set. ARGV: message key prefix. Returns `{status, count, ...}`.
pub fn batch_counts() -> Script {
    Script::new(
        r#"
local counts = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local st = redis.call('HGET', ARGV[1] .. id, 'status')
  if st then counts[st] = (counts[st] or 0) + 1 end
end
local out = {}
for st, n in pairs(counts) do
  table.insert(out, st)
  table.insert(out, n)
end
return out
"#,
    )
}
