-- Release a unique lock if its owner still holds it.
-- KEYS[1] lock key   ARGV[1] owner uuid
-- Guarantees: a lock taken since by another job is left alone.
local held = redis.call('get', KEYS[1])
if held and string.sub(held, 1, #ARGV[1] + 1) == ARGV[1] .. '|' then
  redis.call('del', KEYS[1])
  return 1
end
return 0
