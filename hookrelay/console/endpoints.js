// An app's endpoints, and one endpoint: its health, what may be done with it (pause, resume,
// enable and recover what it missed, reveal or rotate its secret, recover a window, send an
// example, change it).
import { appPath, get, patch, post } from "./api.js";
import {
  act, appHash, appTrail, can, counted, ENOUGH, jobSearch, live, moreThanShown, plural,
  secretBox, splitList, tabs,
} from "./common.js";
import { card, facts, fields, fill, h, status, table, when } from "./dom.js";
import { showTrail } from "./ui.js";

const EXAMPLE_TYPES = ["job.queued", "job.started", "job.progress", "job.action_required",
  "job.completed", "job.failed", "job.cancelled"];
const HOUR_MS = 3600000;
const DAY_MS = 24 * HOUR_MS;

export async function endpoints(screen, [appId]) {
  const app = await get(appPath(appId));
  appTrail(app);
  const summaryBox = h("div", { class: "cards" });
  const list = h("div");
  const draw = async () => {
    const [summary, page] = await Promise.all([
      get(appPath(app.id, "/summary")), get(appPath(app.id, "/endpoints", { limit: ENOUGH })),
    ]);
    fill(summaryBox,
      card("endpoints", summary.endpoints.total),
      card("failing", summary.endpoints.failing),
      card("disabled", summary.endpoints.disabled),
      card("paused", summary.endpoints.paused),
      card("dead letters still lost", counted(summary.lost)));
    fill(list, table("The app's endpoints", [
      ["URL", (e) => h("a", { href: appHash(app.id, "endpoints", e.id), class: "mono" }, e.url)],
      ["Status", (e) => [status(e.status),
        e.disabled_reason ? h("div", { class: "muted" }, e.disabled_reason) : null]],
      ["Event types", (e) => (e.event_types || ["every type"]).join(", ")],
      ["Description", (e) => e.description],
    ], page.data, "No endpoints yet."), moreThanShown(page, "endpoints"));
  };
  await draw();
  fill(screen, h("h1", {}, app.name), tabs(app.id, "Endpoints"), summaryBox, jobSearch(app.id),
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

export async function endpoint(screen, [appId, endpointId]) {
  const app = await get(appPath(appId));
  const path = appPath(app.id, `/endpoints/${encodeURIComponent(endpointId)}`);
  let found = await get(path);
  appTrail(app, [found.url]);
  const about = h("div");
  const health = h("div");
  const controls = h("div", { class: "actions" });
  const enabling = h("div");
  const secretArea = h("div", { "aria-live": "polite" });
  let controlsFor = null; // the status the controls were drawn for: redrawn only when it changes
  const heading = h("h1", { class: "mono" }, found.url);
  const draw = async () => {
    const stats = await get(`${path}/stats`);
    found = await get(path);
    if (heading.textContent !== found.url) {  // changed here or elsewhere: say so everywhere
      heading.textContent = found.url;
      appTrail(app, [found.url]);
      showTrail();
    }
    fill(about, facts([
      ["URL", h("span", { class: "mono" }, found.url)],
      ["Status", [status(found.status), found.disabled_reason ? ` — ${found.disabled_reason}` : ""]],
      ["Failing since", when(stats.failing_since)],
      ["Event types", (found.event_types || ["every type"]).join(", ")],
      ["Description", found.description || "—"],
      ["Signing", found.signing],
      ["Rate limit", found.rate_limit_per_s ? `${found.rate_limit_per_s}/s` : "none"],
      ["Headers", Object.keys(found.headers).length ? Object.keys(found.headers).join(", ") : "none"],
      ["Id", h("span", { class: "mono" }, found.id)],
    ]));
    const rate = (window) => window.success_rate === null ? "—" :
      `${Math.round(window.success_rate * 1000) / 10}%`;
    const attempts = (window) => `${window.attempts}${window.more ? "+" : ""} attempts`;
    const deadHash = `${appHash(app.id, "dead")}?endpoint_id=${encodeURIComponent(found.id)}`;
    fill(health, h("div", { class: "cards" },
      card("success, last hour", rate(stats.last_hour), attempts(stats.last_hour)),
      card("success, last day", rate(stats.last_day), attempts(stats.last_day)),
      card("waiting", counted(stats.waiting),
        stats.waiting.oldest_at ? ["oldest ", when(stats.waiting.oldest_at)] : null),
      card("dead letters still lost", counted(stats.lost),
        stats.lost.count ? h("a", { href: deadHash }, "see them") : null)));
    if (found.status !== controlsFor) {
      controlsFor = found.status;
      drawControls(stats);
    }
  };
  const drawControls = (stats) => {
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
    const deliveriesHash = `${appHash(app.id, "deliveries")}?endpoint_id=${encodeURIComponent(found.id)}`;
    buttons.push(h("a", { href: deliveriesHash }, "Its deliveries"));
    fill(controls, ...buttons);
    fill(enabling, found.status === "disabled" && can("manage_endpoints") ?
      enableForm(path, found, stats, draw) : null);
  };
  await draw();
  fill(screen, heading, tabs(app.id, "Endpoints"),
    controls, enabling, secretArea, h("h2", {}, "Health"), health, h("h2", {}, "Settings"), about,
    can("replay") ? recoverForm(path, draw) : null,
    can("send_test") ? exampleForm(app.id, path) : null,
    can("manage_endpoints") ? editForm(path, found, draw) : null);
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
      return `Enabled, and ${plural(sent.replayed, "dead delivery", "dead deliveries")} it missed ` +
        `${sent.replayed === 1 ? "is" : "are"} on their way again.`;
    }, done);
  } },
  can("replay") ? h("label", { class: "inline" },
    h("input", { type: "checkbox", name: "recover", checked: true }),
    ["Also re-send the dead deliveries it missed since ", when(since)]) : null,
  h("button", { type: "submit", class: "primary" }, "Enable"));
  return h("fieldset", {}, h("legend", {}, "Disabled"),
    h("p", {}, found.disabled_reason || "It was disabled."), form);
}

