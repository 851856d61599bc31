// Deliveries: filtered and paged, newest first; one delivery with its event and every attempt.
import { ApiError, appPath, get, post } from "./api.js";
import {
  act, appHash, appTrail, can, endpointsById, IN_FLIGHT, live, PAGE, pager, tabs,
} from "./common.js";
import { facts, fields, fill, h, pretty, status, table, when } from "./dom.js";

const STATUSES = ["pending", "sending", "retrying", "held", "succeeded", "dead"];

// The columns of a list of deliveries; `select`, if given, is a first column of checkboxes.
export function deliveryColumns(app, endpoints, select) {
  return [
    select,
    ["Made", (d) => h("a", { href: appHash(app, "deliveries", d.id) }, when(d.created_at))],
    ["Event type", (d) => d.event_type],
    ["Endpoint", (d) => h("span", { class: "mono" }, (endpoints[d.endpoint_id] || {}).url || d.endpoint_id)],
    ["Status", (d) => [status(d.status), d.replay_of ? h("span", { class: "tag" }, "replay") : null,
      d.recovered_by ? h("div", { class: "muted" }, "recovered") : null]],
    ["Attempts", (d) => d.attempt_count, { numeric: true }],
    ["Last answer", (d) => d.last_error || (d.last_status_code ? String(d.last_status_code) : "—")],
  ].filter(Boolean);
}

// A datetime-local field's value (the browser's own time zone) for an RFC 3339 time.
function localInput(iso) {
  if (!iso) return "";
  const at = new Date(iso);
  const two = (n) => String(n).padStart(2, "0");
  return `${at.getFullYear()}-${two(at.getMonth() + 1)}-${two(at.getDate())}` +
    `T${two(at.getHours())}:${two(at.getMinutes())}`;
}

// The filters of a list of deliveries, kept in the address (so a filtered list can be shared).
export function filterForm(hash, query, endpoints, withStatus) {
  const values = Object.fromEntries(query.entries());
  const form = h("form", { "aria-label": "Filters", onsubmit: (event) => {
    event.preventDefault();
    const chosen = Object.fromEntries(Object.entries(fields(form)).filter(([, v]) => v));
    for (const name of ["since", "until"]) {
      if (chosen[name]) chosen[name] = new Date(chosen[name]).toISOString();
    }
    location.hash = `${hash}?${new URLSearchParams(chosen)}`;
  } },
  withStatus ? h("label", {}, "Status", h("select", { name: "status" },
    h("option", { value: "" }, "any"),
    STATUSES.map((s) => h("option", { value: s, selected: values.status === s }, s)))) : null,
  h("label", {}, "Endpoint", h("select", { name: "endpoint_id" },
    h("option", { value: "" }, "any"),
    Object.values(endpoints).map((e) =>
      h("option", { value: e.id, selected: values.endpoint_id === e.id }, e.url)))),
  h("label", {}, "Event type", h("input", { name: "event_type", value: values.event_type || "" })),
  withStatus ? h("label", {}, "Job id", h("input", { name: "job_id", value: values.job_id || "" })) : null,
  h("label", {}, "Since", h("input", { name: "since", type: "datetime-local", value: localInput(values.since) })),
  h("label", {}, "Until", h("input", { name: "until", type: "datetime-local", value: localInput(values.until) })),
  h("button", { type: "submit" }, "Filter"),
  h("a", { href: hash }, "Clear"));
  return form;
}

export async function deliveries(screen, [appId], query) {
  const app = await get(appPath(appId));
  appTrail(app, ["Deliveries"]);
  const endpoints = await endpointsById(app.id);
  const hash = appHash(app.id, "deliveries");
  const filters = Object.fromEntries([...query].filter(([k]) => k !== "cursor"));
  const list = h("div");
  let page = null;
  const draw = async () => {
    page = await get(appPath(app.id, "/deliveries", { limit: PAGE, ...Object.fromEntries(query) }));
    fill(list, table("Deliveries, newest first", deliveryColumns(app.id, endpoints, null), page.data,
      "No delivery matches."), pager(page, hash, filters, query.has("cursor")));
  };
  await draw();
  fill(screen, h("h1", {}, "Deliveries"), tabs(app.id, "Deliveries"),
    filterForm(hash, query, endpoints, true), list);
  return live(app.id, draw, () => page.data.some((d) => IN_FLIGHT.has(d.status)));
}

