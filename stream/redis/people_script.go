package redis

// Who is online lives beside the count, in keys of its own under the same
// prefix, so that the count's keys and scripts stay as they are:
//
//   - <prefix>:people, a hash from person ID (GitHub's id) to that
//     person's streams on every live instance: the number the people
//     count, /api/presence and a per-user limit across instances read;
//   - <prefix>:people:at:<instance>, a hash from person ID to that
//     person's streams on one instance (plus a field "_" so that it exists
//     while empty): what is taken out of <prefix>:people when the
//     instance leaves or is found dead;
//   - <prefix>:people:instances, the set of instances with such a hash;
//   - <prefix>:people:profiles, a hash from person ID to their public
//     profile (JSON [login, name, avatar URL]), readable by every instance;
//   - <prefix>:people:since, a sorted set from person ID to an arrival
//     number: the order of /api/presence;
//   - <prefix>:people:log, a sorted set from person ID to the version at
//     which their global count last changed, so an instance reads only
//     what changed since the version it knows;
//   - <prefix>:people:gone, a sorted set from person ID to the Redis time
//     (ms) their global count fell to zero; one who comes back before the
//     purge keeps their place, and after purgeAfter they are forgotten;
//   - <prefix>:people:meta, a hash with the version, the arrival sequence
//     and the floor: the newest version purged from the log (an instance
//     that knows an older version reads everything).
//
// Liveness is the count's: an instance is dead once its deadline in
// <prefix>:deadlines has passed or is gone (the count's own script drops
// it), and the first script run after that by any live instance takes its
// people out. Every script that changes a global count publishes this
// instance's ID on the count's change channel, as the count does.
//
// The per-user limit across instances checks <prefix>:people in the same
// script that records a new stream in <prefix>:people:at:<instance>
// (mode "acquire"), so check and reservation are one atomic step.

