-- Put a reserved job back for a retry.
-- KEYS[1] ready list   KEYS[2] reserved zset   KEYS[3] delayed zset   KEYS[4] notify list
-- ARGV[1] the reserved member   ARGV[2] now (ms)   ARGV[3] delay (ms)   ARGV[4] 1: this
-- delivery is not an attempt (postponed), 0: it is
-- Guarantees: the job leaves the reserved set and becomes ready (or delayed) in one step; a
-- job no longer reserved (deleted, or its reservation expired and it went back to ready) is
-- left alone, so it is never put back twice.
if redis.call('zrem', KEYS[2], ARGV[1]) == 0 then
  return 0
end
local sep = string.find(ARGV[1], '|', 1, true)
if not sep then
  return 0
end
local attempts = tonumber(string.sub(ARGV[1], 1, sep - 1))
if ARGV[4] == '1' and attempts > 0 then
  attempts = attempts - 1
end
local member = attempts .. '|' .. string.sub(ARGV[1], sep + 1)
local delay = tonumber(ARGV[3])
if delay > 0 then
  redis.call('zadd', KEYS[3], tonumber(ARGV[2]) + delay, member)
else
  redis.call('rpush', KEYS[1], member)
  redis.call('rpush', KEYS[4], '1')
  redis.call('ltrim', KEYS[4], 0, 63)
end
return 1
