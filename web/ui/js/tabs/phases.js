// Phases tab: where HTTP requests spent their time, per entry: p50/p95/p99
// of TCP connect, TLS handshake and time to first byte, from the live
// stream. Entries that are not HTTP (WebSocket, TCP, swarmer.record) carry
// no phases and are left out. A request on a reused connection counts 0
// connect and 0 TLS, so a high p99 with a zero p50 means few new
// connections, each slow.

import { h, fill, ms, table, empty } from "../dom.js";

const PHASES = [["connect", "Connect"], ["tls", "TLS"], ["ttfb", "TTFB"]];
const QUANTILES = [["p50", "50%"], ["p95", "95%"], ["p99", "99%"]];

const COLUMNS = [
  { title: "Type" },
  { title: "Name" },
  ...PHASES.flatMap(([, phase]) => QUANTILES.map(([, q]) => ({ title: `${phase} ${q} (ms)`, num: true }))),
];

function row(entry) {
  return h("tr", {},
    h("td", {}, entry.method),
    h("td", {}, entry.name),
    PHASES.flatMap(([key]) => QUANTILES.map(([q]) => h("td", { class: "num" }, ms(entry.phases[key][q])))));
}

export default function phases() {
  const { table: el, tbody, tfoot } = table(COLUMNS, { id: "phases-table" });
  const placeholder = empty("No HTTP requests yet. Connect, TLS and time-to-first-byte percentiles show here.");
  const root = h("div", { class: "card" }, h("div", { class: "scroll" }, el), placeholder);
  return {
    el: root,
    update(live) {
      const rows = live.stats.slice(0, -1).filter((r) => r.phases);
      const total = live.stats[live.stats.length - 1];
      fill(tbody, rows.map(row));
      fill(tfoot, total?.phases ? row(total) : null);
      placeholder.hidden = rows.length > 0;
    },
  };
}
