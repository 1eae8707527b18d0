package redis

// The Redis side of the count. Every name starts with the prefix in
// braces, "{headcount}" by default: a Redis Cluster hashes only what is in
// the braces, so every key and channel of one deployment lives in one
// hash slot, on one node, and each script touches one slot.
//
//   - {p}:counts, a hash from instance ID to that instance's local count;
//   - {p}:deadlines, a sorted set from instance ID to the Redis time (in
//     milliseconds) after which the instance counts as dead;
//   - {p}:absent, a hash from instance ID to the Redis time at which its
//     liveness channel was first seen without a subscriber;
//   - {p}:people..., who is online (people_script.go);
//   - {p}:changes, the channel on which a script that changed the sum
//     publishes its instance's ID;
//   - {p}:alive:<id>, a channel nobody publishes on: instance <id>
//     subscribes to it on the same connection as to {p}:changes, so the
//     moment its process dies and the kernel closes that connection,
//     PUBSUB NUMSUB says 0 and the survivors drop it (as nchan does).
//
// Sharded Pub/Sub (SSUBSCRIBE, SPUBLISH, PUBSUB SHARDNUMSUB) is used where
// the server has it (Redis 7, Valkey), plain Pub/Sub otherwise; ARGV says
// which.
//
// Every change runs as one Lua script, so reading the sum, dropping dead
// instances and writing this instance's count are one atomic step and one
// round trip. Deadlines use Redis' own clock (TIME), so instances whose
// clocks disagree still agree on who is dead. Redis 7 replicates a script
// by its effects, which is what allows TIME before writes.
//
// An instance is dead when its deadline has passed (a frozen process, a
// cut network: nothing closed its connection) or when its liveness
// channel has had no subscriber for the grace period (its connection
// closed). The grace lets a live instance whose connection broke
// subscribe again before anyone drops it.

// scriptPrelude is shared by every script.
//
// KEYS: counts hash, deadlines sorted set, absent hash.
// ARGV: instance ID, change channel, liveness channel prefix, "1" for
// sharded Pub/Sub, grace in ms, then the script's own.
const scriptPrelude = `
local counts, deadlines, absent = KEYS[1], KEYS[2], KEYS[3]
local self, channel, alive = ARGV[1], ARGV[2], ARGV[3]
local sharded, grace = ARGV[4] == '1', tonumber(ARGV[5])

local function sum()
  local total = 0
  for _, v in ipairs(redis.call('HVALS', counts)) do
    total = total + tonumber(v)
  end
  return total
end

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function subscribed(id)
  local r = redis.call('PUBSUB', sharded and 'SHARDNUMSUB' or 'NUMSUB', alive .. id)
  return tonumber(r[2]) > 0
end

local function publish()
  redis.call(sharded and 'SPUBLISH' or 'PUBLISH', channel, self)
end

local function forget(id)
  redis.call('HDEL', counts, id)
  redis.call('ZREM', deadlines, id)
  redis.call('HDEL', absent, id)
end

-- reap drops every other dead instance (its people leave with the next
-- run of the people script, which finds its deadline gone) and returns "<id> <why>" for each.
local function reap(now)
  local dropped = {}
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', deadlines, '-inf', now)) do
    if id ~= self then
      forget(id)
      dropped[#dropped + 1] = id .. ' expired'
    end
  end
  for _, id in ipairs(redis.call('HKEYS', counts)) do
    if id ~= self then
      if subscribed(id) then
        if redis.call('HEXISTS', absent, id) == 1 then
          redis.call('HDEL', absent, id)
        end
      else
        local since = redis.call('HGET', absent, id)
        if not since then
          redis.call('HSET', absent, id, now)
        elseif now - tonumber(since) >= grace then
          forget(id)
          dropped[#dropped + 1] = id .. ' disconnected'
        end
      end
    end
  end
  return dropped
end

-- reply is the common answer: the sum, whether this instance is in the
-- count, whether its liveness channel has a subscriber, then what reap said.
local function reply(total, dropped)
  local r = {total, redis.call('HEXISTS', counts, self), subscribed(self) and 1 or 0}
  for _, d in ipairs(dropped) do
    r[#r + 1] = d
  end
  return r
end
`

// storeScript drops dead instances, records this instance's count with a
// fresh deadline and publishes if the sum changed.
//
// ARGV (after the prelude's): local count, instance TTL in ms.
const storeScript = scriptPrelude + `
local n, ttl = ARGV[6], tonumber(ARGV[7])
local now = now_ms()
local before = sum()
local dropped = reap(now)

redis.call('HSET', counts, self, n)
redis.call('ZADD', deadlines, now + ttl, self)

-- The keys outlive the latest deadline by one TTL, so a prefix that every
-- instance has left does not stay in Redis for ever.
local last = redis.call('ZRANGE', deadlines, -1, -1, 'WITHSCORES')
local expireAt = tonumber(last[2]) + ttl
redis.call('PEXPIREAT', counts, expireAt)
redis.call('PEXPIREAT', deadlines, expireAt)
if redis.call('EXISTS', absent) == 1 then
  redis.call('PEXPIREAT', absent, expireAt)
end

local after = sum()
if after ~= before then
  publish()
end
return reply(after, dropped)
`

// reapScript only drops dead instances (publishing if the sum changed):
// the frequent liveness check, which writes nothing while all are well.
const reapScript = scriptPrelude + `
local before = sum()
local dropped = reap(now_ms())
local after = before
if #dropped > 0 then
  after = sum()
  if after ~= before then
    publish()
  end
end
return reply(after, dropped)
`

// removeScript takes this instance out of the count, for a clean
// shutdown, and publishes if the sum changed.
const removeScript = scriptPrelude + `
local before = sum()
forget(self)
if sum() ~= before then
  publish()
end
return 0
`
