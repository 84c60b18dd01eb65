// The mapping grid: one row per mapped field, reported to Python ~250 ms after the last
// keystroke (at once for a choice, a tick, an added or removed row). Plain DOM, no framework.
// Values are only ever set through .value / .textContent, never as HTML.

const TEXT = ["extract", "generate", "format", "default"];
// A field's settings, under its row (⋯): [name, label, kind, choices or placeholder].
const SETTINGS = [
  ["template", "Template", "text", "{{ first }} {{ last }}"],
  ["lookup", "Lookup", "lookup"],
  ["trim", "Trim", "check"],
  ["case", "Case", "select", ["none", "upper", "lower"]],
  ["split", "Split on", "text", ","],
  ["join", "Join with", "text", ", "],
  ["decimal", "Decimal mark", "select", ["", ",", "."]],
  ["timezone", "Time zone", "text", "Europe/Paris"],
  ["discard_if_empty", "Drop the row when empty", "check"],
  ["immutable", "Keep on update", "check"],
];
const DEFAULTS = { case: "none" };

function cell(tr, name) {
  return tr.querySelector(`[data-col="${name}"]`) || tr._more.querySelector(`[data-col="${name}"]`);
}

function rowsOf(el) {
  return [...el.querySelectorAll("tbody tr.main")].map((tr) => {
    const row = { ...tr._kept }; // settings of the field the grid does not show, kept as they are
    for (const name of TEXT) row[name] = cell(tr, name).value;
    row.type = cell(tr, "type").value;
    row.required = cell(tr, "required").dataset.own === "1";
    for (const [name, , kind] of SETTINGS) {
      const c = cell(tr, name);
      row[name] = kind === "check" ? c.checked : c.value;
    }
    return row;
  });
}

function settingsOf(el, r) {
  const more = document.createElement("tr");
  more.className = "more";
  const td = document.createElement("td");
  td.colSpan = 7;
  const box = document.createElement("div");
  box.className = "settings";
  for (const [name, label, kind, extra] of SETTINGS) {
    const wrap = document.createElement("label");
    wrap.className = `setting ${kind}`;
    const title = document.createElement("span");
    title.textContent = label;
    let c;
    if (kind === "check") {
      c = document.createElement("input");
      c.type = "checkbox";
      c.checked = !!r[name];
    } else if (kind === "select" || kind === "lookup") {
      c = document.createElement("select");
      const choices = kind === "lookup" ? ["", ...el._data.lookups] : extra;
      for (const v of choices) c.append(new Option(v || "—", v));
      if (r[name] && ![...c.options].some((o) => o.value === r[name])) c.append(new Option(r[name], r[name]));
      c.value = r[name] ?? DEFAULTS[name] ?? "";
    } else {
      c = document.createElement("input");
      c.value = r[name] ?? "";
      c.placeholder = extra;
      c.spellcheck = false;
    }
    c.dataset.col = name;
    c.setAttribute("aria-label", label);
    const why = document.createElement("div");
    why.className = "why";
    wrap.append(title, c, why);
    box.append(wrap);
  }
  td.append(box);
  more.append(td);
  const set = SETTINGS.some(([name, , kind]) =>
    kind === "check" ? !!r[name] : (r[name] ?? DEFAULTS[name] ?? "") !== (DEFAULTS[name] ?? ""),
  );
  more.hidden = !set;
  return more;
}

function send(el, now) {
  clearTimeout(el._timer);
  const go = () => el._setState("rows", { version: el._version, rows: rowsOf(el) });
  if (now) go();
  else el._timer = setTimeout(go, el._data.debounce);
}

function input(name, value, list) {
  const i = document.createElement("input");
  i.dataset.col = name;
  i.value = value ?? "";
  i.setAttribute("aria-label", name[0].toUpperCase() + name.slice(1));
  i.spellcheck = false;
  if (list) i.setAttribute("list", list);
  return i;
}

function button(text, title, label) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = "remove";
  b.textContent = text;
  b.title = title;
  b.setAttribute("aria-label", label);
  return b;
}

