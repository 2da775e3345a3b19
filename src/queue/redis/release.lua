-- Put a reserved job back for a retry.
-- KEYS[1] ready list   KEYS[2] reserved zset   KEYS[3] delayed zset   KEYS[4] payload hash
-- KEYS[5] attempts hash
-- ARGV[1] uuid   ARGV[2] now (ms)   ARGV[3] delay (ms)   ARGV[4] 1: this delivery is not an
-- attempt (postponed), 0: it is
-- Guarantees: the job leaves the reserved set and becomes ready (or delayed) in one step;
-- a job already deleted is not resurrected.
if redis.call('hexists', KEYS[4], ARGV[1]) == 0 then
  redis.call('zrem', KEYS[2], ARGV[1])
  return 0
end
redis.call('zrem', KEYS[2], ARGV[1])
if ARGV[4] == '1' and tonumber(redis.call('hget', KEYS[5], ARGV[1]) or '0') > 0 then
  redis.call('hincrby', KEYS[5], ARGV[1], -1)
end
local delay = tonumber(ARGV[3])
if delay > 0 then
  redis.call('zadd', KEYS[3], tonumber(ARGV[2]) + delay, ARGV[1])
else
  redis.call('rpush', KEYS[1], ARGV[1])
end
return 1
