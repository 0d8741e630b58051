// Downloads tab: Locust's CSV files, the HTML report, and the raw data.
// The full-history CSV exists only with --csv-full-history (as Locust's):
// without it the tab says how to get it instead of linking to a 404.

import { h } from "../dom.js";

const FILES = [
  ["Request statistics (CSV)", "stats/requests/csv", "Locust's requests CSV: one row per endpoint and Aggregated"],
  ["Failures (CSV)", "stats/failures/csv", "Method, name, error, occurrences"],
  ["Exceptions (CSV)", "exceptions/csv", "Count, message, traceback, nodes"],
  ["HTML report", "stats/report?download=1", "One self-contained file with tables and charts; opens offline"],
  ["Chart history (JSON)", "api/v1/history", "One point per second of this run"],
  ["Prometheus metrics", "metrics", "For scraping"],
  ["API description (OpenAPI)", "api/v1/openapi.json", "Every route of this API"],
];

const FULL_HISTORY = "stats/requests_full_history/csv";

function fullHistory(enabled) {
  const title = "Full history (CSV)";
  if (enabled) {
    return h("li", {}, h("a", { href: FULL_HISTORY, download: "", id: "full-history-link" }, title),
      h("span", {}, "Every entry's row, each second of this run (as --csv-full-history's _stats_history.csv)"));
  }
  return h("li", {}, h("span", { class: "unavailable", id: "full-history-link" }, title),
    h("span", {}, "Start swarmer with --csv-full-history to record every entry's row each second"));
}

export default function downloads(ctx) {
  const items = FILES.map(([title, href, about]) =>
    h("li", {}, h("a", { href, download: href.includes("csv") || href.includes("download") ? "" : null }, title), h("span", {}, about)));
  items.splice(3, 0, fullHistory(ctx.ui.full_history));
  return { el: h("div", { class: "card" }, h("ul", { class: "downloads" }, items)) };
}
