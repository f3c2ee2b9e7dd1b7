--[[
compd_recorder: records hits of compd's multimap rules (COMPD_RCPT, COMPD_RCPT_RE) in the same
Redis event stream compd-milter writes, with the same JSON fields, so a message that reaches
rspamd without passing compd-milter still names the account that sent it.

Install: copy to /etc/rspamd/plugins.d/compd_recorder.lua and enable it with a
`compd_recorder { ... }` section (see rspamd-conf/rspamd.conf.local and
rspamd-conf/local.d/compd_recorder.conf). Without that section rspamd leaves the module off.

What it writes, per recipient that hit (exact entries win over patterns, like compd's
matcher), in one atomic Lua script on the Redis side:
  {prefix}events            XADD MAXLEN ~ stream_maxlen, field `event` = the event JSON
  {prefix}account:<user>    first_seen, last_seen, hits, last_entry, last_recipient,
                            last_client_ip (only when rspamd knows the authenticated user;
                            <user> in ASCII lower case, compd's AccountKey)
  {prefix}accounts          sorted set: account -> unix time of its latest hit
  {prefix}seen:<id>         dedup marker with a TTL, as compd's recorder writes it
This is the layout of compd's Recorder (core/accounts/recorder.cc; key names from
core/base/include/compd/base/keys.h); keep them in step.

The event's `account` is the authenticated user rspamd sees (task:get_user(): the `User`
header of the scan request, filled from Postfix's {auth_authen} by rspamd's milter proxy),
`source` is "rspamd", `where` is "envelope" (the rules are type rcpt), `txn_id` is rspamd's
task id (it appears in rspamd's log), `auth_type` stays empty (rspamd is not told).

When Redis fails, the event JSON goes to rspamd's log at error level, so it is not lost
silently; every hit is also logged at info level.
]]--

local N = 'compd_recorder'

local rspamd_logger = require "rspamd_logger"
local rspamd_regexp = require "rspamd_regexp"
local rspamd_util = require "rspamd_util"
local lua_redis = require "lua_redis"
local lua_util = require "lua_util"

local settings = {
  prefix = 'compd:',
  stream_maxlen = 100000,   -- 0: never trim (not recommended)
  dedup_ttl = 7 * 24 * 3600,
  -- symbol -> what kind of compd entry its map holds
  symbols = {
    COMPD_RCPT = 'exact',
    COMPD_RCPT_RE = 'pattern',
  },
  -- The pattern file, to name the pattern that matched (multimap does not say which).
  -- Default: the `map` of the multimap rule whose symbol has kind 'pattern'.
  pattern_map = nil,
  host = nil,               -- default: this host's name
}

-- Same keys, same order as compd's Event::ToJson, so every reader sees one format.
local FIELDS = {
  'time', 'type', 'id', 'host', 'account', 'auth_type', 'client_ip', 'client_name', 'helo',
  'sender', 'recipient', 'where', 'entry', 'entry_kind', 'action', 'queue_id', 'txn_id',
  'subject', 'message_id', 'source',
}

-- compd-milter keeps at most one RFC 5322 line of client-controlled text per field.
local MAX_FIELD_BYTES = 998

