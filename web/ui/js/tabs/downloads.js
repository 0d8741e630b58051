// Downloads tab: Locust's CSV files, the HTML report, and the raw data.

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

export default function downloads() {
  return {
    el: h("div", { class: "card" },
      h("ul", { class: "downloads" }, FILES.map(([title, href, about]) =>
        h("li", {}, h("a", { href, download: href.includes("csv") || href.includes("download") ? "" : null }, title), h("span", {}, about))))),
  };
}
