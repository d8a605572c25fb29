-- One wrk script for every scenario. The requests themselves are prepared by Python
-- (bench/compare/load.py) into a data file of ready-made paths and bodies, one entry per user,
-- so this script only picks the next user and checks the reply: generating requests costs wrk
-- almost nothing, which keeps the load generator far from being the bottleneck.
--
-- Arguments (after `--`): <data file> <scenario: S1..S5>
-- Every reply must be 200 (reads, logins) or 201 (creates); anything else is an error. A reply
-- to a read must be a `results` list, a reply to a login must carry a session token.

local threads = {}
local thread_id = 0

function setup(thread)
  thread_id = thread_id + 1
  thread:set("id", thread_id)
  table.insert(threads, thread)
end

-- Globals, not locals: done() reads the counters of each thread with thread:get().
data, scenario, cursor, errors, bad_body, first_error = nil, nil, 0, 0, 0, ""

function init(args)
  data = dofile(args[1])
  scenario = args[2]
  cursor = id * 7919  -- threads start at different users
  errors, bad_body = 0, 0
  first_error = ""
  math.randomseed(id * 104729 + os.time())
end

local function header(token)
  local h = {
    ["X-Parse-Application-Id"] = data.app_id,
    ["Content-Type"] = "application/json",
  }
  if token then h["X-Parse-Session-Token"] = token end
  return h
end

local function patient()
  cursor = cursor + 1
  return data.patients[(cursor % #data.patients) + 1]
end

local function provider()
  cursor = cursor + 1
  return data.providers[(cursor % #data.providers) + 1]
end

-- S2 is two requests per dashboard: the profile, then the newest assessments.
local dashboard_step, dashboard_user = 0, nil
local function dashboard()
  if dashboard_step == 0 then
    dashboard_user = patient()
    dashboard_step = 1
    return wrk.format("GET", dashboard_user.profile, header(dashboard_user.t))
  end
  dashboard_step = 0
  return wrk.format("GET", dashboard_user.assessments, header(dashboard_user.t))
end

local function inbox()
  local p = provider()
  return wrk.format("GET", p.inbox, header(p.t))
end

local function send()
  local p = patient()
  return wrk.format("POST", data.prefix .. "/classes/Message", header(p.t), p.send)
end

local function login()
  local p = patient()
  return wrk.format("POST", data.prefix .. "/login", header(nil), p.login)
end

function request()
  if scenario == "S1" then return login() end
  if scenario == "S2" then return dashboard() end
  if scenario == "S3" then return inbox() end
  if scenario == "S4" then return send() end
  -- S5: 70% reads (dashboards and inboxes alike), 20% writes, 10% logins.
  local roll = math.random(100)
  if roll <= 35 then return dashboard() end
  if roll <= 70 then return inbox() end
  if roll <= 90 then return send() end
  return login()
end

function response(status, headers, body)
  if status ~= 200 and status ~= 201 then
    errors = errors + 1
    if first_error == "" then first_error = status .. " " .. string.sub(body or "", 1, 200) end
    return
  end
  local head = string.sub(body or "", 1, 64)
  if not (string.find(head, '"results"', 1, true) or string.find(body, '"objectId"', 1, true)) then
    bad_body = bad_body + 1
    if first_error == "" then first_error = status .. " unexpected body " .. string.sub(body or "", 1, 200) end
  end
end

local function json_string(text)
  text = string.gsub(text, '[%c"\\]', function(c)
    if c == '"' then return '\\"' end
    if c == "\\" then return "\\\\" end
    return " "
  end)
  return '"' .. text .. '"'
end

function done(summary, latency, requests)
  local errs, bad, first = 0, 0, ""
  for _, thread in ipairs(threads) do
    errs = errs + (thread:get("errors") or 0)
    bad = bad + (thread:get("bad_body") or 0)
    local f = thread:get("first_error") or ""
    if first == "" then first = f end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,'
      .. '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f,'
      .. '"status_errors":%d,"bad_bodies":%d,"connect":%d,"read":%d,"write":%d,"timeout":%d,"first_error":%s}\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
    errs, bad, e.connect, e.read, e.write, e.timeout, json_string(first)))
end