-- The Redis script of compd's Recorder, verbatim (RecordScript() in
-- core/accounts/recorder.cc; core/accounts/recorder_test.cc fails when they differ: copy
-- it from there). KEYS: seen, stream[, account, accounts[, the registry's keys]].
-- ARGV: ttl, maxlen (0: untrimmed), json, account key, time, unix seconds, entry,
-- recipient, client_ip[, the registry's arguments]. With only the first four keys, as
-- this plugin calls it, the account's registry state is left alone.
local RECORD_SCRIPT = [==[

local function compd_account_hit(K, A)
  local flags = 0
  local maxv = tonumber(A[11])
  local function count(key, value)
    if value == '' then return end
    if redis.call('HEXISTS', key, value) == 1 or redis.call('HLEN', key) < maxv then
      redis.call('HINCRBY', key, value, 1)
    end
  end
  count(K[2], A[5])
  count(K[3], A[6])
  redis.call('LPUSH', K[4], A[7])
  redis.call('LTRIM', K[4], 0, tonumber(A[12]) - 1)

  local now = tonumber(A[3])
  local cur = redis.call('HMGET', K[1], 'state', 'state_at', 'lock_expires')
  local state = cur[1]
  if state == 'locked' then
    local exp = tonumber(cur[3] or '0') or 0
    if exp ~= 0 and exp <= now then state = 'flagged' end
  end
  -- The operator released the account after this hit happened (it waited in a spool).
  if state == 'released' and cur[2] and cur[2] > A[2] then return 0 end
  local new = (not state) or state == 'released'
  local want = state
  if new then want = 'flagged' end
  if A[8] == '1' then want = 'locked' end
  if want == state then return 0 end

  local fields = {'state', want, 'state_at', A[4], 'state_by', A[15], 'state_reason', A[16]}
  if new then
    fields[#fields + 1] = 'flagged_at'
    fields[#fields + 1] = A[4]
    flags = flags + 2
  end
  local entry = '{"time":"' .. A[4] .. '","what":"' .. want .. '","by":' .. A[17] ..
                ',"text":' .. A[18]
  if want == 'locked' then
    local dur = tonumber(A[9])
    local exp = 0
    if dur > 0 then exp = now + dur end
    fields[#fields + 1] = 'lock_expires'
    fields[#fields + 1] = tostring(exp)
    redis.call('HSET', K[6], A[1], tostring(exp))
    local v = redis.call('INCR', K[7])
    redis.call('PUBLISH', A[14], v)
    entry = entry .. ',"expires":' .. tostring(exp)
    flags = flags + 4
  end
  redis.call('HSET', K[1], unpack(fields))
  redis.call('ZADD', K[8], now, A[1])
  redis.call('LPUSH', K[5], entry .. '}')
  redis.call('LTRIM', K[5], 0, tonumber(A[13]) - 1)

  if new and #A >= 19 then
    local quiet = tonumber(A[10])
    if quiet == 0 or redis.call('SET', K[9], A[4], 'NX', 'PX', quiet) then
      local n = 0
      for i = 19, #A - 1, 2 do
        n = n + 1
        redis.call('HSET', K[10 + n], 'id', A[i + 1], 'target', A[i], 'account', A[1],
                   'state', want, 'queued_at', A[3], 'event', A[7], 'attempts', '0')
        redis.call('ZADD', K[10], now, A[i + 1])
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
if #KEYS >= 4 and ARGV[10] == '1' then
  local first = redis.call('HGET', KEYS[3], 'first_seen')
  if (not first) or ARGV[5] < first then
    redis.call('HSET', KEYS[3], 'first_seen', ARGV[5])
  end
  redis.call('HINCRBY', KEYS[3], 'hits', 1)
  local last = redis.call('HGET', KEYS[3], 'last_seen')
  if (not last) or last <= ARGV[5] then
    redis.call('HSET', KEYS[3], 'last_seen', ARGV[5], 'last_entry', ARGV[7],
               'last_recipient', ARGV[8], 'last_client_ip', ARGV[9])
    redis.call('ZADD', KEYS[4], ARGV[6], ARGV[4])
  end
end
if #KEYS > 4 then
  local K, A = {}, {}
  for i = 5, #KEYS do K[#K + 1] = KEYS[i] end
  for i = 11, #ARGV do A[#A + 1] = ARGV[i] end
  return 1 + compd_account_hit(K, A)
end
return 1
]==]

local redis_params
local patterns = {}       -- `/re/flags` lines of the pattern map, in file order (sorted)
local hostname

-- JSON ---------------------------------------------------------------------------------

local JSON_ESCAPES = {
  ['"'] = '\\"', ['\\'] = '\\\\', ['\b'] = '\\b', ['\f'] = '\\f', ['\n'] = '\\n',
  ['\r'] = '\\r', ['\t'] = '\\t',
}

local function json_string(s)
  s = tostring(s or '')
  if not rspamd_util.is_valid_utf8(s) then
    -- Client-controlled text: never fail on it. Every byte of a broken sequence becomes
    -- U+FFFD (compd-milter replaces per sequence; both keep the text readable).
    s = s:gsub('[\128-\255]', '\239\191\189')
  end
  s = s:gsub('[%z\1-\31"\\\127]', function(c)
    return JSON_ESCAPES[c] or string.format('\\u%04x', c:byte())
  end)
  return '"' .. s .. '"'
end

local function event_json(e)
  local parts = {}
  for _, k in ipairs(FIELDS) do
    parts[#parts + 1] = json_string(k) .. ':' .. json_string(e[k])
  end
  return '{' .. table.concat(parts, ',') .. '}'
end

-- Event fields ------------------------------------------------------------------------

local function utc_millis(t)
  local sec = math.floor(t)
  local ms = math.floor((t - sec) * 1000)
  return os.date('!%Y-%m-%dT%H:%M:%S', sec) .. string.format('.%03dZ', ms)
end

-- rspamd's action names, in compd's vocabulary where one exists.
local ACTIONS = {
  ['reject'] = 'reject',
  ['soft reject'] = 'tempfail',
  ['discard'] = 'discard',
  ['quarantine'] = 'quarantine',
  ['no action'] = 'monitor',
}

local function header_text(task, name)
  local v = task:get_header_raw(name)
  if not v then return '' end
  v = v:gsub('\r?\n', '')   -- unfold, as compd-milter does
  v = v:gsub('^%s+', ''):gsub('%s+$', '')
  if #v > MAX_FIELD_BYTES then v = v:sub(1, MAX_FIELD_BYTES) end
  return v
end

-- ASCII lower case only: rspamd's plain maps and compd's canonical form leave other bytes.
local function ascii_lower(s)
  return (s:gsub('%u', string.lower))
end

local function pattern_entry(address)
  for _, line in ipairs(patterns) do
    local re = rspamd_regexp.create_cached(line)
    if re and re:match(address) then
      return line
    end
  end
  return ''
end

-- One recipient -> {kind, entry}. Exact entries win, as in compd's matcher.
local function collect_hits(task)
  local hits, order = {}, {}
  for _, kind in ipairs({'exact', 'pattern'}) do
    for sym, sym_kind in pairs(settings.symbols) do
      if sym_kind == kind then
        local res = task:get_symbol(sym)
        if res then
          for _, r in ipairs(res) do
            for _, addr in ipairs(r.options or {}) do
              if not hits[addr] then
                local entry
                if kind == 'exact' then
                  entry = ascii_lower(addr)
                else
                  entry = pattern_entry(addr)
                end
                hits[addr] = {kind = kind, entry = entry}
                order[#order + 1] = addr
              end
            end
          end
        end
      end
    end
  end
  return hits, order
end

local function record(task)
  local hits, order = collect_hits(task)
  if #order == 0 then return end

  local now = rspamd_util.get_time()
  local time = utc_millis(now)
  local ip = task:get_from_ip()
  local client_ip = (ip and ip:is_valid()) and ip:to_string() or ''
  local sender = ''
  local from = task:get_from('smtp')
  if from and from[1] then sender = from[1].addr or '' end
  local action = task:get_metric_action() or ''
  local account = task:get_user() or ''
  local uid = task:get_uid()

  for i, addr in ipairs(order) do
    local h = hits[addr]
    local e = {
      time = time,
      type = 'hit',
      -- Unique: host, rspamd's task id, the recipient's index in this message, and a
      -- random part (task ids are random but short).
      id = string.format('%s:rspamd:%s:%d:%s', hostname, uid, i,
          rspamd_util.random_hex(8)),
      host = hostname,
      account = account,
      auth_type = '',
      client_ip = client_ip,
      client_name = task:get_hostname() or '',
      helo = task:get_helo() or '',
      sender = sender,
      recipient = addr,
      where = 'envelope',
      entry = h.entry,
      entry_kind = h.kind,
      action = ACTIONS[action] or action,
      queue_id = task:get_queue_id() or '',
      txn_id = uid,
      subject = header_text(task, 'Subject'),
      message_id = header_text(task, 'Message-ID'),
      source = 'rspamd',
    }
    local json = event_json(e)
    rspamd_logger.infox(task, 'compd hit: %s', json)

    if redis_params then
      local p = settings.prefix
      local keys = {p .. 'seen:' .. e.id, p .. 'events'}
      -- The registry's key for an account is its ASCII lower case (compd's AccountKey), so
      -- Alice@Example.com and alice@example.com share one record whichever node saw them.
      local account_key = ascii_lower(account)
      if account ~= '' then
        keys[3] = p .. 'account:' .. account_key
        keys[4] = p .. 'accounts'
      end
      -- EVAL rather than EVALSHA: hits are rare, and a restarted Redis never answers
      -- NOSCRIPT to a script it is sent in full.
      local args = {RECORD_SCRIPT, tostring(#keys)}
      for _, k in ipairs(keys) do args[#args + 1] = k end
      for _, a in ipairs({tostring(settings.dedup_ttl), tostring(settings.stream_maxlen), json,
                          account_key, time, tostring(math.floor(now)), e.entry, addr,
                          client_ip, '1'}) do
        args[#args + 1] = a
      end
      local function cb(err, _)
        if err then
          rspamd_logger.errx(task, 'compd_recorder: cannot write the event to Redis: %s; ' ..
              'event: %s', err, json)
        end
      end
      if not lua_redis.redis_make_request(task, redis_params, keys[2], true, cb, 'EVAL',
          args) then
        rspamd_logger.errx(task, 'compd_recorder: cannot send the event to Redis; event: %s',
            json)
      end
    end
  end
end

-- Configuration ------------------------------------------------------------------------

local opts = rspamd_config:get_all_opt(N)
if not opts then
  return
end
settings = lua_util.override_defaults(settings, opts)
if opts.symbols then
  settings.symbols = opts.symbols   -- replace, do not merge, so a symbol can be left out
end
hostname = settings.host or rspamd_util.get_hostname()

local function pattern_map_url()
  if settings.pattern_map then return settings.pattern_map end
  local mm = rspamd_config:get_all_opt('multimap') or {}
  for name, rule in pairs(mm) do
    if type(rule) == 'table' then
      local sym = rule.symbol or name
      if settings.symbols[sym] == 'pattern' and type(rule.map) == 'string' then
        return rule.map
      end
    end
  end
  return nil
end

local url = pattern_map_url()
if url then
  rspamd_config:add_map({
    type = 'callback',
    url = url,
    description = 'compd patterns (to name the pattern that matched)',
    callback = function(data)
      local lines = {}
      for line in tostring(data):gmatch('[^\r\n]+') do
        line = line:gsub('^%s+', ''):gsub('%s+$', '')
        if line:sub(1, 1) == '/' then lines[#lines + 1] = line end
      end
      patterns = lines
    end,
  })
else
  rspamd_logger.infox(rspamd_config, '%s: no pattern map found; pattern hits are recorded ' ..
      'without the entry that matched', N)
end

redis_params = lua_redis.parse_redis_server(N)
if not redis_params then
  rspamd_logger.warnx(rspamd_config, '%s: no Redis servers configured: hits go to the ' ..
      'rspamd log only', N)
end

rspamd_config:register_symbol({
  name = 'COMPD_RECORDER',
  type = 'idempotent',
  callback = record,
  flags = 'empty,explicit_disable,ignore_passthrough',
  augmentations = {string.format('timeout=%f', redis_params and redis_params.timeout or 0.0)},
})
