// Charts tab: requests and failures per second, response times, users and
// workers over the whole run. History is loaded from the API (so a reload
// mid-run shows the run so far), then live points are appended. A load
// profile's plan is known ahead: it is drawn dashed to its end under the
// actual users, and the open model's target rate under the RPS. A recorded
// run picked as the baseline is overlaid, shifted to start with this run.
// A drag-zoom holds across live updates until a double-click; a reset of
// the statistics drops the points before it, as the table empties.

import { fill, h } from "../dom.js";
import { timeAxis, legendValue, refreshLegend } from "../chart-axis.js";

const MAX_POINTS = 24 * 3600;

function css(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || "#888";
}

// A series is [label, colour, key, dashed]; the dashed ones are plans and
// the baseline, whose rows come from the history, the plan ahead and the
// picked run (see rows()).
const CHARTS = [
  { id: "chart-rps", title: "Requests and failures per second", series: [["RPS", "--accent", "rps"], ["Failures/s", "--bad", "fail_per_sec"], ["Target rate", "--warn", "plan_rate", true], ["Baseline RPS", "--muted", "base_rps", true]] },
  { id: "chart-times", title: "Response times (ms)", series: [["Median", "--ok", "p50_ms"], ["95%ile", "--warn", "p95_ms"], ["Baseline 95%ile", "--muted", "base_p95_ms", true]] },
  { id: "chart-users", title: "Users and workers", series: [["Users", "--accent", "user_count"], ["Planned", "--warn", "plan_users", true], ["Workers", "--muted", "worker_count"], ["Baseline users", "--muted", "base_users", true]] },
];

function runLabel(r) {
  return `#${r.id} ${r.script}, ${new Date(r.started_ms).toLocaleString()}`;
}

