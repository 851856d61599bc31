// Elements made from data: text always goes in as text (never parsed as HTML), so nothing a
// tenant stored (an event body, a receiver's answer, an endpoint's description) can run here.

// h("a", {href: "#/apps", class: "x", onclick: f, "aria-label": "..."}, child, ...): an element.
// A child is a string, a node, null (skipped) or an array of those.
export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "class") element.className = value;
    else if (name === "value") element.value = value;
    else if (name === "checked") element.checked = Boolean(value);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  append(element, children);
  return element;
}

// Replace an element's children (null, undefined and false are skipped, as in h).
export function fill(element, ...children) {
  element.replaceChildren();
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(element, child);
    else element.append(child instanceof Node ? child : String(child));
  }
}

// A table with a caption, its header row and one row per item; `columns` are
// [heading, cell(item) -> child, {numeric}?].
export function table(caption, columns, items, empty = "Nothing here.") {
  if (items.length === 0) return h("p", { class: "muted" }, empty);
  return h("div", { class: "table-wrap" },
    h("table", {},
      h("caption", {}, caption),
      h("thead", {}, h("tr", {}, columns.map(([heading, , options]) =>
        h("th", { scope: "col", class: options && options.numeric ? "num" : null }, heading)))),
      h("tbody", {}, items.map((item) => h("tr", {}, columns.map(([, cell, options]) =>
        h("td", { class: options && options.numeric ? "num" : null }, cell(item))))))));
}

export function status(value) {
  return h("span", { class: `status ${value}` }, value);
}

// A time for people: local, to the second; the exact value on hover.
export function when(iso) {
  if (!iso) return h("span", { class: "muted" }, "—");
  const date = new Date(iso);
  return h("time", { datetime: iso, title: iso }, date.toLocaleString());
}

export function pretty(value) {
  return h("pre", {}, JSON.stringify(value, null, 2));
}

export function facts(pairs) {
  return h("dl", { class: "facts" }, pairs.filter(Boolean).map(([name, value]) =>
    [h("dt", {}, name), h("dd", {}, value)]));
}

export function card(label, value, detail) {
  return h("div", { class: "card" }, h("span", { class: "value" }, value), label,
    detail ? h("div", { class: "muted" }, detail) : null);
}

// The value of each named field of a form, as text.
export function fields(form) {
  return Object.fromEntries(new FormData(form).entries());
}
