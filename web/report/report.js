// Draws the report's charts from the history embedded as JSON. Runs from
// the report file itself, offline: uPlot is inlined just before this. Time
// axes read HH:MM:SS (local time), as the UI's do, spaced so that labels
// never overlap; the charts are kept on window.reportCharts for tests.
(function () {
  "use strict";
  var source = document.getElementById("history");
  if (!source || typeof uPlot === "undefined") return;
  var points = JSON.parse(source.textContent || "[]");
  if (!points.length) return;
  window.reportCharts = [];
  var css = getComputedStyle(document.documentElement);
  var color = function (name) { return css.getPropertyValue(name).trim() || "#888"; };
  var x = points.map(function (p) { return p.time_ms / 1000; });
  var col = function (key) { return points.map(function (p) { return p[key]; }); };
  var two = function (n) { return (n < 10 ? "0" : "") + n; };
  var hms = function (seconds) {
    var d = new Date(seconds * 1000);
    return two(d.getHours()) + ":" + two(d.getMinutes()) + ":" + two(d.getSeconds());
  };
  var axes = [
    { stroke: color("--muted"), grid: { stroke: color("--line") }, ticks: { stroke: color("--line") },
      space: 90, values: function (u, splits) { return splits.map(hms); } },
    { stroke: color("--muted"), grid: { stroke: color("--line") }, ticks: { stroke: color("--line") }, size: 60 },
  ];
  function chart(id, series, data) {
    var el = document.getElementById(id);
    if (!el) return;
    var opts = {
      width: Math.max(el.clientWidth, 320), height: 240, axes: axes,
      series: [{ value: function (u, v) { return v == null ? "--" : hms(v); } }].concat(series.map(function (s) {
        return { label: s[0], stroke: color(s[1]), width: 2, spanGaps: true };
      })),
    };
    var plot = new uPlot(opts, [x].concat(data), el);
    window.reportCharts.push(plot);
    window.addEventListener("resize", function () {
      plot.setSize({ width: Math.max(el.clientWidth, 320), height: 240 });
    });
  }
  chart("chart-rps", [["RPS", "--accent"], ["Failures/s", "--bad"]], [col("rps"), col("fail_per_sec")]);
  chart("chart-times", [["Median", "--ok"], ["95%ile", "--warn"]], [col("p50_ms"), col("p95_ms")]);
  chart("chart-users", [["Users", "--accent"], ["Workers", "--muted"]], [col("user_count"), col("worker_count")]);
})();
