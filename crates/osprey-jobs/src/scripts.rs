//! Lua scripts: every multi-key change to a job runs as one script, so it is
//! atomic (and replicated to the AOF as one transaction).
//!
//! Scripts answer with a status word rather than an error, so the Rust side
//! never has to parse error text.

/// Ends a sealed job whose chunks have all been counted: `failed` when any
/// chunk was dead-lettered, `completed` otherwise; then starts the retention
/// clock on its keys. Prepended to the scripts that can finish a job.
const FINISH_IF_DONE: &str = r#"
local function finish_if_done(job, done, now, ret)
  local h = redis.call('HMGET', job, 'sealed', 'state', 'chunks_total', 'chunks_done', 'chunks_dead', 'chunks_skipped')
  if h[1] ~= '1' then return 0 end
  local st = h[2]
  if st == 'completed' or st == 'failed' or st == 'cancelled' then return 0 end
  local dead = tonumber(h[5] or '0')
  if tonumber(h[4] or '0') + dead + tonumber(h[6] or '0') < tonumber(h[3] or '0') then return 0 end
  local final = 'completed'
  if dead > 0 then final = 'failed' end
  redis.call('HSET', job, 'state', final, 'finished_at', now)
  redis.call('PEXPIRE', job, ret)
  redis.call('PEXPIRE', done, ret)
  return 1
end
"#;

/// KEYS: job hash, jobs zset. ARGV: id, created_at, job key prefix, then
/// field/value pairs. Also drops up to ten of the oldest listing entries
/// whose job has expired, so the listing does not grow without bound.
const CREATE: &str = r#"
local fields = {}
for i = 4, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
local old = redis.call('ZRANGE', KEYS[2], 0, 9)
for _, id in ipairs(old) do
  if redis.call('EXISTS', ARGV[3] .. id) == 0 then redis.call('ZREM', KEYS[2], id) end
end
return 'ok'
"#;

/// KEYS: job hash, stream, done set. ARGV: id, max_posts, posts in this and
/// the following batches of the same append (checked against the limit),
/// now, retention ms, number of chunks, then (posts, payload) per chunk.
/// Returns {status, detail...}.
const APPEND: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return {'notfound'} end
local h = redis.call('HMGET', KEYS[1], 'state', 'sealed', 'total', 'chunks_total', 'expected')
if h[1] == 'cancelled' then return {'cancelled'} end
if h[2] == '1' then return {'sealed'} end
local total = tonumber(h[3] or '0')
local limit = tonumber(ARGV[2])
local expected = nil
if h[5] and h[5] ~= '' then
  expected = tonumber(h[5])
  if expected < limit then limit = expected end
end
if total + tonumber(ARGV[3]) > limit then
  return {'toolarge', tostring(total + tonumber(ARGV[3])), tostring(limit)}
end
local first = tonumber(h[4] or '0')
local k = tonumber(ARGV[6])
local added = 0
for i = 1, k do
  local n = ARGV[5 + 2 * i]
  redis.call('XADD', KEYS[2], '*', 'job', ARGV[1], 'chunk', tostring(first + i - 1), 'n', n, 'posts', ARGV[6 + 2 * i])
  added = added + tonumber(n)
end
redis.call('HINCRBY', KEYS[1], 'chunks_total', k)
redis.call('HINCRBY', KEYS[1], 'total', added)
if expected and total + added >= expected then
  redis.call('HSET', KEYS[1], 'sealed', '1')
  finish_if_done(KEYS[1], KEYS[3], ARGV[4], ARGV[5])
end
return {'ok'}
"#;

/// KEYS: job hash, done set. ARGV: now, retention ms.
const SEAL: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return 'notfound' end
if redis.call('HGET', KEYS[1], 'state') == 'cancelled' then return 'cancelled' end
redis.call('HSET', KEYS[1], 'sealed', '1')
finish_if_done(KEYS[1], KEYS[2], ARGV[1], ARGV[2])
return 'ok'
"#;