function recoverForm(path, done) {
  const outcome = h("p", { "aria-live": "polite" });
  const form = h("form", { onsubmit: (event) => event.preventDefault() },
    h("label", {}, "Since", h("select", { name: "since" },
      ["1h", "6h", "24h", "7d"].map((d) => h("option", { value: d }, `the last ${d}`)))),
    h("button", { type: "button", onclick: (e) => act(e.target, async () => {
      const tally = await post(`${path}/recover`, { since: fields(form).since, dry_run: true });
      outcome.textContent = `${plural(tally.matched, "delivery", "deliveries")} still lost in ` +
        `that window; ${tally.replayable} can be sent.`;
    }) }, "Count (dry run)"),
    h("button", { type: "button", class: "primary", onclick: (e) => {
      if (!confirm(`Re-send this endpoint's dead deliveries of the last ${fields(form).since}?`)) return;
      act(e.target, async () => {
        const sent = await post(`${path}/recover`, { since: fields(form).since });
        outcome.textContent = `${plural(sent.replayed, "delivery", "deliveries")} sent again.`;
        return `Recovering ${plural(sent.replayed, "delivery", "deliveries")}.`;
      }, done);
    } }, "Recover"));
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
        h("a", { href: appHash(app, "deliveries", sent.delivery_id) }, "follow its delivery"));
      return `An example ${sent.type} is on its way.`;
    });
  } },
  h("label", {}, "Event type", h("select", { name: "type" },
    EXAMPLE_TYPES.map((t) => h("option", { value: t, selected: t === "job.completed" }, t)))),
  h("button", { type: "submit" }, "Send an example"));
  return h("fieldset", {}, h("legend", {}, "Send a test event"), form, outcome);
}

// "Name: value" lines as headers; a line without a colon is refused, not guessed at.
function parseHeaders(text) {
  const lines = text.split("\n").map((line) => line.trim()).filter(Boolean);
  return Object.fromEntries(lines.map((line) => {
    const at = line.indexOf(":");
    if (at < 1) throw new Error(`"${line}" is not a header: write Name: value`);
    return [line.slice(0, at).trim(), line.slice(at + 1).trim()];
  }));
}

function editForm(path, found, done) {
  const headerLines = Object.entries(found.headers).map(([k, v]) => `${k}: ${v}`).join("\n");
  const form = h("form", { class: "stacked", onsubmit: (event) => {
    event.preventDefault();
    const values = fields(form);
    act(form.querySelector("button[type=submit]"), async () => {
      await patch(path, {
        url: values.url,
        description: values.description,
        event_types: values.types.trim() ? splitList(values.types) : null,
        headers: parseHeaders(values.headers),
        rate_limit_per_s: values.rate ? Number(values.rate) : null,
      });
      return "Saved.";
    }, done);
  } },
  h("label", {}, "URL", h("input", { name: "url", type: "url", required: true, value: found.url })),
  h("label", {}, "Event types (comma separated; empty for every type)",
    h("input", { name: "types", value: (found.event_types || []).join(", ") })),
  h("label", {}, "Description", h("input", { name: "description", value: found.description })),
  h("label", {}, "Headers (one per line, Name: value)", h("textarea", { name: "headers" }, headerLines)),
  h("label", {}, "Rate limit (deliveries per second; empty for none)",
    h("input", { name: "rate", type: "number", min: 1, value: found.rate_limit_per_s || "" })),
  h("button", { type: "submit", class: "primary" }, "Save"));
  return h("fieldset", {}, h("legend", {}, "Change the endpoint"), form);
}
