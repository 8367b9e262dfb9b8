-- kthena-rs global token budgets: the Redis form of kthena_core::rate_limit::{Bucket,
-- ModelLimit}. One call is one decision, atomic in Redis; the clock is Redis's own (TIME),
-- so replicas whose clocks disagree still share one budget.
--
-- KEYS[1], KEYS[2]: the model's input and output buckets (hashes: tokens, at, burst, rate).
-- ARGV (built by kthena_core::rate_limit::redis_admit_args / redis_settle_args):
--   1 op: "admit" or "settle"
--   2 now in seconds, "" for Redis TIME (tests pass a time to compare with the local buckets)
--   3, 4 input budget: burst, refill per second ("" "": no input budget)
--   5, 6 output budget: burst, refill per second ("" "": no output budget)
--   7 admit: estimated input tokens to reserve; settle: input tokens to charge (may be < 0)
--   8 settle: output tokens to charge
--   9 seconds a key lives past the moment its bucket is full again
-- Answer: {0, ''} admitted or settled; {1, tokens} the output budget has less than one
-- token; {2, tokens} the input budget lacks the estimate. Nothing is taken from a refused
-- request.
-- Numbers are kept and answered as strings of 17 significant digits: Lua numbers are
-- doubles, and a double printed so reads back the same, as the local bucket's f64.

local function num(s)
  return tonumber(s)
end

local function fmt(x)
  return string.format('%.17g', x)
end

local now
if ARGV[2] ~= '' then
  now = num(ARGV[2])
else
  local t = redis.call('TIME')
  now = num(t[1]) + num(t[2]) / 1000000
end

-- The bucket of `key` at `now` under a budget of `burst` refilled at `rate` (nil: no budget).
local function load(key, burst, rate)
  if burst == nil then
    -- A budget removed is gone: added again later, it starts full (ModelLimit::update).
    redis.call('DEL', key)
    return nil
  end
  local h = redis.call('HMGET', key, 'tokens', 'at', 'burst', 'rate')
  local tokens, at, held_burst, held_rate = num(h[1]), num(h[2]), num(h[3]), num(h[4])
  -- No key (never used, or expired once full): a full bucket.
  if tokens == nil or at == nil or held_burst == nil or held_rate == nil then
    return { key = key, tokens = burst, at = now, burst = burst, rate = rate }
  end
  -- Refill at the rate it was filled at, up to what it held at most (Bucket::refill).
  local elapsed = math.max(now - at, 0)
  tokens = math.min(tokens + elapsed * held_rate, held_burst)
  at = math.max(at, now)
  -- A changed limit keeps what the bucket held, up to the new burst (Bucket::reconfigured).
  if held_burst ~= burst or held_rate ~= rate then
    tokens = math.min(tokens, burst)
    at = now
  end
  return { key = key, tokens = tokens, at = at, burst = burst, rate = rate }
end

local function save(b, margin)
  if b == nil then
    return
  end
  redis.call('HSET', b.key, 'tokens', fmt(b.tokens), 'at', fmt(b.at), 'burst', fmt(b.burst),
    'rate', fmt(b.rate))
  -- Once full again the bucket reads the same as no key: let it go then (plus a margin), so a
  -- model whose limit was removed leaves nothing behind.
  local full_in = math.ceil((b.burst - b.tokens) / b.rate)
  redis.call('EXPIRE', b.key, math.max(full_in, 0) + margin)
end

-- Takes `n` tokens (gives them back when negative) into debt down to minus the burst
-- (Bucket::charge).
local function charge(b, n)
  b.tokens = math.min(math.max(b.tokens - n, -b.burst), b.burst)
end

local input = load(KEYS[1], num(ARGV[3]), num(ARGV[4]))
local output = load(KEYS[2], num(ARGV[5]), num(ARGV[6]))
local margin = num(ARGV[9])
local answer = { 0, '' }

if ARGV[1] == 'admit' then
  -- ModelLimit::admit: the output budget needs one token, then the input budget the estimate.
  local n = num(ARGV[7])
  if output ~= nil and output.tokens < 1 then
    answer = { 1, fmt(output.tokens) }
  elseif input ~= nil then
    if n <= input.tokens then
      input.tokens = input.tokens - n
    else
      answer = { 2, fmt(input.tokens) }
    end
  end
elseif ARGV[1] == 'settle' then
  -- ModelLimit::settle: the estimate corrected to the counted prompt, the completion charged.
  local delta, completion = num(ARGV[7]), num(ARGV[8])
  if input ~= nil and delta ~= 0 then
    charge(input, delta)
  end
  if output ~= nil and completion > 0 then
    charge(output, completion)
  end
else
  return redis.error_reply('unknown op ' .. tostring(ARGV[1]))
end

save(input, margin)
save(output, margin)
return answer