/// KEYS: job hash, done set. ARGV: now, retention ms.
const CANCEL: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return 'notfound' end
local st = redis.call('HGET', KEYS[1], 'state')
if st == 'completed' or st == 'failed' or st == 'cancelled' then return 'finished' end
redis.call('HSET', KEYS[1], 'state', 'cancelled', 'finished_at', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return 'ok'
"#;

/// KEYS: job hash, done set. ARGV: chunk, now. Returns {'run', options} or
/// {reason} for a chunk to acknowledge without processing.
const BEGIN: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return {'gone'} end
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then return {'counted'} end
local st = redis.call('HGET', KEYS[1], 'state')
if st == 'cancelled' then return {'cancelled'} end
if st == 'queued' then redis.call('HSET', KEYS[1], 'state', 'running') end
redis.call('HSETNX', KEYS[1], 'started_at', ARGV[2])
return {'run', redis.call('HGET', KEYS[1], 'options') or 'null'}
"#;

/// Counts a chunk once (the done set makes a redelivered chunk count
/// nothing), dead-letters it when asked, and acknowledges and deletes the
/// message, all at once.
///
/// KEYS: job hash, done set, stream, dead stream. ARGV: group, message id,
/// chunk, outcome (done|dead|skip), posts, stored, rejected, now, retention
/// ms, reason, deliveries, consumer, job id ('' when undecodable), dead cap.
/// Returns 1 when this call counted the chunk.
const FINISH: &str = r#"
local job, done, stream, dead = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local msg, chunk, outcome = ARGV[2], ARGV[3], ARGV[4]
local n = tonumber(ARGV[5])
local entry = nil
if outcome == 'dead' then
  local r = redis.call('XRANGE', stream, msg, msg)
  if r[1] then entry = r[1][2] end
end
local counted = 0
if ARGV[13] ~= '' and chunk ~= '' and redis.call('EXISTS', job) == 1 then
  if redis.call('SADD', done, chunk) == 1 then
    counted = 1
    if outcome == 'done' then
      redis.call('HINCRBY', job, 'chunks_done', 1)
      redis.call('HINCRBY', job, 'done', n)
      redis.call('HINCRBY', job, 'stored', tonumber(ARGV[6]))
      redis.call('HINCRBY', job, 'rejected', tonumber(ARGV[7]))
    elseif outcome == 'dead' then
      redis.call('HINCRBY', job, 'chunks_dead', 1)
      redis.call('HINCRBY', job, 'failed', n)
      redis.call('HSET', job, 'last_error', ARGV[10])
    else
      redis.call('HINCRBY', job, 'chunks_skipped', 1)
      redis.call('HINCRBY', job, 'skipped', n)
    end
    local ttl = redis.call('PTTL', job)
    if ttl > 0 then redis.call('PEXPIRE', done, ttl) end
    finish_if_done(job, done, ARGV[8], ARGV[9])
  end
end
if outcome == 'dead' and (counted == 1 or ARGV[13] == '') then
  local args = {'XADD', dead, 'MAXLEN', '~', ARGV[14], '*'}
  if entry then
    for _, v in ipairs(entry) do args[#args + 1] = v end
  end
  local extra = {'reason', ARGV[10], 'deliveries', ARGV[11], 'consumer', ARGV[12], 'dead_at', ARGV[8], 'msg_id', msg}
  for _, v in ipairs(extra) do args[#args + 1] = v end
  redis.call(unpack(args))
end
redis.call('XACK', stream, ARGV[1], msg)
redis.call('XDEL', stream, msg)
return counted
"#;

/// KEYS: job hash. ARGV: error.
pub(crate) const NOTE_ERROR: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], 'last_error', ARGV[1]) end
return 'ok'
"#;

/// Claims (again) the messages this consumer still owns, resetting their
/// idle time; a message another worker has taken over is left alone.
/// `XCLAIM ... JUSTID` does not count a delivery.
/// KEYS: stream. ARGV: group, consumer, ids... Returns the ids still owned.
pub(crate) const EXTEND: &str = r#"
local kept = {}
for i = 3, #ARGV do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if p[1] and p[1][2] == ARGV[2] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
    kept[#kept + 1] = ARGV[i]
  end
end
return kept
"#;

/// Hands unstarted messages back: still pending, but idle for long enough
/// that the next `XAUTOCLAIM` takes them, with the delivery they had not
/// used taken off their count.
/// KEYS: stream. ARGV: group, consumer, idle ms, then (id, deliveries) pairs.
pub(crate) const RELEASE: &str = r#"
local n = 0
for i = 4, #ARGV, 2 do
  local id = ARGV[i]
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], id, id, 1)
  if p[1] and p[1][2] == ARGV[2] then
    local count = tonumber(p[1][4]) - 1
    if count < 0 then count = 0 end
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, id, 'IDLE', ARGV[3], 'RETRYCOUNT', count, 'JUSTID')
    n = n + 1
  end
end
return n
"#;

/// `XAUTOCLAIM`, with each claimed message's delivery count (which
/// `XAUTOCLAIM` raised) and its fields in a fixed order.
/// KEYS: stream. ARGV: group, consumer, min idle ms, cursor, count.
/// Returns {next cursor, {{id, deliveries, job, chunk, n, posts}...}}.
pub(crate) const RECLAIM: &str = r#"
local r = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4], 'COUNT', ARGV[5])
local out = {}
for _, e in ipairs(r[2]) do
  if e and e[2] then
    local f = {}
    for j = 1, #e[2], 2 do f[e[2][j]] = e[2][j + 1] end
    local p = redis.call('XPENDING', KEYS[1], ARGV[1], e[1], e[1], 1)
    local count = 1
    if p[1] then count = p[1][4] end
    out[#out + 1] = {e[1], count, f['job'] or '', f['chunk'] or '', f['n'] or '0', f['posts'] or ''}
  end
end
return {r[1], out}
"#;

/// Deletes consumers idle for longer than ARGV[2] ms that hold no pending
/// message (checked in the same script, so none can be lost in between).
/// KEYS: stream. ARGV: group, idle ms, a consumer never to delete.
pub(crate) const PRUNE_CONSUMERS: &str = r#"
local cs = redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])
local n = 0
for _, c in ipairs(cs) do
  local f = {}
  for j = 1, #c, 2 do f[c[j]] = c[j + 1] end
  if f['name'] ~= ARGV[3] and tonumber(f['pending']) == 0 and tonumber(f['idle']) > tonumber(ARGV[2]) then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], f['name'])
    n = n + 1
  end
end
return n
"#;

pub(crate) fn create() -> String {
    CREATE.to_string()
}

pub(crate) fn append() -> String {
    format!("{FINISH_IF_DONE}{APPEND}")
}

pub(crate) fn seal() -> String {
    format!("{FINISH_IF_DONE}{SEAL}")
}

pub(crate) fn cancel() -> String {
    CANCEL.to_string()
}

pub(crate) fn begin() -> String {
    BEGIN.to_string()
}

pub(crate) fn finish() -> String {
    format!("{FINISH_IF_DONE}{FINISH}")
}
