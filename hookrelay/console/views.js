// The console's screens. Each view draws into `main` from the API and returns what keeps it
// live: `refresh` (called when the app's log has news, and every few seconds while something it
// shows is still on its way) and `stop`. Buttons appear only where the caller's grants allow
// the call; the API refuses the rest anyway.
import { appPath, get, patch, post } from "./api.js";
import { card, facts, fields, fill, h, pretty, status, table, when } from "./dom.js";
import { failed, notify, setTrail } from "./ui.js";

const IN_FLIGHT = new Set(["pending", "sending", "retrying", "held"]);
const STATUSES = ["pending", "sending", "retrying", "held", "succeeded", "dead"];
const EXAMPLE_TYPES = ["job.queued", "job.started", "job.progress", "job.action_required",
  "job.completed", "job.failed", "job.cancelled"];
const PAGE = 50;
const BUSY_REFRESH_MS = 2000;
const LONG_POLL_S = 25;
const BULK_WATCH_MS = 120000;
const HOUR_MS = 3600000;
const APPS_REFRESH_MS = 10000;
const DAY_MS = 24 * HOUR_MS;

let me = null;

export function setCaller(found) {
  me = found;
}

export function caller() {
  return me;
}

const can = (grant) => me.grants.includes(grant);
const appHash = (app, rest = "") => `#/apps/${encodeURIComponent(app)}${rest}`;

// --- Keeping a view live -----------------------------------------------------------------
// The app's events are followed by long-poll (any event is news: a new delivery, a delivery
// dead or recovered); while the view shows something still on its way, it also refreshes
// every few seconds, since a retry's success is no event.

function live(app, refresh, busy) {
  const stopped = new AbortController();
  let queued = null;
  const soon = () => {
    if (queued === null) queued = setTimeout(() => { queued = null; refresh().catch(failed); }, 300);
  };
  (async () => {
    if (!can("read_events")) return;
    let after = null;
    while (!stopped.signal.aborted) {
      try {
        const query = { wait: LONG_POLL_S, limit: 100, after };
        const answer = await get(appPath(app, "/events", query), { signal: stopped.signal });
        if (answer.data.length) soon();
        after = answer.next_cursor || after;
      } catch (error) {
        if (stopped.signal.aborted) return;
        await new Promise((resolve) => setTimeout(resolve, 3000));
      }
    }
  })();
  const timer = setInterval(() => { if (busy()) soon(); }, BUSY_REFRESH_MS);
  return {
    refresh,
    stop() { stopped.abort(); clearInterval(timer); clearTimeout(queued); },
  };
}

// Runs an action from a button: disabled while it runs, its outcome said in the notice.
async function act(button, action, done) {
  button.disabled = true;
  try {
    const message = await action();
    if (message) notify(message);
    if (done) await done();
  } catch (error) {
    failed(error);
  } finally {
    button.disabled = false;
  }
}

function tabs(app, active) {
  const items = [["Endpoints", ""], ["Deliveries", "/deliveries"], ["Dead letters", "/dead"]];
  return h("ul", { class: "tabs" }, items.map(([label, rest]) => h("li", {},
    h("a", { href: appHash(app, rest), "aria-current": label === active ? "page" : null }, label))));
}

function appTrail(app, ...more) {
  const steps = me.app_id ? [] : [["Apps", "#/apps"]];
  return setTrail([...steps, [app.name || app.id, appHash(app.id)], ...more]);
}

function jobSearch(app) {
  return h("form", { role: "search", "aria-label": "Find a job", onsubmit: (event) => {
    event.preventDefault();
    location.hash = appHash(app, `/jobs/${encodeURIComponent(fields(event.target).job)}`);
  } },
  h("label", {}, "Job id", h("input", { name: "job", required: true, autocomplete: "off" })),
  h("button", { type: "submit" }, "Show the job"));
}

// --- Apps (the admin's) ---------------------------------------------------------------------