function rowOf(el, r) {
  const data = el._data;
  const tr = document.createElement("tr");
  tr.className = "main";
  tr._kept = r;
  tr._more = settingsOf(el, r);
  const td = (child, cls) => {
    const c = document.createElement("td");
    if (cls) c.className = cls;
    c.append(child);
    const why = document.createElement("div");
    why.className = "why";
    c.append(why);
    tr.append(c);
    return c;
  };
  td(input("extract", r.extract, `${data.id}-paths`));
  const generate = input("generate", r.generate, `${data.id}-fields`);
  td(generate);
  const type = document.createElement("select");
  type.dataset.col = "type";
  type.setAttribute("aria-label", "Type");
  for (const t of data.types) type.append(new Option(t, t));
  type.value = r.type || "string";
  td(type);
  td(input("format", r.format));
  td(input("default", r.default));
  const req = document.createElement("input");
  req.type = "checkbox";
  req.dataset.col = "required";
  req.setAttribute("aria-label", "Required");
  req.dataset.own = r.required ? "1" : "0";
  td(req, "center");
  const remove = button("✕", "Remove this field", "Remove this field");
  const more = button(
    "⋯",
    "This field's settings: template, lookup, cleanup, decimal mark, time zone",
    "Settings",
  );
  more.addEventListener("click", () => {
    tr._more.hidden = !tr._more.hidden;
  });
  const c = document.createElement("td");
  c.className = "actions";
  c.append(more, remove);
  tr.append(c);

  type.dataset.auto = r.generate ? "0" : "1"; // a row with a field keeps its type
  type.addEventListener("change", () => {
    type.dataset.auto = "0"; // picked by the analyst: the field no longer sets it
  });
  generate.addEventListener("input", () => {
    const spec = data_field(el, generate.value.trim());
    if (spec && type.dataset.auto === "1") type.value = spec.type; // the entity's type
  });
  req.addEventListener("change", () => {
    req.dataset.own = req.checked ? "1" : "0";
  });
  remove.addEventListener("click", () => {
    tr._more.remove();
    tr.remove();
    send(el, true);
  });
  return tr;
}

function data_field(el, name) {
  return el._data.fields.find((f) => f.name === name);
}

function fillList(el, id, options) {
  let list = el.querySelector(`#${CSS.escape(id)}`);
  if (!list) {
    list = document.createElement("datalist");
    list.id = id;
    el.querySelector(".grid").append(list);
  }
  const key = JSON.stringify(options);
  if (list._key === key) return;
  list._key = key;
  list.replaceChildren(
    ...options.map(([value, label]) => {
      const o = document.createElement("option");
      o.value = value;
      o.label = label;
      return o;
    }),
  );
}

// What Python says of each row: its problems, and whether the entity requires its field.
function showState(el) {
  const data = el._data;
  el.querySelectorAll("tbody tr.main").forEach((tr, n) => {
    const errors = data.errors[String(n)] || {};
    for (const name of [...TEXT, "type", ...SETTINGS.map((s) => s[0])]) {
      const c = cell(tr, name);
      const why = c.parentElement.querySelector(".why");
      why.textContent = errors[name] || "";
      c.classList.toggle("bad", !!errors[name]);
      if (errors[name] && tr._more.contains(c)) tr._more.hidden = false;
    }
    const lookup = cell(tr, "lookup"); // the job's lookups, as they are now
    const names = ["", ...data.lookups];
    if (lookup._names !== names.join("\n")) {
      const value = lookup.value;
      lookup.replaceChildren(...names.map((v) => new Option(v || "—", v)));
      if (value && !names.includes(value)) lookup.append(new Option(value, value));
      lookup.value = value;
      lookup._names = names.join("\n");
    }
    const req = cell(tr, "required");
    const spec = data_field(el, cell(tr, "generate").value.trim());
    const forced = !!(spec && spec.required);
    req.disabled = forced;
    req.checked = forced || req.dataset.own === "1";
    req.title = forced ? `${data.entity} requires ${spec.name}` : "Reject a record without it";
  });
  el.querySelector(".count").textContent = data.summary;
}

export default function ({ parentElement, data, setStateValue }) {
  const el = parentElement;
  el._data = data;
  el._setState = setStateValue;
  if (!el._wired) {
    el._wired = true;
    el.addEventListener("input", (e) => {
      if (e.target.matches("input[type=text], input:not([type])")) send(el, false);
    });
    el.addEventListener("change", (e) => {
      if (e.target.matches("select, input[type=checkbox]")) send(el, true);
    });
    el.querySelector(".add").addEventListener("click", () => {
      const tr = rowOf(el, { type: "string" });
      el.querySelector("tbody").append(tr, tr._more);
      cell(tr, "extract").focus();
      send(el, true);
    });
  }
  if (el._version !== data.version) {
    el._version = data.version;
    el.querySelector("tbody").replaceChildren(
      ...data.rows.flatMap((r) => {
        const tr = rowOf(el, r);
        return [tr, tr._more];
      }),
    );
  }
  fillList(el, `${data.id}-paths`, data.paths);
  fillList(el, `${data.id}-fields`, data.fields.map((f) => [f.name, f.label]));
  showState(el);
}