// peopleScript brings the people up to date and answers what changed.
//
// KEYS: people, profiles, since, log, gone, meta, instances, deadlines,
// this instance's hash.
// ARGV: mode ("store", "acquire", "refresh" or "leave"), instance ID, all
// (1: the changes are this instance's whole share), since (the version the
// caller knows), the hash key prefix of instances ("<prefix>:people:at:"),
// TTL of an instance in ms, purgeAfter in ms, change channel, "1" for
// sharded Pub/Sub, then (store) triples of person ID, streams here,
// profile JSON; (acquire) the limit, the person, their streams here with
// the new one, their profile, then (with all) the instance's whole share
// as triples.
//
// Reply for store: version, full (1/0), resend (1/0), then quadruples of
// person ID, global streams, arrival number, profile; for acquire:
// version, admitted (1, 0, or 2: send the share with all); for refresh and
// leave: version, changed (1/0).
const peopleScript = `
local people, profiles, since_z, log, gone, meta, instances, deadlines, mine =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9]
local mode, id, all, since = ARGV[1], ARGV[2], ARGV[3] == '1', tonumber(ARGV[4])
local atPrefix, ttl, purge, channel = ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7]), ARGV[8]
local sharded = ARGV[9] == '1'

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local changed, any = {}, false

local function bump(pid, delta)
  if delta == 0 then return end
  local n = redis.call('HINCRBY', people, pid, delta)
  if n <= 0 then
    redis.call('HDEL', people, pid)
    redis.call('ZADD', gone, now, pid)
  elseif n == delta then
    redis.call('ZREM', gone, pid)
    if not redis.call('ZSCORE', since_z, pid) then
      redis.call('ZADD', since_z, redis.call('HINCRBY', meta, 'seq', 1), pid)
    end
  end
  changed[pid], any = true, true
end

local function drop(key)
  local kv = redis.call('HGETALL', key)
  for i = 1, #kv, 2 do
    if kv[i] ~= '_' then bump(kv[i], -tonumber(kv[i + 1])) end
  end
  redis.call('DEL', key)
end

-- Instances whose deadline passed (or was dropped) leave with their people.
for _, inst in ipairs(redis.call('SMEMBERS', instances)) do
  if inst ~= id then
    local dl = redis.call('ZSCORE', deadlines, inst)
    if not dl or tonumber(dl) < now then
      drop(atPrefix .. inst)
      redis.call('SREM', instances, inst)
    end
  end
end

local function apply(pid, n, prof)
  local old = tonumber(redis.call('HGET', mine, pid) or '0')
  if n > 0 then
    redis.call('HSET', mine, pid, n)
    redis.call('HSET', profiles, pid, prof)
  else
    redis.call('HDEL', mine, pid)
  end
  bump(pid, n - old)
end

local function claim()
  if all then drop(mine) end
  redis.call('HSET', mine, '_', 1)
  redis.call('SADD', instances, id)
end

local resend, admitted = false, 1
if mode == 'acquire' then
  -- The per-user limit: this person's streams on every other live
  -- instance plus n here (this new stream included) may not pass max.
  -- Without its share (new, or taken for dead) the instance is asked for
  -- it (2), and sends it with all set.
  local max, who, n, prof = tonumber(ARGV[10]), ARGV[11], tonumber(ARGV[12]), ARGV[13]
  if all then
    claim()
    for i = 14, #ARGV, 3 do apply(ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2]) end
  end
  if redis.call('EXISTS', mine) == 0 then
    admitted = 2
  else
    local here = tonumber(redis.call('HGET', mine, who) or '0')
    if tonumber(redis.call('HGET', people, who) or '0') - here + n > max then
      admitted = 0
    else
      apply(who, n, prof)
    end
  end
elseif mode == 'leave' then
  drop(mine)
  redis.call('SREM', instances, id)
elseif mode == 'store' then
  if not all and redis.call('EXISTS', mine) == 0 then
    -- This instance was taken for dead: its share is gone, so changes
    -- cannot be applied to it. It sends everything instead.
    resend = true
  else
    claim()
    for i = 10, #ARGV, 3 do apply(ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2]) end
  end
end

local version = tonumber(redis.call('HGET', meta, 'version') or '0')
if any then
  version = redis.call('HINCRBY', meta, 'version', 1)
  for pid in pairs(changed) do redis.call('ZADD', log, version, pid) end
end

-- People gone for purgeAfter are forgotten; the log's floor rises.
local floor = tonumber(redis.call('HGET', meta, 'floor') or '0')
local old_floor = floor
for _, pid in ipairs(redis.call('ZRANGEBYSCORE', gone, '-inf', now - purge)) do
  if not redis.call('HGET', people, pid) then
    local v = tonumber(redis.call('ZSCORE', log, pid) or '0')
    if v > floor then floor = v end
    redis.call('ZREM', since_z, pid)
    redis.call('ZREM', log, pid)
    redis.call('HDEL', profiles, pid)
  end
  redis.call('ZREM', gone, pid)
end
-- Written only when it rose: every run would otherwise be a replicated
-- write, and would bring meta back after everyone left.
if floor ~= old_floor then redis.call('HSET', meta, 'floor', floor) end

-- Every key outlives the last refresh of any instance by two TTLs (and
-- the purge), so a prefix everybody left does not stay for ever.
local expireAt = now + 2 * ttl + purge
for _, k in ipairs({people, profiles, since_z, log, gone, meta, instances}) do
  redis.call('PEXPIREAT', k, expireAt)
end
if mode ~= 'leave' and redis.call('EXISTS', mine) == 1 then
  redis.call('PEXPIREAT', mine, now + 2 * ttl)
end

if any then redis.call(sharded and 'SPUBLISH' or 'PUBLISH', channel, id) end
if mode == 'acquire' then
  return {version, admitted}
end
if mode ~= 'store' then
  return {version, any and 1 or 0}
end

local reply = {version, 0, resend and 1 or 0}
if resend then return reply end
local pids
if all or since == 0 or since < floor then
  reply[2] = 1
  pids = redis.call('HKEYS', people)
else
  pids = redis.call('ZRANGEBYSCORE', log, '(' .. since, '+inf')
end
for _, pid in ipairs(pids) do
  local n = tonumber(redis.call('HGET', people, pid) or '0')
  local prof = ''
  if n > 0 then prof = redis.call('HGET', profiles, pid) or '' end
  local order = redis.call('ZSCORE', since_z, pid) or '0'
  reply[#reply + 1] = pid
  reply[#reply + 1] = n
  reply[#reply + 1] = tonumber(order)
  reply[#reply + 1] = prof
end
return reply
`