export async function apps(main, _params, query) {
  setTrail([["Apps"]]);
  const cursor = query.get("cursor");
  const page = await get(`/v1/apps?${new URLSearchParams({ limit: PAGE, ...(cursor ? { cursor } : {}) })}`);
  const body = h("div");
  const draw = async () => {
    const summaries = await Promise.all(page.data.map((app) => get(appPath(app.id, "/summary"))));
    const summaryOf = (app) => summaries[page.data.indexOf(app)];
    fill(body, table("Every app, with its failing endpoints and dead letters", [
      ["App", (app) => h("a", { href: appHash(app.id) }, app.name)],
      ["Id", (app) => h("span", { class: "mono" }, app.uid || app.id)],
      ["Endpoints", (app) => summaryOf(app).endpoints.total, { numeric: true }],
      ["Failing", (app) => summaryOf(app).endpoints.failing, { numeric: true }],
      ["Disabled", (app) => summaryOf(app).endpoints.disabled, { numeric: true }],
      ["Dead letters", (app) => {
        const lost = summaryOf(app).lost;
        const label = `${lost.count}${lost.more ? "+" : ""}`;
        return lost.count ? h("a", { href: appHash(app.id, "/dead") }, label) : label;
      }, { numeric: true }],
    ], page.data, "No apps yet: create one with POST /v1/apps."));
  };
  await draw();
  fill(main, h("h1", {}, "Apps"), body, pager(page, "#/apps"));
  // Every app's news would be a long-poll per app: the counts are asked again instead.
  const timer = setInterval(() => draw().catch(failed), APPS_REFRESH_MS);
  return { refresh: draw, stop() { clearInterval(timer); } };
}

function pager(page, hash, query = {}) {
  if (!page.next_cursor) return null;
  const next = new URLSearchParams({ ...query, cursor: page.next_cursor });
  return h("div", { class: "pager" }, h("a", { href: `${hash}?${next}` }, "Older →"));
}

// --- An app's endpoints -------------------------------------------------------------------

export async function endpoints(main, [appId]) {
  const app = await get(appPath(appId));
  appTrail(app);
  const summaryBox = h("div", { class: "cards" });
  const list = h("div");
  const draw = async () => {
    const [summary, page] = await Promise.all([
      get(appPath(app.id, "/summary")), get(appPath(app.id, "/endpoints", { limit: 250 })),
    ]);
    fill(summaryBox,
      card("endpoints", summary.endpoints.total),
      card("failing", summary.endpoints.failing),
      card("disabled", summary.endpoints.disabled),
      card("paused", summary.endpoints.paused),
      card("dead letters still lost", `${summary.lost.count}${summary.lost.more ? "+" : ""}`));
    fill(list, table("The app's endpoints", [
      ["URL", (e) => h("a", { href: appHash(app.id, `/endpoints/${e.id}`), class: "mono" }, e.url)],
      ["Status", (e) => [status(e.status), e.disabled_reason ? h("div", { class: "muted" }, e.disabled_reason) : null]],
      ["Event types", (e) => (e.event_types || ["every type"]).join(", ")],
      ["Description", (e) => e.description],
    ], page.data, "No endpoints yet."));
  };
  await draw();
  fill(main, h("h1", {}, app.name), tabs(app.id, "Endpoints"), summaryBox, jobSearch(app.id),
    h("h2", {}, "Endpoints"), list, can("manage_endpoints") ? newEndpointForm(app.id, draw) : null);
  return live(app.id, draw, () => false);
}

function newEndpointForm(app, done) {
  const shown = h("div", { "aria-live": "polite" });
  const form = h("form", { class: "stacked", onsubmit: (event) => {
    event.preventDefault();
    const values = fields(form);
    act(form.querySelector("button"), async () => {
      const made = await post(appPath(app, "/endpoints"), {
        url: values.url,
        ...(values.types.trim() ? { event_types: splitList(values.types) } : {}),
        ...(values.description ? { description: values.description } : {}),
      });
      form.reset();
      fill(shown, secretBox("The new endpoint's signing secret (shown this once here)", made.secret));
      return `Endpoint ${made.url} registered.`;
    }, done);
  } },
  h("label", {}, "URL", h("input", { name: "url", type: "url", required: true })),
  h("label", {}, "Event types (comma separated; empty for every type)", h("input", { name: "types" })),
  h("label", {}, "Description", h("input", { name: "description" })),
  h("button", { type: "submit", class: "primary" }, "Register the endpoint"));
  return h("fieldset", {}, h("legend", {}, "Register an endpoint"), form, shown);
}

function splitList(text) {
  return text.split(",").map((part) => part.trim()).filter(Boolean);
}

