// Failures tab: failure groups, most frequent first. Fetched when shown and
// whenever the live stream reports a change in the number of groups or
// failures, rather than streamed every second.

import { h, count, clock } from "../dom.js";
import fetchedTable from "./fetched.js";

const COLUMNS = [
  { title: "# Occurrences", num: true },
  { title: "Method" },
  { title: "Name" },
  { title: "Error" },
  { title: "Last seen" },
];

export default function failures(ctx) {
  return fetchedTable(ctx, {
    id: "failures-table",
    columns: COLUMNS,
    emptyText: "No failures.",
    path: "api/v1/failures",
    field: "failures",
    what: "failures",
    key: (live) => `${live.summary.run_id}:${live.summary.error_groups}:${live.summary.num_failures}`,
    row: (f) => h("tr", {},
      h("td", { class: "num fail" }, count(f.occurrences)),
      h("td", {}, f.method),
      h("td", {}, f.name),
      h("td", { class: "wrap" }, h("pre", {}, f.error)),
      h("td", {}, clock(f.last_seen_ms))),
  });
}
