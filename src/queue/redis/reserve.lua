-- Reserve up to ARGV[3] jobs from one queue.
-- KEYS[1] ready list   KEYS[2] reserved zset (member -> redeliver at ms)   KEYS[3] delayed zset
-- KEYS[4] payload hash, KEYS[5] attempts hash: only for jobs stored by conecta before 0.2,
-- whose ready elements are bare uuids
-- ARGV[1] now (ms, from conecta's clock)   ARGV[2] retry_after (ms)   ARGV[3] max jobs
-- A job is one string, "ATTEMPTS|PAYLOAD", in whichever structure holds it: ATTEMPTS counts
-- the deliveries so far. Returns the reserved members (attempts counted with this one).
-- Guarantees: due delayed jobs and expired reservations (their worker vanished) are made
-- ready first; each returned job is removed from the ready list and recorded as reserved in
-- the same atomic step, so two workers never hold one job.
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
local items = redis.call('lpop', KEYS[1], tonumber(ARGV[3]))
if not items then
  return {}
end
local deadline = now + tonumber(ARGV[2])
local out, scored = {}, {}
for _, item in ipairs(items) do
  local sep = string.find(item, '|', 1, true)
  local attempts = sep and tonumber(string.sub(item, 1, sep - 1))
  local payload
  if attempts then
    payload = string.sub(item, sep + 1)
  else
    -- An older conecta's job: move it to the current form as it is delivered. A uuid without
    -- payload was acknowledged by a worker whose reservation had expired.
    payload = redis.call('hget', KEYS[4], item)
    attempts = tonumber(redis.call('hget', KEYS[5], item) or '0')
    redis.call('hdel', KEYS[4], item)
    redis.call('hdel', KEYS[5], item)
  end
  if payload then
    local member = (attempts + 1) .. '|' .. payload
    scored[#scored + 1] = deadline
    scored[#scored + 1] = member
    out[#out + 1] = member
  end
end
if #scored > 0 then
  redis.call('zadd', KEYS[2], unpack(scored))
end
return out