export default function charts(ctx) {
  const boxes = CHARTS.map((c) => ({ ...c, el: h("div", { class: "chart", id: c.id }) }));
  const baselineSelect = h("select", { id: "chart-baseline", "aria-label": "Baseline run", onchange: () => pickBaseline(baselineSelect.value) },
    h("option", { value: "" }, "none"));
  const root = h("div", {},
    h("p", { class: "chart-baseline" }, h("label", {}, "Overlay a recorded run: ", baselineSelect)),
    h("div", { class: "charts" },
      boxes.map((b) => h("div", { class: "card" }, h("h3", {}, b.title), b.el))));
  let points = [];
  let plots = [];
  let visible = false;
  let stale = false;
  let runId = null;
  // The plan ahead, from the live summary: users (a stage profile) and
  // arrivals per second (arrival-driven types), as the corners of a line.
  let plan = [];
  let ratePlan = [];
  // The picked baseline's per-second points, as offsets from its start.
  let baseline = [];
  // Points before this (ms) predate the last reset of the statistics.
  let since = 0;
  // A drag-zoom's x range (s), per chart id; kept until a double-click.
  const zooms = new Map();
  // Set while the page itself sets data, so only the user's zooms count.
  let applying = false;

  // The history's rows with the plans' corners merged in, in time order
  // (a jump in the plan is two corners at one time). A run with no arrival
  // rate gets no target-rate line at all.
  function rows() {
    const hasRate = ratePlan.length > 0 || points.some((p) => p.target_rate > 0);
    const out = points.map((p) => ({ ...p, plan_users: p.target_users, plan_rate: hasRate ? p.target_rate : null }));
    for (const q of plan) out.push({ time_ms: q.time_ms, plan_users: q.users });
    for (const q of ratePlan) out.push({ time_ms: q.time_ms, plan_rate: q.rate });
    const start = points.length ? points[0].time_ms : Date.now();
    for (const q of baseline) {
      out.push({ time_ms: start + q.offset_ms, base_rps: q.rps, base_p95_ms: q.p95_ms, base_users: q.users });
    }
    return out.sort((a, b) => a.time_ms - b.time_ms);
  }

  // The recorded runs to choose from, newest first (none with --no-history).
  async function loadRuns() {
    try {
      const reply = await ctx.api.get("api/v1/history?limit=50");
      const chosen = baselineSelect.value;
      fill(baselineSelect, h("option", { value: "" }, "none"),
        (reply.runs ?? []).map((r) => h("option", { value: String(r.id) }, runLabel(r))));
      baselineSelect.value = chosen;
      baselineSelect.disabled = !reply.recording;
    } catch (e) {
      ctx.toast(`Cannot load the recorded runs: ${e.message}`, true);
    }
  }

  async function pickBaseline(id) {
    baseline = [];
    if (id) {
      try {
        const run = await ctx.api.get(`api/v1/history/${encodeURIComponent(id)}`);
        const first = run.intervals.length ? run.intervals[0].time_ms : 0;
        baseline = run.intervals.map((q) => ({ ...q, offset_ms: q.time_ms - first }));
      } catch (e) {
        ctx.toast(`Cannot load run #${id}: ${e.message}`, true);
      }
    }
    boxes.forEach((b) => { b.el.dataset.baseline = String(baseline.length); });
    draw();
  }

  function data(series, all) {
    const x = all.map((p) => p.time_ms / 1000);
    return [x, ...series.map(([, , key]) => all.map((p) => p[key] ?? null))];
  }

  function create() {
    plots.forEach((p) => p.plot.destroy());
    plots = [];
    if (typeof uPlot === "undefined") return;
    const axis = { stroke: css("--muted"), grid: { stroke: css("--line") }, ticks: { stroke: css("--line") } };
    for (const box of boxes) {
      const width = Math.max(box.el.clientWidth, 300);
      const opts = {
        width, height: 240,
        axes: [timeAxis(axis), { ...axis, size: 56 }],
        series: [{ value: legendValue(true) }, ...box.series.map(([label, color, , dashed]) =>
          ({ label, stroke: css(color), width: dashed ? 1.5 : 2, dash: dashed ? [6, 4] : undefined, spanGaps: true, value: legendValue() }))],
        scales: { x: { time: true } },
        hooks: { setScale: [(u, key) => { if (key === "x") scaled(u, box); }] },
      };
      applying = true;
      const plot = new uPlot(opts, data(box.series, rows()), box.el);
      applying = false;
      // uPlot's double-click shows all again; say so even when it was all.
      plot.over.addEventListener("dblclick", () => { zooms.delete(box.id); draw(); });
      plots.push({ plot, box });
    }
    draw();
  }

  // The x range changed: by the page's own data (uPlot may commit it a
  // moment later, so `applying` is not the only clue), by a drag-zoom, or
  // by a double-click showing all. A range narrower than the data is a zoom.
  function scaled(u, box) {
    const xs = u.data[0];
    const { min, max } = u.scales.x;
    box.el.dataset.xRange = `${min},${max}`;
    if (applying) return;
    const all = xs.length === 0 || (min <= xs[0] && max >= xs[xs.length - 1]);
    if (all) zooms.delete(box.id); else zooms.set(box.id, { min, max });
    box.el.dataset.zoomed = all ? "" : `${min},${max}`;
  }

  function draw() {
    const all = rows();
    for (const { plot, box } of plots) {
      applying = true;
      plot.setData(data(box.series, all));
      const zoom = zooms.get(box.id);
      if (zoom) plot.setScale("x", zoom);
      applying = false;
      box.el.dataset.zoomed = zoom ? `${zoom.min},${zoom.max}` : "";
      refreshLegend(plot);
      box.el.dataset.points = String(points.length);
      // Where each plan line ends (ms), for whoever checks the drawing.
      for (const [, , key, dashed] of box.series) {
        if (!dashed) continue;
        const last = all.findLast((p) => p[key] != null);
        box.el.dataset[key === "plan_users" ? "planEnd" : "rateEnd"] = last ? String(last.time_ms) : "";
      }
    }
  }

  async function loadHistory() {
    try {
      const history = await ctx.api.get("api/v1/history");
      runId = history.run_id;
      points = history.points.filter((p) => p.time_ms >= since);
      draw();
    } catch (e) {
      ctx.toast(`Cannot load the chart history: ${e.message}`, true);
    }
  }

  const resize = new ResizeObserver(() => {
    for (const { plot, box } of plots) {
      if (box.el.clientWidth > 0) plot.setSize({ width: box.el.clientWidth, height: 240 });
    }
  });
  boxes.forEach((b) => resize.observe(b.el));
  // Colours are read when a chart is made: remake them for a new theme.
  window.addEventListener("swarmer-theme", () => { if (visible) create(); else stale = true; });
  const historyLoaded = loadHistory();

  return {
    el: root,
    async show() {
      visible = true;
      loadRuns();
      await historyLoaded;
      // Created on first show: uPlot needs a laid-out width.
      if (plots.length === 0 || stale) { stale = false; create(); } else draw();
    },
    hide() { visible = false; },
    update(live, { newRun }) {
      const nextPlan = live.summary.profile?.plan ?? [];
      const nextRate = live.summary.rate_plan ?? [];
      const planChanged = JSON.stringify([nextPlan, nextRate]) !== JSON.stringify([plan, ratePlan]);
      plan = nextPlan;
      ratePlan = nextRate;
      if (newRun || (runId !== null && live.summary.run_id !== runId)) {
        runId = live.summary.run_id;
        points = [];
        zooms.clear();
        loadHistory();
        return;
      }
      // A reset of the statistics: the charts start over with the table.
      let added = false;
      const start = live.summary.stats_started_ms ?? 0;
      if (start > since) {
        since = start;
        const kept = points.filter((p) => p.time_ms >= since);
        added = kept.length !== points.length;
        points = kept;
      }
      for (const p of live.points) {
        if (p.time_ms < since) continue;
        if (points.length === 0 || p.time_ms > points[points.length - 1].time_ms) {
          points.push(p);
          added = true;
        }
      }
      if (points.length > MAX_POINTS) points.splice(0, points.length - MAX_POINTS);
      if ((added || planChanged) && visible) draw();
    },
  };
}