export async function delivery(screen, [appId, deliveryId]) {
  const app = await get(appPath(appId));
  appTrail(app, ["Deliveries", appHash(app.id, "deliveries")], [deliveryId]);
  const box = h("div");
  let found = null;
  const link = (label, ...rest) => h("a", { href: appHash(app.id, ...rest) }, label);
  // What a delivery belongs to never changes: read once. Either may be gone (an endpoint
  // deleted meanwhile) or out of the caller's reach; the delivery is shown all the same.
  const optional = (path) => get(path).catch((error) => {
    if (error instanceof ApiError && (error.status === 404 || error.status === 403)) return null;
    throw error;
  });
  found = await get(appPath(app.id, `/deliveries/${encodeURIComponent(deliveryId)}`));
  const [event, to] = await Promise.all([
    can("read_events") ? optional(appPath(app.id, `/events/${encodeURIComponent(found.event_id)}`)) : null,
    optional(appPath(app.id, `/endpoints/${encodeURIComponent(found.endpoint_id)}`)),
  ]);
  const draw = async () => {
    found = await get(appPath(app.id, `/deliveries/${encodeURIComponent(deliveryId)}`));
    fill(box,
      facts([
        ["Status", status(found.status)],
        ["Event", [found.event_type || "", " ", h("span", { class: "mono" }, found.event_id)]],
        event && event.job_id ? ["Job", link(event.job_id, "jobs", event.job_id)] : null,
        ["Endpoint", h("span", { class: "mono" },
          link(to ? to.url : found.endpoint_id, "endpoints", found.endpoint_id))],
        ["Made", when(found.created_at)],
        ["Next attempt", when(found.next_attempt_at)],
        found.replay_of ? ["Replay of", link(found.replay_of, "deliveries", found.replay_of)] : null,
        found.recovered_by ? ["Recovered by", link(found.recovered_by, "deliveries", found.recovered_by)] : null,
      ]),
      h("h2", {}, `Attempts (${found.attempts.length})`),
      table("Every attempt, in order", [
        ["#", (a) => a.attempt_number, { numeric: true }],
        ["Started", (a) => when(a.started_at)],
        ["Took", (a) => `${a.duration_ms} ms`, { numeric: true }],
        ["Answer", (a) => a.status_code ? String(a.status_code) : "—"],
        ["Error", (a) => a.error_kind ? [h("strong", {}, a.error_kind), " ", a.error_message || ""] : "—"],
        ["Response", (a) => [
          Object.keys(a.response_headers || {}).length ?
            [h("div", { class: "muted" }, "headers"), pretty(a.response_headers)] : null,
          a.response_body ? [h("div", { class: "muted" }, "body"), h("pre", {}, a.response_body)] : null]],
      ], found.attempts, "No attempt yet."),
      event ? [h("h2", {}, "Event body"), pretty(event.data)] : null);
  };
  await draw();
  const replay = can("replay") ? h("div", { class: "actions" }, h("button", { type: "button",
    class: "primary", onclick: (e) => {
      const again = found.status === "succeeded" || found.recovered_by;
      if (again && !confirm("It was delivered already. Send it again?")) return;
      act(e.target, async () => {
        const replayed = await post(appPath(app.id, `/deliveries/${encodeURIComponent(found.id)}/replay`));
        location.hash = appHash(app.id, "deliveries", replayed.id);
        return "Replayed as a new delivery with the same webhook-id.";
      });
    } }, "Replay")) : null;
  fill(screen, h("h1", {}, "Delivery"), tabs(app.id, "Deliveries"), replay, box);
  return live(app.id, draw, () => IN_FLIGHT.has(found.status));
}