function secretBox(label, secret) {
  return h("div", { class: "secret", role: "region", "aria-label": label },
    h("div", {}, label), h("code", { id: "secret-value" }, secret));
}

// --- One endpoint --------------------------------------------------------------------------

export async function endpoint(main, [appId, endpointId]) {
  const app = await get(appPath(appId));
  const path = appPath(app.id, `/endpoints/${encodeURIComponent(endpointId)}`);
  let found = await get(path);
  appTrail(app, [found.url]);
  const about = h("div");
  const health = h("div");
  const controls = h("div", { class: "actions" });
  let stats = null;
  const draw = async () => {
    stats = await get(`${path}/stats`);
    found = await get(path);
    fill(about, facts([
      ["Status", [status(found.status), found.disabled_reason ? ` — ${found.disabled_reason}` : ""]],
      ["Failing since", when(stats.failing_since)],
      ["Event types", (found.event_types || ["every type"]).join(", ")],
      ["Description", found.description || "—"],
      ["Signing", found.signing],
      ["Rate limit", found.rate_limit_per_s ? `${found.rate_limit_per_s}/s` : "none"],
      ["Headers", Object.keys(found.headers).length ? Object.keys(found.headers).join(", ") : "none"],
      ["Id", h("span", { class: "mono" }, found.id)],
    ]));
    const rate = (window) => window.success_rate === null ? "—" : `${Math.round(window.success_rate * 1000) / 10}%`;
    fill(health, h("div", { class: "cards" },
      card("success, last hour", rate(stats.last_hour), `${stats.last_hour.attempts} attempts`),
      card("success, last day", rate(stats.last_day), `${stats.last_day.attempts} attempts`),
      card("waiting", `${stats.waiting.count}${stats.waiting.more ? "+" : ""}`,
        stats.waiting.oldest_at ? ["oldest ", when(stats.waiting.oldest_at)] : null),
      card("dead letters still lost", `${stats.lost.count}${stats.lost.more ? "+" : ""}`,
        stats.lost.count ? h("a", { href: appHash(app.id, `/dead?endpoint_id=${found.id}`) }, "see them") : null)));
    drawControls();
  };
  const drawControls = () => {
    const buttons = [];
    if (can("manage_endpoints") && found.status === "active") {
      buttons.push(h("button", { type: "button", onclick: (e) => act(e.target, async () => {
        await patch(path, { status: "paused" });
        return "Paused: deliveries wait until you resume.";
      }, draw) }, "Pause"));
    }
    if (can("manage_endpoints") && found.status === "paused") {
      buttons.push(h("button", { type: "button", class: "primary", onclick: (e) => act(e.target, async () => {
        await patch(path, { status: "active" });
        return "Resumed: held deliveries are on their way.";
      }, draw) }, "Resume"));
    }
    if (can("read_secrets")) {
      buttons.push(h("button", { type: "button", onclick: (e) => act(e.target, async () => {
        const secret = await get(`${path}/secret`);
        fill(secretArea, secretBox("Signing secret", secret.secret));
      }) }, "Reveal the secret"));
    }
    if (can("manage_endpoints") && can("read_secrets")) {
      buttons.push(h("button", { type: "button", class: "danger", onclick: (e) => {
        if (!confirm("Rotate the signing secret? The old one keeps signing beside the new one for a grace period.")) return;
        act(e.target, async () => {
          const rotated = await post(`${path}/rotate-secret`);
          fill(secretArea, secretBox("The new signing secret", rotated.secret));
          return "Secret rotated.";
        });
      } }, "Rotate the secret"));
    }
    buttons.push(h("a", { href: appHash(app.id, `/deliveries?endpoint_id=${found.id}`) }, "Its deliveries"));
    fill(controls, ...buttons);
    fill(enabling, found.status === "disabled" && can("manage_endpoints") ?
      enableForm(path, found, stats, draw) : null);
  };
  const secretArea = h("div", { "aria-live": "polite" });
  const enabling = h("div");
  await draw();
  fill(main, h("h1", { class: "mono" }, found.url), tabs(app.id, "Endpoints"),
    controls, enabling, secretArea, h("h2", {}, "Health"), health, h("h2", {}, "Settings"), about,
    can("replay") ? recoverForm(path, found, draw) : null,
    can("send_test") ? exampleForm(app.id, path) : null,
    can("manage_endpoints") ? editForm(path, () => found, draw) : null);
  return live(app.id, draw, () => false);
}

