-- GCRA (generic cell rate algorithm) over one or more limiters, all or nothing: the request
-- is let through only if every limiter allows it, and only then does it count against them.
--
-- KEYS[i]   a limiter's key; its value is the theoretical arrival time (TAT), in
--           microseconds of the Redis server's clock.
-- ARGV[2i-1] the emission interval: microseconds per request at the sustained rate.
-- ARGV[2i]   the burst tolerance: interval × (burst − 1).
--
-- A request at `now` conforms when TAT − now ≤ tolerance; it then moves TAT to
-- max(TAT, now) + interval. The key expires when TAT passes (an idle limiter is full).
-- Returns {1, 0, 0} when allowed, else {0, microseconds to wait, i of the limiter that
-- needs the longest wait}. The clock is Redis's own (TIME), so gateways with skewed clocks
-- share limiters correctly.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local new_tats = {}
local wait = 0
local refused = 0
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i - 1])
  local tolerance = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', key) or now) or now
  if tat < now then
    tat = now
  end
  local early = tat - tolerance - now
  if early > 0 then
    if early > wait then
      wait = early
      refused = i
    end
  else
    new_tats[i] = tat + interval
  end
end
if refused > 0 then
  return {0, math.ceil(wait), refused}
end
for i, key in ipairs(KEYS) do
  local ttl_ms = math.ceil((new_tats[i] - now) / 1000) + 1
  redis.call('SET', key, string.format('%d', new_tats[i]), 'PX', ttl_ms)
end
return {1, 0, 0}
