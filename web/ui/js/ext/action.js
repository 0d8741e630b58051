// A script action as a card: a form built from its typed fields (number,
// text, choice), a button, and the result (or the error) shown under it.
// The server checks every argument again before the handler runs; the
// browser's checks only save a round trip.

import { h, fill } from "../dom.js";

function numberInput(field) {
  const attrs = { type: "number", name: field.name, step: field.integer ? "1" : "any", inputmode: "decimal" };
  if (field.min !== null && field.min !== undefined) attrs.min = String(field.min);
  if (field.max !== null && field.max !== undefined) attrs.max = String(field.max);
  const el = h("input", attrs);
  if (field.default !== null && field.default !== undefined) el.value = String(field.default);
  return {
    el,
    value() {
      const text = el.value.trim();
      if (text === "") return undefined;
      const n = Number(text);
      return Number.isFinite(n) ? n : text;
    },
  };
}

function textInput(field) {
  const el = h("input", { type: "text", name: field.name, maxlength: String(field.max_length) });
  if (typeof field.default === "string") el.value = field.default;
  return {
    el,
    value() {
      if (el.value === "" && !field.required) return undefined;
      return el.value;
    },
  };
}

function choiceInput(field) {
  const options = field.choices.map((c) => h("option", { value: c }, c));
  if (!field.required) options.unshift(h("option", { value: "" }, "—"));
  const el = h("select", { name: field.name }, options);
  if (typeof field.default === "string") el.value = field.default;
  return { el, value: () => (el.value === "" && !field.required ? undefined : el.value) };
}

const INPUTS = { number: numberInput, text: textInput, choice: choiceInput };

/** The first problem the browser can see, or null. */
function check(field, value) {
  if (value === undefined) {
    const missing = field.required && (field.default === null || field.default === undefined);
    return missing ? `${field.label} is required.` : null;
  }
  if (field.type === "number") {
    if (typeof value !== "number") return `${field.label} must be a number.`;
    if (field.integer && !Number.isInteger(value)) return `${field.label} must be a whole number.`;
    if (field.min !== null && field.min !== undefined && value < field.min) return `${field.label} must be at least ${field.min}.`;
    if (field.max !== null && field.max !== undefined && value > field.max) return `${field.label} must be at most ${field.max}.`;
  }
  return null;
}

function showResult(box, result) {
  box.className = `ext-result ${result.success ? "ok" : "bad"}`;
  const data = result.data === null || result.data === undefined
    ? null : h("pre", {}, JSON.stringify(result.data, null, 2));
  fill(box, h("strong", {}, result.success ? "Done: " : "Failed: "), result.message, data);
}

function showError(box, message) {
  box.className = "ext-result bad";
  fill(box, h("strong", {}, "Error: "), message);
}

/** The card of one action: `ctx.api` posts it, `ctx.toast` is not used so
 *  the result stays where the user looks. */
export function actionCard(ctx, action) {
  const inputs = action.fields.map((field) => {
    const input = INPUTS[field.type](field);
    input.field = field;
    input.el.id = `action-${action.id}-${field.name}`;
    input.label = h("label", { for: input.el.id }, field.label, input.el);
    return input;
  });
  const submit = h("button", { type: "submit", class: "primary" }, action.title);
  const result = h("div", { class: "ext-result", id: `action-${action.id}-result`, role: "status", "aria-live": "polite" });
  const form = h("form", { class: "ext-form", id: `action-${action.id}`, novalidate: true },
    inputs.map((i) => i.label), h("div", { class: "form-actions" }, submit));

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const args = {};
    for (const input of inputs) {
      const value = input.value();
      const problem = check(input.field, value);
      input.el.setAttribute("aria-invalid", String(Boolean(problem)));
      if (problem) { showError(result, problem); return; }
      if (value !== undefined) args[input.field.name] = value;
    }
    submit.disabled = true;
    result.className = "ext-result";
    fill(result, "Running…");
    try {
      showResult(result, await ctx.api.post(`api/v1/ext/actions/${encodeURIComponent(action.id)}`, args));
    } catch (e) {
      // A refused argument names its field first ("n: must be >= 0").
      const named = inputs.find((i) => e.message.startsWith(`${i.field.name}: `));
      if (named) named.el.setAttribute("aria-invalid", "true");
      showError(result, e.message);
    } finally {
      submit.disabled = false;
    }
  });

  return h("div", { class: "card ext-action", id: `action-card-${action.id}` },
    h("h3", {}, action.title),
    action.description ? h("p", { class: "note" }, action.description) : null,
    form, result);
}
