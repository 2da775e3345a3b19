-- Enqueue a chunk of jobs on one queue when some of them carry a unique key, taking each lock
-- atomically with its job (a chunk without keys is plain RPUSH/ZADD, no script).
-- KEYS[1] ready list   KEYS[2] delayed zset (member -> available_at ms)
-- KEYS[3] notify list (wakes blocked workers)
-- ARGV[1] now (ms, from conecta's clock)   ARGV[2] lock key prefix (same hash tag as KEYS)
-- then 5 per job: uuid, member ("0|" .. payload), available_at ms, unique key ('' if none),
-- lock expiry ms
-- Returns one 1 (stored) or 0 (duplicate: its key is held and unexpired) per job, in order.
-- Guarantees: a held, unexpired lock is never taken twice; a job is stored iff its lock (if
-- any) was taken; expiry is compared with ARGV[1], not the server's clock.
local now = tonumber(ARGV[1])
local out = {}
local ready, delayed = {}, {}
for i = 3, #ARGV, 5 do
  local uuid, member = ARGV[i], ARGV[i + 1]
  local available, key, expires = tonumber(ARGV[i + 2]), ARGV[i + 3], tonumber(ARGV[i + 4])
  local stored = 1
  if key ~= '' then
    local lock = ARGV[2] .. key
    local held = redis.call('get', lock)
    if held then
      local sep = string.find(held, '|', 1, true)
      if sep and tonumber(string.sub(held, sep + 1)) > now then
        stored = 0
      end
    end
    if stored == 1 then
      -- The server-side expiry is only garbage collection, a day after the real deadline.
      redis.call('set', lock, uuid .. '|' .. expires, 'PX', math.max(expires - now, 0) + 86400000)
    end
  end
  if stored == 1 then
    if available > now then
      delayed[#delayed + 1] = available
      delayed[#delayed + 1] = member
    else
      ready[#ready + 1] = member
    end
  end
  out[#out + 1] = stored
end
if #delayed > 0 then
  redis.call('zadd', KEYS[2], unpack(delayed))
end
if #ready > 0 then
  redis.call('rpush', KEYS[1], unpack(ready))
  redis.call('rpush', KEYS[3], '1')
  redis.call('ltrim', KEYS[3], 0, 63)
end
return out