// A disabled endpoint is enabled again, and in the same step offered what it missed: its dead
// deliveries made since an hour before it began failing (a delivery is made before its first
// attempt fails, by its time in the queue), or in the last day if that is not known, re-sent
// once it is active.
function enableForm(path, found, stats, done) {
  const began = stats.failing_since ? Date.parse(stats.failing_since) - HOUR_MS : Date.now() - DAY_MS;
  const since = new Date(began).toISOString();
  const form = h("form", { onsubmit: (event) => {
    event.preventDefault();
    const recover = can("replay") && form.querySelector("input[name=recover]").checked;
    act(form.querySelector("button"), async () => {
      await patch(path, { status: "active" });
      if (!recover) return "Enabled.";
      const sent = await post(`${path}/recover`, { since });
      return `Enabled, and ${sent.replayed} dead deliveries it missed are on their way again.`;
    }, done);
  } },
  can("replay") ? h("label", { class: "inline" },
    h("input", { type: "checkbox", name: "recover", checked: true }),
    ["Also re-send the dead deliveries it missed since ", when(since)]) : null,
  h("button", { type: "submit", class: "primary" }, "Enable"));
  return h("fieldset", {}, h("legend", {}, "Disabled"),
    h("p", {}, found.disabled_reason || "It was disabled."), form);
}

function recoverForm(path, found, done) {
  const outcome = h("p", { "aria-live": "polite" });
  const form = h("form", { onsubmit: (event) => event.preventDefault() },
    h("label", {}, "Since", h("select", { name: "since" },
      ["1h", "6h", "24h", "7d"].map((d) => h("option", { value: d }, `the last ${d}`)))),
    h("button", { type: "button", onclick: (e) => act(e.target, async () => {
      const counted = await post(`${path}/recover`, { since: fields(form).since, dry_run: true });
      outcome.textContent = `${counted.matched} still lost in that window; ${counted.replayable} can be sent.`;
    }) }, "Count (dry run)"),
    h("button", { type: "button", class: "primary", onclick: (e) => act(e.target, async () => {
      const sent = await post(`${path}/recover`, { since: fields(form).since });
      outcome.textContent = `${sent.replayed} sent again.`;
      return `Recovering ${sent.replayed} deliveries.`;
    }, done) }, "Recover"));
  return h("fieldset", {}, h("legend", {}, "Recover what it missed"),
    h("p", { class: "muted" }, "Re-sends this endpoint's dead deliveries that no replay has recovered yet, with their original webhook-id."),
    form, outcome);
}

function exampleForm(app, path) {
  const outcome = h("p", { "aria-live": "polite" });
  const form = h("form", { onsubmit: (event) => {
    event.preventDefault();
    act(form.querySelector("button"), async () => {
      const sent = await post(`${path}/send-example`, { type: fields(form).type });
      fill(outcome, "Sent: ",
        h("a", { href: appHash(app, `/deliveries/${sent.delivery_id}`) }, "follow its delivery"));
      return `An example ${sent.type} is on its way.`;
    });
  } },
  h("label", {}, "Event type", h("select", { name: "type" },
    EXAMPLE_TYPES.map((t) => h("option", { value: t, selected: t === "job.completed" }, t)))),
  h("button", { type: "submit" }, "Send an example"));
  return h("fieldset", {}, h("legend", {}, "Send a test event"), form, outcome);
}

function editForm(path, current, done) {
  const found = current();
  const headerLines = Object.entries(found.headers).map(([k, v]) => `${k}: ${v}`).join("\n");
  const form = h("form", { class: "stacked", onsubmit: (event) => {
    event.preventDefault();
    const values = fields(form);
    act(form.querySelector("button[type=submit]"), async () => {
      const headers = Object.fromEntries(values.headers.split("\n").map((line) => line.trim())
        .filter(Boolean).map((line) => {
          const at = line.indexOf(":");
          return [line.slice(0, at).trim(), line.slice(at + 1).trim()];
        }));
      await patch(path, {
        url: values.url,
        description: values.description,
        event_types: values.types.trim() ? splitList(values.types) : null,
        headers,
        rate_limit_per_s: values.rate ? Number(values.rate) : null,
      });
      return "Saved.";
    }, done);
  } },
  h("label", {}, "URL", h("input", { name: "url", type: "url", required: true, value: found.url })),
  h("label", {}, "Event types (comma separated; empty for every type)",
    h("input", { name: "types", value: (found.event_types || []).join(", ") })),
  h("label", {}, "Description", h("input", { name: "description", value: found.description })),
  h("label", {}, "Headers (one per line, Name: value)",
    h("textarea", { name: "headers" }, headerLines)),
  h("label", {}, "Rate limit (deliveries per second; empty for none)",
    h("input", { name: "rate", type: "number", min: 1, value: found.rate_limit_per_s || "" })),
  h("button", { type: "submit", class: "primary" }, "Save"));
  return h("fieldset", {}, h("legend", {}, "Change the endpoint"), form);
}

