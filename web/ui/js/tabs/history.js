// History tab: the recorded runs (the run history) as a table, a trend of
// p95 and RPS across the runs of one script, and two runs picked from the
// table compared side by side. Loaded when shown and again when a run ends
// (the master records it then).

import { h, fill, table, empty, count, ms, rate, percent } from "../dom.js";

const COLUMNS = [
  { title: "Compare" },
  { title: "Id", num: true },
  { title: "When" },
  { title: "Script" },
  { title: "Host" },
  { title: "Users/profile" },
  { title: "RPS", num: true },
  { title: "p95 (ms)", num: true },
  { title: "Verdict" },
  { title: "Workers scaled" },
];

const FIGURES = [
  ["requests", "Requests", count],
  ["fail_ratio", "Failure ratio", percent],
  ["avg_ms", "Average (ms)", ms],
  ["p50_ms", "Median (ms)", ms],
  ["p95_ms", "95%ile (ms)", ms],
  ["p99_ms", "99%ile (ms)", ms],
  ["rps", "RPS", rate],
];

function css(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || "#888";
}

function profileLabel(p) {
  if (p.kind === "stages") return p.stages ? `stages ${p.stages}` : `stages, peak ${p.users}`;
  if (p.kind === "shape") return `shape, peak ${p.users}`;
  const time = p.run_time_ms ? `, ${p.run_time_ms / 1000}s` : "";
  return `${p.users} users @ ${p.spawn_rate}/s${time}`;
}

// The counts a run's workers went through, "1 → 3 → 1", from the
// autoscaler's decisions (a refused one changed nothing).
function scalingPath(events) {
  const done = (events || []).filter((e) => !e.error);
  if (done.length === 0) return "";
  return [done[0].from, ...done.map((e) => e.to)].join(" → ");
}

function change(pct) {
  if (pct === null || pct === undefined) return "n/a";
  return `${pct >= 0 ? "+" : ""}${pct.toFixed(1)}%`;
}

