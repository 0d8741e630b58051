-- Extending the master's UI from the script that defines the users
-- (docs/extending.md): a view ranking the endpoints by error rate, an
-- action resetting the demo target, a JSON route for other tools, hooks
-- on run events, and counters recorded on workers.
--
--   swarmer -f examples/extend.lua --demo-target --autostart -u 20 -r 10
--
-- then open the web UI's "Error rate" tab.

local Shopper = swarmer.user {
  name = "Shopper",
  wait = swarmer.between(0.2, 0.6),
  host = "http://127.0.0.1:8080",  -- --demo-target / -H replace it
}

function Shopper:on_start()
  -- One shopper in three never logs in, so their cart requests fail.
  if self.id % 3 ~= 0 then
    self.http:post("/login", { form = { user = "shopper" .. self.id } })
  end
end

Shopper:task(4, function(self) self.http:get("/") end)

Shopper:task(3, function(self)
  local r = self.http:get("/item/" .. swarmer.random(1, 100), { name = "/item/[id]" })
  swarmer.count("items viewed")
  if r.status == 200 and not r:json().in_stock then
    r:failure("out of stock")
    swarmer.count("out of stock")
  end
end)

Shopper:task(2, function(self) self.http:get("/cart") end)

Shopper:task(1, function(self)
  -- A dependency that fails one time in twenty.
  local code = swarmer.random(1, 20) == 1 and 503 or 200
  self.http:get("/status/" .. code, { name = "/status/[code]" })
end)

-- Endpoints with requests, worst error rate first. Counters (type COUNT)
-- are not requests, so they are left out.
local function ranking(ctx)
  local rows = {}
  for _, e in ipairs(ctx.stats) do
    if e.method ~= "COUNT" and e.num_requests > 0 then
      rows[#rows + 1] = {
        method = e.method, name = e.name,
        requests = e.num_requests, failures = e.num_failures,
        error_pct = math.floor(1000 * e.num_failures / e.num_requests + 0.5) / 10,
      }
    end
  end
  table.sort(rows, function(a, b)
    if a.error_pct ~= b.error_pct then return a.error_pct > b.error_pct end
    return a.requests > b.requests
  end)
  return rows
end

-- What the hooks saw, shown by the view and the route.
local runs = { started = 0, last = nil }

swarmer.ui.view {
  id = "error-rate",
  title = "Error rate",
  render = function(ctx)
    local rows = ranking(ctx)
    local table_rows = {}
    for i, r in ipairs(rows) do
      table_rows[i] = { i, r.method .. " " .. r.name, r.requests, r.failures, r.error_pct }
    end
    -- ctx.state is this view's own table, kept between renders: a short
    -- history of the overall error rate for the chart.
    local history = ctx.state.history or {}
    ctx.state.history = history
    local last = history[#history]
    if ctx.run.num_requests > 0 and (not last or ctx.run.now_ms - last.t >= 1000) then
      history[#history + 1] = { t = ctx.run.now_ms, pct = 100 * ctx.run.fail_ratio }
      if #history > 300 then table.remove(history, 1) end
    end
    local xs, ys = {}, {}
    for i, p in ipairs(history) do xs[i], ys[i] = p.t, p.pct end
    local worst = rows[1]
    return {
      figures = {
        { label = "Worst endpoint", value = worst and (worst.method .. " " .. worst.name) or "none yet",
          tone = worst and worst.error_pct > 10 and "bad" or "ok" },
        { label = "Its error rate", value = worst and worst.error_pct or 0, unit = "%" },
        { label = "Overall", value = math.floor(1000 * ctx.run.fail_ratio + 0.5) / 10, unit = "%" },
        { label = "Runs started", value = runs.started },
      },
      tables = { {
        title = "Endpoints by error rate",
        columns = { "Rank", "Endpoint", "Requests", "Failures", "Error %" },
        rows = table_rows,
      } },
      charts = { {
        title = "Overall error rate (%)", x = xs, time = true,
        series = { { label = "Error %", values = ys } },
      } },
      note = runs.last,
    }
  end,
}

swarmer.ui.action {
  id = "reset-target",
  title = "Reset demo target",
  description = "Sets the demo target's request counter (GET /stats) back to zero.",
  view = "error-rate",
  fields = {
    { name = "confirm", label = "Really reset?", type = "choice", choices = { "no", "yes" } },
    { name = "note", label = "Note for the log", type = "text", required = false, max_length = 200 },
  },
  run = function(args, ctx)
    if args.confirm ~= "yes" then
      return { ok = false, message = "Not reset: choose yes to confirm" }
    end
    -- ctx.http is a client for the run's host (here the demo target).
    local before = ctx.http:get("/stats"):json().served
    local r = ctx.http:post("/reset")
    if not r.ok then
      return { ok = false, message = "The target answered " .. r.status .. ": " .. r.body }
    end
    swarmer.log("demo target reset: " .. (args.note or "no note"))
    return {
      ok = true,
      message = "Demo target reset (it had served " .. before .. " requests)",
      data = { served_before = before },
    }
  end,
}

-- GET /api/v1/ext/ranking?limit=3 for dashboards and CI scripts.
swarmer.api.route("/ranking", function(req, ctx)
  local limit = tonumber(req.query.limit) or 10
  local rows, out = ranking(ctx), {}
  for i = 1, math.min(limit, #rows) do out[i] = rows[i] end
  return { state = ctx.run.state, runs_started = runs.started, endpoints = out }
end)

swarmer.on("test_start", function(event, ctx)
  runs.started = runs.started + 1
  runs.last = "Run " .. event.run_id .. " started with " .. ctx.run.target_users .. " users"
  swarmer.log(runs.last)
end)

swarmer.on("test_stop", function(event, ctx)
  runs.last = "Run " .. event.run_id .. " stopped after " .. ctx.run.num_requests .. " requests"
  swarmer.log(runs.last)
end)

swarmer.on("worker_joined", function(event) swarmer.log("worker joined: " .. event.worker_id) end)
swarmer.on("worker_left", function(event)
  swarmer.log.warn("worker left: " .. event.worker_id .. " (" .. event.reason .. ")")
end)