// --- Deliveries ----------------------------------------------------------------------------

function deliveryColumns(app, endpointsById, select) {
  return [
    select,
    ["Made", (d) => h("a", { href: appHash(app, `/deliveries/${d.id}`) }, when(d.created_at))],
    ["Event type", (d) => d.event_type],
    ["Endpoint", (d) => h("span", { class: "mono" }, (endpointsById[d.endpoint_id] || {}).url || d.endpoint_id)],
    ["Status", (d) => [status(d.status), d.recovered_by ? h("div", { class: "muted" }, "recovered") : null]],
    ["Attempts", (d) => d.attempt_count, { numeric: true }],
    ["Last answer", (d) => d.last_error || (d.last_status_code ? String(d.last_status_code) : "—")],
  ].filter(Boolean);
}

async function endpointsById(app) {
  const page = await get(appPath(app, "/endpoints", { limit: 250 }));
  return Object.fromEntries(page.data.map((e) => [e.id, e]));
}

function filterForm(app, hash, query, byId, withStatus) {
  const values = Object.fromEntries(query.entries());
  const toLocal = (iso) => iso ? iso.slice(0, 16) : "";
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
    Object.values(byId).map((e) => h("option", { value: e.id, selected: values.endpoint_id === e.id }, e.url)))),
  h("label", {}, "Event type", h("input", { name: "event_type", value: values.event_type || "" })),
  withStatus ? h("label", {}, "Job id", h("input", { name: "job_id", value: values.job_id || "" })) : null,
  h("label", {}, "Since", h("input", { name: "since", type: "datetime-local", value: toLocal(values.since) })),
  h("label", {}, "Until", h("input", { name: "until", type: "datetime-local", value: toLocal(values.until) })),
  h("button", { type: "submit" }, "Filter"),
  h("a", { href: hash }, "Clear"));
  return form;
}

export async function deliveries(main, [appId], query) {
  const app = await get(appPath(appId));
  appTrail(app, ["Deliveries"]);
  const byId = await endpointsById(app.id);
  const hash = appHash(app.id, "/deliveries");
  const list = h("div");
  let page = null;
  const draw = async () => {
    page = await get(appPath(app.id, "/deliveries", { limit: PAGE, ...Object.fromEntries(query) }));
    fill(list, table("Deliveries, newest first", deliveryColumns(app.id, byId, null), page.data,
      "No delivery matches."), pager(page, hash, Object.fromEntries([...query].filter(([k]) => k !== "cursor"))));
  };
  await draw();
  fill(main, h("h1", {}, "Deliveries"), tabs(app.id, "Deliveries"),
    filterForm(app.id, hash, query, byId, true), list);
  return live(app.id, draw, () => page.data.some((d) => IN_FLIGHT.has(d.status)));
}

