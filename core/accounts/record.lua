-- The Redis script that records one event, and for an account's hit the account's registry
-- update, atomically and exactly once. compd's Recorder (recorder.cc) embeds this file at
-- build time; the rspamd plugin (rspamd-conf/plugins.d/compd_recorder.lua.in) is generated
-- with it, so a hit either of them records runs this same code.
--
-- KEYS (RecordKeys in recorder.cc): 1 seen:<event id>, 2 events; for an event with an
-- account A also 3 account:A, 4 accounts, 5 account-rcpts:A, 6 account-ips:A,
-- 7 account-events:A, 8 account-log:A, 9 accounts:locked, 10 accounts:version,
-- 11 accounts:changed, 12 account-quiet:A, 13 hooks:due, 14 accounts:reaction,
-- 15 the name of ticket job <id> without the id (hook:).
-- ARGV: 1 dedup ttl (s), 2 stream maxlen (0: untrimmed), 3 the event JSON, 4 A (the
-- account's AccountKey, '' for none), 5 the event's unix seconds, 6 now (unix ms), 7 now
-- (FormatUtcMillis), 8 this node's host name, 9 the reaction (AccountReaction::ToJson) or
-- '' for the one compd-milter published in KEYS[14], then RecordLayoutArgs: 10 the
-- accounts:changes channel, 11 max evidence values, 12 max timeline, 13 max log entries.
-- Returns 0 (seen before) or 1 plus the kHit* bits of the account's update (accounts.h).
-- Times compare as strings: FormatUtcMillis output sorts like the instants it names.

-- The consequences for the account: evidence, state (flagged, or locked as the reaction
-- says), its log, and one ticket job per hook target when newly flagged.
local function account_hit(ev, a, reaction)
  local flags = 0
  local now = tonumber(ARGV[6])
  local maxv = tonumber(ARGV[11])
  local function count(key, value)
    if value == '' then return end
    if redis.call('HEXISTS', key, value) == 1 or redis.call('HLEN', key) < maxv then
      redis.call('HINCRBY', key, value, 1)
    end
  end
  count(KEYS[5], ev.recipient)
  count(KEYS[6], ev.client_ip)
  redis.call('LPUSH', KEYS[7], ARGV[3])
  redis.call('LTRIM', KEYS[7], 0, tonumber(ARGV[12]) - 1)

  -- Only SASL accounts lock automatically: "ip:ADDR" (a trusted host relaying for many
  -- users) and "local:..." (sendmail submissions, which cannot be refused) are flagged only.
  local sasl = a:sub(1, 3) ~= 'ip:' and a:sub(1, 6) ~= 'local:'
  local allowed = false
  for _, item in ipairs(reaction.lock_allowlist or {}) do
    if item == a or (item:sub(1, 1) == '@' and #a > #item and a:sub(-#item) == item) then
      allowed = true
    end
  end
  local signal = ev.type == 'signal'
  local lock
  if signal then
    lock = ev.action == 'lock' and sasl and not allowed
  else
    lock = reaction.lock_on_hit == true and sasl and not allowed
  end
  local by = 'compd@' .. ((ev.host ~= '' and ev.host) or ARGV[8])
  local reason = 'hit on ' .. ev.recipient
  if ev.where ~= '' and ev.where ~= 'envelope' then reason = reason .. ' (' .. ev.where .. ')' end
  if signal then
    -- The detail (Reaction::Summary) first: the text is cut, and a combined signal's score
    -- and contributions must survive the cut.
    local evidence = ev.evidence
    if ev.detail ~= '' then evidence = ev.detail .. ' ' .. evidence end
    if #evidence > 300 then
      -- Cut before a character, never inside one.
      local n = 300
      while n > 0 and evidence:byte(n + 1) >= 0x80 and evidence:byte(n + 1) < 0xC0 do
        n = n - 1
      end
      evidence = evidence:sub(1, n)
    end
    reason = 'signal ' .. ev.rule .. ' (' .. ev.action .. '): ' .. evidence
  elseif lock then
    reason = reason .. '; lock_on_hit'
  elseif reaction.lock_on_hit == true then
    if sasl then
      reason = reason .. '; not locked: in lock_allowlist'
    else
      reason = reason .. '; not locked: not a SASL account'
    end
  end

  local cur = redis.call('HMGET', KEYS[3], 'state', 'state_at', 'lock_expires')
  local state = cur[1]
  if state == 'locked' then
    local exp = tonumber(cur[3] or '0') or 0
    if exp ~= 0 and exp <= now then state = 'flagged' end
  end
  -- The operator released the account after this hit happened (it waited in a spool).
  if state == 'released' and cur[2] and cur[2] > ev.time then return 0 end
  local new = (not state) or state == 'released'
  local want = state
  if new then want = 'flagged' end
  if lock then want = 'locked' end
  if want == state then return 0 end

  local fields = {'state', want, 'state_at', ARGV[7], 'state_by', by, 'state_reason', reason}
  if new then
    fields[#fields + 1] = 'flagged_at'
    fields[#fields + 1] = ARGV[7]
    flags = flags + 2
  end
  local entry = '{"time":"' .. ARGV[7] .. '","what":"' .. want .. '","by":' ..
                cjson.encode(by) .. ',"text":' .. cjson.encode(reason)
  if want == 'locked' then
    local dur = tonumber(reaction.lock_duration_ms or 0)
    local exp = 0
    if dur > 0 then exp = now + dur end
    fields[#fields + 1] = 'lock_expires'
    fields[#fields + 1] = tostring(exp)
    redis.call('HSET', KEYS[9], a, tostring(exp))
    local v = redis.call('INCR', KEYS[10])
    redis.call('PUBLISH', ARGV[10], v)
    entry = entry .. ',"expires":' .. tostring(exp)
    flags = flags + 4
  end
  redis.call('HSET', KEYS[3], unpack(fields))
  redis.call('ZADD', KEYS[11], now, a)
  redis.call('LPUSH', KEYS[8], entry .. '}')
  redis.call('LTRIM', KEYS[8], 0, tonumber(ARGV[13]) - 1)

  local targets = reaction.hook_targets or {}
  if new and #targets > 0 then
    local quiet = tonumber(reaction.hook_quiet_ms or 0)
    if quiet == 0 or redis.call('SET', KEYS[12], ARGV[7], 'NX', 'PX', quiet) then
      for _, target in ipairs(targets) do
        local id = ev.id .. '/' .. target
        redis.call('HSET', KEYS[15] .. id, 'id', id, 'target', target, 'account', a,
                   'state', want, 'queued_at', ARGV[6], 'event', ARGV[3], 'attempts', '0')
        redis.call('ZADD', KEYS[13], now, id)
      end
      flags = flags + 8
    end
  end
  return flags
end

if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return 0 end
if ARGV[2] == '0' then
  redis.call('XADD', KEYS[2], '*', 'event', ARGV[3])
else
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'event', ARGV[3])
end
if #KEYS < 15 or ARGV[4] == '' then return 1 end

local ev = cjson.decode(ARGV[3])
for _, k in ipairs({'type', 'id', 'host', 'time', 'recipient', 'client_ip', 'where', 'entry',
                    'action', 'rule', 'evidence', 'detail'}) do
  if type(ev[k]) ~= 'string' then ev[k] = '' end
end
-- Only hits are evidence of a leaked password: other events (anomalies) name an account
-- but count nowhere. A detection signal whose reaction flags or locks updates the registry
-- as a hit does (state, ticket), without counting as a hit.
local hit = ev.type == 'hit'
if not hit and not (ev.type == 'signal' and (ev.action == 'flag' or ev.action == 'tempfail' or
                                              ev.action == 'lock')) then
  return 1
end
if hit then
  local first = redis.call('HGET', KEYS[3], 'first_seen')
  if (not first) or ev.time < first then
    redis.call('HSET', KEYS[3], 'first_seen', ev.time)
  end
  redis.call('HINCRBY', KEYS[3], 'hits', 1)
  -- A replayed old event counts, but never moves the latest hit backwards.
  local last = redis.call('HGET', KEYS[3], 'last_seen')
  if (not last) or last <= ev.time then
    redis.call('HSET', KEYS[3], 'last_seen', ev.time, 'last_entry', ev.entry,
               'last_recipient', ev.recipient, 'last_client_ip', ev.client_ip)
    redis.call('ZADD', KEYS[4], ARGV[5], ARGV[4])
  end
end

-- compd-milter passes its reaction (and publishes it, Recorder::PublishReaction); the rspamd
-- plugin passes none and gets the published one, so a hit has the same consequences
-- whichever of the two saw it.
local reaction_json = ARGV[9]
if reaction_json == '' then reaction_json = redis.call('GET', KEYS[14]) or '{}' end
local ok, reaction = pcall(cjson.decode, reaction_json)
if not ok or type(reaction) ~= 'table' then reaction = {} end
return 1 + account_hit(ev, ARGV[4], reaction)
