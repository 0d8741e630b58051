// Logs tab: the master's recent log lines, polled while the tab is shown.

import { h, clock, empty } from "../dom.js";

const MAX_LINES = 2000;

export default function logs(ctx) {
  const list = h("div", { class: "logs", id: "logs", role: "log" });
  const follow = h("input", { type: "checkbox", checked: true, id: "logs-follow" });
  const root = h("div", { class: "card" },
    h("div", { class: "inline-form" }, h("label", {}, follow, " Follow new lines")),
    ctx.ui.logs ? list : empty("This master does not collect its logs for the UI."));
  let after = 0;
  let timer = 0;

  async function poll() {
    try {
      const data = await ctx.api.get(`api/v1/logs?after=${after}`);
      after = data.last_seq;
      for (const line of data.lines) {
        list.append(h("div", { class: line.level },
          h("time", {}, clock(line.time_ms)), `${line.level} ${line.target}: ${line.message}`));
      }
      while (list.childElementCount > MAX_LINES) list.firstElementChild.remove();
      if (data.lines.length && follow.checked) list.scrollTop = list.scrollHeight;
    } catch (e) {
      ctx.toast(`Cannot load logs: ${e.message}`, true);
    }
  }

  return {
    el: root,
    show() {
      if (!ctx.ui.logs) return;
      poll();
      timer = setInterval(poll, 2000);
    },
    hide() { clearInterval(timer); },
  };
}