export async function delivery(main, [appId, deliveryId]) {
  const app = await get(appPath(appId));
  appTrail(app, ["Deliveries", appHash(app.id, "/deliveries")], [deliveryId]);
  const box = h("div");
  let found = null;
  const draw = async () => {
    found = await get(appPath(app.id, `/deliveries/${encodeURIComponent(deliveryId)}`));
    const event = await get(appPath(app.id, `/events/${found.event_id}`));
    fill(box,
      facts([
        ["Status", status(found.status)],
        ["Event", [event.type, " ", h("span", { class: "mono" }, event.id)]],
        event.job_id ? ["Job", h("a", { href: appHash(app.id, `/jobs/${encodeURIComponent(event.job_id)}`) }, event.job_id)] : null,
        ["Endpoint", h("a", { href: appHash(app.id, `/endpoints/${found.endpoint_id}`), class: "mono" }, found.endpoint_id)],
        ["Made", when(found.created_at)],
        ["Next attempt", when(found.next_attempt_at)],
        found.replay_of ? ["Replay of", h("a", { href: appHash(app.id, `/deliveries/${found.replay_of}`) }, found.replay_of)] : null,
        found.recovered_by ? ["Recovered by", h("a", { href: appHash(app.id, `/deliveries/${found.recovered_by}`) }, found.recovered_by)] : null,
      ]),
      can("replay") ? h("div", { class: "actions" }, h("button", { type: "button", class: "primary",
        onclick: (e) => act(e.target, async () => {
          const replayed = await post(appPath(app.id, `/deliveries/${found.id}/replay`));
          location.hash = appHash(app.id, `/deliveries/${replayed.id}`);
          return "Replayed as a new delivery with the same webhook-id.";
        }) }, "Replay")) : null,
      h("h2", {}, `Attempts (${found.attempts.length})`),
      table("Every attempt, in order", [
        ["#", (a) => a.attempt_number, { numeric: true }],
        ["Started", (a) => when(a.started_at)],
        ["Took", (a) => `${a.duration_ms} ms`, { numeric: true }],
        ["Answer", (a) => a.status_code ? String(a.status_code) : "—"],
        ["Error", (a) => a.error_kind ? [h("strong", {}, a.error_kind), " ", a.error_message || ""] : "—"],
        ["Response", (a) => [
          Object.keys(a.response_headers || {}).length ? pretty(a.response_headers) : null,
          a.response_body ? h("pre", {}, a.response_body) : null]],
      ], found.attempts, "No attempt yet."),
      h("h2", {}, "Event body"), pretty(event.data));
  };
  await draw();
  fill(main, h("h1", {}, "Delivery"), tabs(app.id, "Deliveries"), box);
  return live(app.id, draw, () => IN_FLIGHT.has(found.status));
}

// --- Dead letters: find, count, replay, watch them succeed ---------------------------------

export async function dead(main, [appId], query) {
  const app = await get(appPath(appId));
  appTrail(app, ["Dead letters"]);
  const byId = await endpointsById(app.id);
  const hash = appHash(app.id, "/dead");
  const filters = Object.fromEntries([...query].filter(([k]) => k !== "cursor"));
  const selected = new Set();
  const watched = new Set(); // replays sent one by one from here, until they end
  let bulkUntil = 0; // after a bulk replay, refreshed until the list is empty or this time
  const list = h("div");
  const progress = h("p", { "aria-live": "polite", id: "replay-progress" });
  let page = null;
  const selectColumn = can("replay") ? [
    h("span", { class: "visually-hidden" }, "Select"),
    (d) => h("input", { type: "checkbox", "aria-label": `Select the delivery made ${d.created_at}`,
      checked: selected.has(d.id), onchange: (event) => {
        if (event.target.checked) selected.add(d.id); else selected.delete(d.id);
        drawButtons();
      } }),
  ] : null;
  const buttons = h("div", { class: "actions" });
  const drawButtons = () => {
    if (!can("replay")) return fill(buttons);
    fill(buttons,
      h("button", { type: "button", onclick: () => {
        const all = selected.size === page.data.length;
        for (const d of page.data) { if (all) selected.delete(d.id); else selected.add(d.id); }
        draw().catch(failed);
      } }, "Select all on this page"),
      h("button", { type: "button", disabled: selected.size === 0, class: "primary", onclick: (e) => act(e.target, async () => {
        const ids = [...selected];
        for (const id of ids) {
          const replayed = await post(appPath(app.id, `/deliveries/${id}/replay`));
          watched.add(replayed.id);
          selected.delete(id);
        }
        return `Replaying ${ids.length} selected.`;
      }, draw) }, `Replay selected (${selected.size})`),
      h("button", { type: "button", onclick: (e) => act(e.target, async () => {
        const counted = await post(appPath(app.id, "/deliveries/replay"), { ...bodyOf(filters), dry_run: true });
        progress.textContent = `Dry run: ${counted.matched} still lost match these filters; ${counted.replayable} can be sent (none was).`;
      }) }, "Count every match (dry run)"),
      h("button", { type: "button", onclick: (e) => act(e.target, async () => {
        const sent = await post(appPath(app.id, "/deliveries/replay"), bodyOf(filters));
        bulkUntil = Date.now() + BULK_WATCH_MS;
        return `Replaying every match: ${sent.replayed} sent again.`;
      }, draw) }, "Replay every match"));
  };
  const draw = async () => {
    page = await get(appPath(app.id, "/deliveries", { ...filters, status: "dead", lost: "true", limit: PAGE, cursor: query.get("cursor") }));
    for (const id of [...watched]) {
      const replay = await get(appPath(app.id, `/deliveries/${id}`));
      if (!IN_FLIGHT.has(replay.status)) watched.delete(id);
    }
    const shown = new Set(page.data.map((d) => d.id));
    for (const id of [...selected]) if (!shown.has(id)) selected.delete(id);
    fill(list, table("Dead deliveries still lost, newest first",
      deliveryColumns(app.id, byId, selectColumn), page.data, "No dead letters: every dead delivery was recovered."),
    pager(page, hash, filters));
    drawButtons();
    if (page.data.length === 0) bulkUntil = 0;
    if (watched.size) progress.textContent = `${watched.size} replays on their way…`;
    else if (bulkUntil) progress.textContent = `${page.data.length}${page.next_cursor ? "+" : ""} still lost; replays on their way…`;
    else if (page.data.length === 0 && progress.textContent.includes("on their way")) progress.textContent = "Every replay has succeeded.";
  };
  await draw();
  fill(main, h("h1", {}, "Dead letters"), tabs(app.id, "Dead letters"),
    h("p", { class: "muted" }, "Dead deliveries that no replay has recovered. A replay is a new delivery with the original's webhook-id; once it succeeds the original leaves this list."),
    filterForm(app.id, hash, query, byId, false), buttons, progress, list);
  return live(app.id, draw, () => watched.size > 0 || Date.now() < bulkUntil);
}

