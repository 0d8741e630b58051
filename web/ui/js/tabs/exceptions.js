// Exceptions tab: errors raised by the script's own code, with tracebacks
// folded so a long one does not push the rest off screen.

import { h, count } from "../dom.js";
import fetchedTable from "./fetched.js";

const COLUMNS = [
  { title: "Count", num: true },
  { title: "Message" },
  { title: "Traceback" },
  { title: "Nodes" },
];

export default function exceptions(ctx) {
  return fetchedTable(ctx, {
    id: "exceptions-table",
    columns: COLUMNS,
    emptyText: "No exceptions.",
    path: "api/v1/exceptions",
    field: "exceptions",
    what: "exceptions",
    key: (live) => `${live.summary.run_id}:${live.summary.exception_count}`,
    row: (x) => h("tr", {},
      h("td", { class: "num" }, count(x.count)),
      h("td", { class: "wrap" }, x.msg),
      h("td", { class: "wrap" }, h("details", {}, h("summary", {}, "Traceback"), h("pre", {}, x.traceback))),
      h("td", { class: "wrap" }, x.nodes)),
  });
}
