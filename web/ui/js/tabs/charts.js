// Charts tab: requests and failures per second, response times, users and
// workers over the whole run. History is loaded from the API (so a reload
// mid-run shows the run so far), then live points are appended.

import { h } from "../dom.js";

const MAX_POINTS = 24 * 3600;

function css(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || "#888";
}

const CHARTS = [
  { id: "chart-rps", title: "Requests and failures per second", series: [["RPS", "--accent", "rps"], ["Failures/s", "--bad", "fail_per_sec"]] },
  { id: "chart-times", title: "Response times (ms)", series: [["Median", "--ok", "p50_ms"], ["95%ile", "--warn", "p95_ms"]] },
  { id: "chart-users", title: "Users and workers", series: [["Users", "--accent", "user_count"], ["Planned", "--warn", "target_users"], ["Workers", "--muted", "worker_count"]] },
];

export default function charts(ctx) {
  const boxes = CHARTS.map((c) => ({ ...c, el: h("div", { class: "chart", id: c.id }) }));
  const root = h("div", { class: "charts" },
    boxes.map((b) => h("div", { class: "card" }, h("h3", {}, b.title), b.el)));
  let points = [];
  let plots = [];
  let visible = false;
  let stale = false;
  let runId = null;

  function data(series) {
    const x = points.map((p) => p.time_ms / 1000);
    return [x, ...series.map(([, , key]) => points.map((p) => p[key] ?? null))];
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
        // Clock times only: uPlot's default adds the date to every label.
        axes: [{ ...axis, values: (u, splits) => splits.map((v) => new Date(v * 1000).toLocaleTimeString()) }, { ...axis, size: 56 }],
        series: [{}, ...box.series.map(([label, color]) => ({ label, stroke: css(color), width: 2, spanGaps: true }))],
        scales: { x: { time: true } },
      };
      const plot = new uPlot(opts, data(box.series), box.el);
      plots.push({ plot, box });
    }
    draw();
  }

  function draw() {
    for (const { plot, box } of plots) {
      plot.setData(data(box.series));
      box.el.dataset.points = String(points.length);
    }
  }

  async function loadHistory() {
    try {
      const history = await ctx.api.get("api/v1/history");
      runId = history.run_id;
      points = history.points;
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
      await historyLoaded;
      // Created on first show: uPlot needs a laid-out width.
      if (plots.length === 0 || stale) { stale = false; create(); } else draw();
    },
    hide() { visible = false; },
    update(live, { newRun }) {
      if (newRun || (runId !== null && live.summary.run_id !== runId)) {
        runId = live.summary.run_id;
        points = [];
        loadHistory();
        return;
      }
      let added = false;
      for (const p of live.points) {
        if (points.length === 0 || p.time_ms > points[points.length - 1].time_ms) {
          points.push(p);
          added = true;
        }
      }
      if (points.length > MAX_POINTS) points.splice(0, points.length - MAX_POINTS);
      if (added && visible) draw();
    },
  };
}
