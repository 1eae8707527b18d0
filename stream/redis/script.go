package redis

// The Redis side of the count lives in two keys per prefix:
//
//   - <prefix>:counts, a hash from instance ID to that instance's local count;
//   - <prefix>:deadlines, a sorted set from instance ID to the Redis time
//     (in milliseconds) after which the instance counts as dead.
//
// Every change runs as one Lua script, so reading the sum, dropping dead
// instances and writing this instance's count are one atomic step and one
// round trip. Deadlines use Redis' own clock (TIME), so instances whose
// clocks disagree still agree on who is dead. Redis 7 replicates a script
// by its effects, which is what allows TIME before writes.
//
// A script publishes this instance's ID on <prefix>:changes exactly when it
// changed the sum of the hash. Each instance's last known global count is
// the sum after one of its own scripts, so any later change of the sum is
// published after it, and a subscribed instance cannot stay stale.

// storeScript drops every instance whose deadline has passed, records this
// instance's count with a fresh deadline and returns the sum, followed by
// the IDs of the instances it dropped (for the log).
//
// KEYS: counts hash, deadlines sorted set.
// ARGV: instance ID, local count, instance TTL in ms, change channel.
const storeScript = `
local counts, deadlines = KEYS[1], KEYS[2]
local id, n, ttl, channel = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]

local function sum()
  local total = 0
  for _, v in ipairs(redis.call('HVALS', counts)) do
    total = total + tonumber(v)
  end
  return total
end

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local before = sum()

local reply = {0}
local dead = redis.call('ZRANGEBYSCORE', deadlines, '-inf', now)
for _, d in ipairs(dead) do
  redis.call('HDEL', counts, d)
  reply[#reply + 1] = d
end
if #dead > 0 then
  redis.call('ZREMRANGEBYSCORE', deadlines, '-inf', now)
end

redis.call('HSET', counts, id, n)
redis.call('ZADD', deadlines, now + ttl, id)

-- Both keys outlive the latest deadline by one TTL, so a prefix that every
-- instance has left does not stay in Redis for ever.
local last = redis.call('ZRANGE', deadlines, -1, -1, 'WITHSCORES')
local expireAt = tonumber(last[2]) + ttl
redis.call('PEXPIREAT', counts, expireAt)
redis.call('PEXPIREAT', deadlines, expireAt)

local after = sum()
if after ~= before then
  redis.call('PUBLISH', channel, id)
end
reply[1] = after
return reply
`

// removeScript takes this instance out of the count, for a clean shutdown,
// and returns the sum that remains.
//
// KEYS: counts hash, deadlines sorted set.
// ARGV: instance ID, change channel.
const removeScript = `
local counts, deadlines = KEYS[1], KEYS[2]
local id, channel = ARGV[1], ARGV[2]

local function sum()
  local total = 0
  for _, v in ipairs(redis.call('HVALS', counts)) do
    total = total + tonumber(v)
  end
  return total
end

local before = sum()
redis.call('HDEL', counts, id)
redis.call('ZREM', deadlines, id)
local after = sum()
if after ~= before then
  redis.call('PUBLISH', channel, id)
end
return after
`
