-- Reserve up to ARGV[3] jobs from one queue.
-- KEYS[1] ready list   KEYS[2] reserved zset (uuid -> redeliver at ms)   KEYS[3] delayed zset
-- KEYS[4] payload hash   KEYS[5] attempts hash (uuid -> attempts so far)
-- ARGV[1] now (ms, from conecta's clock)   ARGV[2] retry_after (ms)   ARGV[3] max jobs
-- Returns a flat list: uuid, payload, attempts, … (empty when nothing is ready).
-- Guarantees: due delayed jobs and expired reservations (their worker vanished) are made
-- ready first; each returned job is removed from the ready list and recorded as reserved in
-- the same atomic step, so two workers never hold one job; attempts counts deliveries.
local now = tonumber(ARGV[1])
local function migrate(from)
  local due = redis.call('zrangebyscore', from, '-inf', now, 'LIMIT', 0, 1000)
  if #due > 0 then
    redis.call('zrem', from, unpack(due))
    redis.call('rpush', KEYS[1], unpack(due))
  end
end
migrate(KEYS[3])
migrate(KEYS[2])
local out = {}
local want = tonumber(ARGV[3])
local taken = 0
while taken < want do
  local uuid = redis.call('lpop', KEYS[1])
  if not uuid then break end
  local payload = redis.call('hget', KEYS[4], uuid)
  -- A uuid without payload was acknowledged by a worker whose reservation had expired.
  if payload then
    local attempts = redis.call('hincrby', KEYS[5], uuid, 1)
    redis.call('zadd', KEYS[2], now + tonumber(ARGV[2]), uuid)
    out[#out + 1] = uuid
    out[#out + 1] = payload
    out[#out + 1] = attempts
    taken = taken + 1
  end
end
return out
