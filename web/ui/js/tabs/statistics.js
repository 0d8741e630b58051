// Statistics tab: one row per (method, name) and the Aggregated row, from
// the live stream. Columns sort on click, or Enter/Space on a focused
// header (aria-sort says how); Aggregated stays in the footer. A column
// picker hides columns, remembered in localStorage as Locust's.

import { h, fill, count, ms, rate, bytes, table, empty } from "../dom.js";

const COLUMNS = [
  { key: "method", title: "Type" },
  { key: "name", title: "Name" },
  { key: "num_requests", title: "# Requests", num: true, fmt: count },
  { key: "num_failures", title: "# Fails", num: true, fmt: count },
  { key: "median_response_time", title: "Median (ms)", num: true, time: true },
  { key: "response_time_percentile_0.95", title: "95%ile (ms)", num: true, time: true },
  { key: "response_time_percentile_0.99", title: "99%ile (ms)", num: true, time: true },
  { key: "avg_response_time", title: "Average (ms)", num: true, time: true },
  { key: "min_response_time", title: "Min (ms)", num: true, time: true },
  { key: "max_response_time", title: "Max (ms)", num: true, time: true },
  { key: "avg_content_length", title: "Avg size", num: true, fmt: bytes },
  { key: "current_rps", title: "Current RPS", num: true, fmt: rate },
  { key: "current_fail_per_sec", title: "Failures/s", num: true, fmt: rate },
];

const HIDDEN_KEY = "swarmer-stats-hidden-columns";

function loadHidden() {
  try {
    const keys = JSON.parse(localStorage.getItem(HIDDEN_KEY) || "[]");
    return new Set(Array.isArray(keys) ? keys : []);
  } catch {
    return new Set();
  }
}

function cell(column, row, hidden) {
  const value = row[column.key];
  const text = column.time ? ms(value, row.num_requests) : column.fmt ? column.fmt(value) : value;
  const failing = column.key === "num_failures" && value > 0;
  return h("td", { class: `${column.num ? "num" : ""}${failing ? " fail" : ""}`, hidden: hidden.has(column.key) }, text);
}

/** "Columns ▾": one checkbox per column; unchecking hides it. */
function picker(hidden, changed) {
  const boxes = COLUMNS.map((c) => h("label", {},
    h("input", {
      type: "checkbox", value: c.key, checked: !hidden.has(c.key),
      onchange: (e) => {
        if (e.target.checked) hidden.delete(c.key); else hidden.add(c.key);
        localStorage.setItem(HIDDEN_KEY, JSON.stringify([...hidden]));
        changed();
      },
    }), ` ${c.title}`));
  return h("details", { class: "column-picker", id: "column-picker" },
    h("summary", {}, "Columns"), h("div", { class: "column-list" }, boxes));
}

export default function statistics() {
  const { table: el, tbody, tfoot, head } = table(COLUMNS, { id: "stats-table" });
  const placeholder = empty("No requests yet. Start a test to see statistics here.");
  const hidden = loadHidden();
  const root = h("div", { class: "card" }, picker(hidden, () => render()), h("div", { class: "scroll" }, el), placeholder);
  let sort = { key: null, asc: true };
  let rows = [];

  [...head.children].forEach((th, i) => {
    th.classList.add("sortable");
    th.tabIndex = 0;
    const sortBy = () => {
      const key = COLUMNS[i].key;
      sort = { key, asc: sort.key === key ? !sort.asc : !COLUMNS[i].num };
      [...head.children].forEach((t, j) => {
        t.classList.toggle("sorted", j === i);
        t.classList.toggle("asc", j === i && sort.asc);
        if (j === i) t.setAttribute("aria-sort", sort.asc ? "ascending" : "descending");
        else t.removeAttribute("aria-sort");
      });
      render();
    };
    th.addEventListener("click", sortBy);
    th.addEventListener("keydown", (event) => {
      if (event.key !== "Enter" && event.key !== " ") return;
      event.preventDefault();
      sortBy();
    });
  });

  function render() {
    const body = rows.slice(0, -1);
    const total = rows[rows.length - 1];
    if (sort.key) {
      body.sort((a, b) => {
        const x = a[sort.key], y = b[sort.key];
        const order = typeof x === "string" ? x.localeCompare(y) : x - y;
        return sort.asc ? order : -order;
      });
    }
    [...head.children].forEach((th, i) => { th.hidden = hidden.has(COLUMNS[i].key); });
    fill(tbody, body.map((row) => h("tr", {}, COLUMNS.map((c) => cell(c, row, hidden)))));
    fill(tfoot, total ? h("tr", {}, COLUMNS.map((c) => cell(c, total, hidden))) : null);
    placeholder.hidden = body.length > 0;
  }

  render();
  return {
    el: root,
    update(live) {
      rows = live.stats;
      render();
    },
  };
}