function bodyOf(filters) {
  const body = {};
  for (const name of ["endpoint_id", "event_type", "since", "until"]) {
    if (filters[name]) body[name] = filters[name];
  }
  return body;
}

// --- A job ---------------------------------------------------------------------------------

export async function job(main, [appId, jobId]) {
  const app = await get(appPath(appId));
  appTrail(app, [`Job ${jobId}`]);
  const box = h("div");
  let deliveriesOfJob = [];
  const draw = async () => {
    const [state, events, sent] = await Promise.all([
      get(appPath(app.id, `/jobs/${encodeURIComponent(jobId)}`)),
      get(appPath(app.id, "/events", { job_id: jobId, limit: 250 })),
      get(appPath(app.id, "/deliveries", { job_id: jobId, limit: 250 })),
    ]);
    deliveriesOfJob = sent.data;
    const moments = [
      ...events.data.map((e) => ({ at: e.created_at, what: [h("strong", {}, e.type), " recorded ",
        h("span", { class: "mono" }, e.id)] })),
      ...sent.data.map((d) => ({ at: d.finished_at || d.created_at, what: [
        h("a", { href: appHash(app.id, `/deliveries/${d.id}`) }, "delivery"), ` of ${d.event_type} `,
        status(d.status), ` after ${d.attempt_count} attempt${d.attempt_count === 1 ? "" : "s"}`] })),
    ].sort((a, b) => a.at.localeCompare(b.at));
    fill(box,
      facts([
        ["State", status(state.state)],
        state.progress ? ["Progress", `${state.progress.percent ?? "—"}% ${state.progress.message || ""}`] : null,
        ["Started", when(state.started_at)],
        ["Finished", when(state.finished_at)],
        ["Events", String(state.event_count)],
      ]),
      state.error ? [h("h2", {}, "Error"), pretty(state.error)] : null,
      state.output !== undefined && state.output !== null ? [h("h2", {}, "Output"), pretty(state.output)] : null,
      h("h2", {}, "Timeline"),
      moments.length ? h("ol", { class: "timeline" }, moments.map((m) => h("li", {}, when(m.at), " ", m.what))) :
        h("p", { class: "muted" }, "Nothing yet."));
  };
  await draw();
  fill(main, h("h1", {}, `Job ${jobId}`), tabs(app.id, null), box);
  return live(app.id, draw, () => deliveriesOfJob.some((d) => IN_FLIGHT.has(d.status)));
}
