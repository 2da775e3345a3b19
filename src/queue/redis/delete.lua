-- Remove reserved jobs for good (they succeeded, or they are already in failed_jobs).
-- KEYS[1] reserved zset   KEYS[2] ready list   ARGV: the reserved members
-- Guarantees: each job leaves the queue in one step. A job whose reservation expired and went
-- back to the ready list (its worker was slow, not gone) is taken out of that list too, so a
-- finished job does not run again; one another worker holds already runs there as well.
for i = 1, #ARGV do
  if redis.call('zrem', KEYS[1], ARGV[i]) == 0 then
    redis.call('lrem', KEYS[2], 1, ARGV[i])
  end
end
return #ARGV
