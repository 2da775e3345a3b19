-- Remove a job for good (it succeeded, or it is already in failed_jobs).
-- KEYS[1] reserved zset   KEYS[2] payload hash   KEYS[3] attempts hash   ARGV[1] uuid
-- Guarantees: the job is gone from every structure of its queue in one step.
redis.call('zrem', KEYS[1], ARGV[1])
redis.call('hdel', KEYS[2], ARGV[1])
redis.call('hdel', KEYS[3], ARGV[1])
return 1