export default function runHistory(ctx) {
  const { table: runsTable, tbody } = table(COLUMNS, { id: "history-table" });
  const placeholder = empty("No runs recorded yet.");
  const compareButton = h("button", { type: "button", id: "history-compare", disabled: true }, "Compare the two picked runs");
  const scriptSelect = h("select", { id: "history-script", "aria-label": "Script" });
  const trend = h("div", { class: "chart", id: "history-trend" });
  const comparison = h("div", { id: "history-comparison" });
  const root = h("div", {},
    h("div", { class: "card" }, h("h3", {}, "Recorded runs"),
      h("div", { class: "scroll" }, runsTable), placeholder,
      h("p", {}, compareButton, " ", h("small", { class: "note" }, "Pick two runs in the first column."))),
    h("div", { class: "card" }, h("h3", {}, "Trend across runs of ", scriptSelect, ": p95 (ms) and RPS"), trend),
    h("div", { class: "card" }, h("h3", {}, "Comparison"), comparison));
  let runs = [];
  let picked = [];
  let plot = null;
  let visible = false;
  let lastState = null;

  function pick(id, on) {
    picked = picked.filter((x) => x !== id);
    if (on) picked.push(id);
    // Two at most: the oldest pick makes way.
    while (picked.length > 2) picked.shift();
    for (const box of tbody.querySelectorAll("input[type=checkbox]")) {
      box.checked = picked.includes(Number(box.value));
    }
    compareButton.disabled = picked.length !== 2;
  }

  function row(r) {
    const box = h("input", { type: "checkbox", value: String(r.id), "aria-label": `Pick run ${r.id}`,
      onchange: (e) => pick(r.id, e.target.checked) });
    box.checked = picked.includes(r.id);
    return h("tr", { dataset: { id: String(r.id) } },
      h("td", {}, box),
      h("td", { class: "num" }, String(r.id)),
      h("td", {}, new Date(r.started_ms).toLocaleString()),
      h("td", {}, r.script),
      h("td", {}, r.host),
      h("td", {}, profileLabel(r.profile)),
      h("td", { class: "num" }, rate(r.rps)),
      h("td", { class: "num" }, ms(r.p95_ms, r.requests)),
      h("td", { class: r.verdict === "passed" ? "ok" : "fail" }, r.verdict),
      h("td", { class: "scaling", title: (r.scaling || []).map((e) => e.message).join("\n") },
        scalingPath(r.scaling)));
  }

  function drawTrend() {
    const script = scriptSelect.value;
    // Oldest first, so the line reads left to right in time.
    const series = runs.filter((r) => r.script === script).slice().reverse();
    trend.dataset.points = String(series.length);
    // One step per run (runs are not evenly spaced in time); labelled by id.
    const data = [series.map((_, i) => i), series.map((r) => r.p95_ms), series.map((r) => r.rps)];
    const runLabel = (u, splits) => splits.map((v) => (Number.isInteger(v) && series[v] ? `#${series[v].id}` : ""));
    if (typeof uPlot === "undefined" || trend.clientWidth === 0) return;
    if (plot) plot.destroy();
    const axis = { stroke: css("--muted"), grid: { stroke: css("--line") }, ticks: { stroke: css("--line") } };
    plot = new uPlot({
      width: Math.max(trend.clientWidth, 300), height: 240,
      axes: [{ ...axis, values: runLabel }, { ...axis, scale: "ms", size: 56 }, { ...axis, scale: "rps", side: 1, size: 56, grid: { show: false } }],
      series: [{ label: "Run", value: (u, v) => (series[v] ? `#${series[v].id}` : "--") },
        { label: "p95 (ms)", scale: "ms", stroke: css("--warn"), width: 2, points: { show: true } },
        { label: "RPS", scale: "rps", stroke: css("--accent"), width: 2, points: { show: true } }],
      scales: { x: { time: false } },
    }, data, trend);
  }

  function fillScripts() {
    const scripts = [...new Set(runs.map((r) => r.script))];
    const keep = scripts.includes(scriptSelect.value) ? scriptSelect.value : scripts[0];
    fill(scriptSelect, scripts.map((s) => h("option", { value: s }, s)));
    if (keep !== undefined) scriptSelect.value = keep;
  }

  async function load() {
    try {
      const reply = await ctx.api.get("api/v1/history?limit=200");
      runs = reply.runs;
      placeholder.textContent = reply.recording ? "No runs recorded yet." : "The run history is off (--no-history).";
      placeholder.hidden = runs.length > 0;
      picked = picked.filter((id) => runs.some((r) => r.id === id));
      fill(tbody, runs.map(row));
      compareButton.disabled = picked.length !== 2;
      fillScripts();
      drawTrend();
    } catch (e) {
      ctx.toast(`Cannot load the run history: ${e.message}`, true);
    }
  }

  async function compare() {
    const [a, b] = picked.slice().sort((x, y) => x - y);
    try {
      const c = await ctx.api.get(`api/v1/history/compare?a=${a}&b=${b}`);
      const head = h("tr", {}, h("th", { scope: "col" }, "Name"), h("th", { scope: "col" }, "Figure"),
        h("th", { class: "num", scope: "col" }, `#${c.a.id}`), h("th", { class: "num", scope: "col" }, `#${c.b.id}`),
        h("th", { class: "num", scope: "col" }, "Change"));
      const rows = [];
      for (const e of c.entries) {
        const name = e.method ? `${e.method} ${e.name}` : e.name;
        FIGURES.forEach(([key, label, format], i) => {
          const f = e.figures.find((x) => x.figure === key);
          if (!f) return;
          rows.push(h("tr", { dataset: { entry: name, figure: key } },
            h("td", {}, i === 0 ? name : ""), h("td", {}, label),
            h("td", { class: "num" }, format(f.a)), h("td", { class: "num" }, format(f.b)),
            h("td", { class: "num change" }, change(f.percent))));
        });
      }
      fill(comparison, h("div", { class: "scroll" },
        h("table", { id: "history-compare-table" }, h("thead", {}, head), h("tbody", {}, rows))));
    } catch (e) {
      ctx.toast(`Cannot compare runs ${a} and ${b}: ${e.message}`, true);
    }
  }

  compareButton.addEventListener("click", compare);
  scriptSelect.addEventListener("change", drawTrend);
  fill(comparison, empty("Pick two runs above and compare them."));
  window.addEventListener("swarmer-theme", () => { if (visible) drawTrend(); });

  return {
    el: root,
    show() { visible = true; load(); },
    hide() { visible = false; },
    update(live) {
      // A run that just stopped has just been recorded: show it.
      const state = live.summary.state;
      if (visible && state === "stopped" && lastState !== null && lastState !== "stopped") {
        setTimeout(load, 500);
      }
      lastState = state;
    },
  };
}
