// Script tab: the script the next run uses (name, hash, user types, its
// files), a form to replace it (pick a file or paste the text, plus any
// data files it reads) and the recent changes. A script the master
// refuses keeps the current one; the refusal (with the script's
// file:line) shows here, under the form.

import { h, fill, table, empty, clock, bytes } from "../dom.js";

function isBusy(state) {
  return state === "spawning" || state === "running" || state === "stopping";
}

// UTF-8 text as is; anything else as base64 (the API's binary form).
async function fileContent(file) {
  const data = new Uint8Array(await file.arrayBuffer());
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(data);
  } catch {
    let binary = "";
    for (let i = 0; i < data.length; i += 0x8000) {
      binary += String.fromCharCode(...data.subarray(i, i + 0x8000));
    }
    return { base64: btoa(binary) };
  }
}

export default function scriptTab(ctx) {
  const name = h("code", { id: "script-name" });
  const hash = h("code", { id: "script-hash" });
  const types = h("span", { id: "script-types" });
  const files = h("ul", { id: "script-files-list", class: "plain" });
  const current = h("div", { class: "card" }, h("h3", {}, "Current script"),
    h("dl", { class: "pairs" },
      h("dt", {}, "Name"), h("dd", {}, name),
      h("dt", {}, "Hash"), h("dd", {}, hash),
      h("dt", {}, "User types"), h("dd", {}, types),
      h("dt", {}, "Files"), h("dd", {}, files)));

  const nameInput = h("input", { type: "text", id: "script-upload-name", placeholder: "shop.lua", required: true });
  const pick = h("input", { type: "file", id: "script-upload-file", accept: ".lua,text/plain" });
  const dataFiles = h("input", { type: "file", id: "script-upload-data", multiple: true });
  const text = h("textarea", { id: "script-upload-text", rows: 14, spellcheck: false, "aria-label": "Script text" });
  const submit = h("button", { type: "submit", id: "script-upload-submit", class: "primary" }, "Load script");
  const busyNote = h("p", { class: "note warn", id: "script-busy", hidden: true },
    "A run is going: stop it to change the script.");
  const error = h("pre", { class: "ext-error", id: "script-error", role: "alert", hidden: true });
  const done = h("p", { class: "note", id: "script-done", hidden: true });
  const form = h("form", { class: "ext-form", id: "script-form" },
    h("label", {}, "Script file", pick),
    h("label", {}, "Name", nameInput),
    h("label", {}, "Text", text),
    h("label", {}, "Data and .proto files it reads (optional)", dataFiles),
    h("p", {}, submit), busyNote, error, done);
  const change = h("div", { class: "card" }, h("h3", {}, "Change the script"),
    h("p", { class: "note" }, "The master loads it first: a script that does not load is refused and the current one stays. "
      + "A good one is used from the next run on, by every worker."), form);

  const { table: changesTable, tbody } = table(
    [{ title: "When" }, { title: "Who" }, { title: "Script" }, { title: "Hash" }], { id: "script-changes" });
  const noChanges = empty("No change since the master started.");
  const history = h("div", { class: "card" }, h("h3", {}, "Changes"),
    h("div", { class: "scroll" }, changesTable), noChanges);

  function render(s) {
    name.textContent = s.name;
    hash.textContent = s.hash.slice(0, 12);
    hash.title = s.hash;
    types.textContent = s.user_types.join(", ");
    fill(files, s.files.length
      ? s.files.map((f) => h("li", {}, h("code", {}, f.path), ` (${bytes(f.bytes)})`))
      : h("li", { class: "empty" }, "none uploaded"));
    if (!nameInput.value) nameInput.value = s.name;
    if (!text.value) text.value = s.text;
    fill(tbody, s.changes.slice().reverse().map((c) => h("tr", {},
      h("td", {}, clock(c.time_ms)), h("td", {}, c.who), h("td", {}, c.name),
      h("td", {}, h("code", { title: c.hash }, c.hash.slice(0, 12))))));
    noChanges.hidden = s.changes.length > 0;
  }

  async function load() {
    try {
      render(await ctx.api.get("api/v1/script"));
    } catch (e) {
      ctx.toast(`Cannot load the script: ${e.message}`, true);
    }
  }

  pick.addEventListener("change", async () => {
    const file = pick.files[0];
    if (!file) return;
    const content = await fileContent(file);
    if (typeof content !== "string") {
      error.textContent = `${file.name} is not UTF-8 text: a script must be.`;
      error.hidden = false;
      return;
    }
    error.hidden = true;
    nameInput.value = file.name;
    text.value = content;
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    done.hidden = true;
    submit.disabled = true;
    try {
      const body = { name: nameInput.value.trim(), text: text.value, files: {} };
      for (const file of dataFiles.files) body.files[file.name] = await fileContent(file);
      const answer = await ctx.api.put("api/v1/script", body);
      // The tab list is read once at load: a script with other views
      // needs a reload to show them.
      const ui = await ctx.api.get("api/v1/ui");
      const tabs = (list) => list.map((t) => t.id).join(" ");
      const reload = tabs(ui.tabs) !== tabs(ctx.ui.tabs) ? " Reload the page to see its views." : "";
      done.textContent = `${answer.message}.${reload}`;
      done.hidden = false;
      render({ ...answer.script, changes: (await ctx.api.get("api/v1/script")).changes });
      ctx.toast(answer.message);
    } catch (e) {
      // The refusal, with the script's file:line, where the user looks.
      error.textContent = e.message;
      error.hidden = false;
    } finally {
      submit.disabled = isBusy(ctx.latest?.summary?.state);
    }
  });

  return {
    el: h("div", {}, current, change, history),
    show: load,
    update(data, { newRun }) {
      const busy = isBusy(data.summary.state);
      busyNote.hidden = !busy;
      submit.disabled = busy;
      if (newRun) load();
    },
  };
}
