// Dead letters: the dead deliveries no replay has recovered. Select some or all, count what a
// bulk replay would send, replay, and watch them leave the list as their replays succeed.
import { ApiError, appPath, get, post } from "./api.js";
import {
  act, appHash, appTrail, can, endpointsById, IN_FLIGHT, live, PAGE, pager, plural, tabs,
} from "./common.js";
import { deliveryColumns, filterForm } from "./deliveries.js";
import { fill, h, table } from "./dom.js";

// After a bulk replay the list is refreshed until it is empty, or for this long.
const BULK_WATCH_MS = 120000;
// How long "Every replay has ended." stays once it is said.
const SAID_FOR_MS = 10000;

// The filters of a bulk replay among those of the list.
function replayBody(filters) {
  const body = {};
  for (const name of ["endpoint_id", "event_type", "since", "until"]) {
    if (filters[name]) body[name] = filters[name];
  }
  return body;
}

export async function dead(screen, [appId], query) {
  const app = await get(appPath(appId));
  appTrail(app, ["Dead letters"]);
  const endpoints = await endpointsById(app.id);
  const hash = appHash(app.id, "dead");
  const filters = Object.fromEntries([...query].filter(([k]) => k !== "cursor"));
  const selected = new Set();
  const watched = new Set(); // replays sent one by one from here, until they end
  let bulkUntil = 0; // after a bulk replay, refreshed until the list is empty or this time
  let page = null;
  const list = h("div");
  const progress = h("p", { "aria-live": "polite", id: "replay-progress" });

  const selectColumn = can("replay") ? [
    h("span", { class: "visually-hidden" }, "Select"),
    (d) => h("input", { type: "checkbox", "aria-label": `Select the delivery made ${d.created_at}`,
      "data-id": d.id, checked: selected.has(d.id), onchange: (event) => {
        if (event.target.checked) selected.add(d.id); else selected.delete(d.id);
        showSelection();
      } }),
  ] : null;
  // Redrawn on news: the checkbox that had the focus gets it back, if its row is still there.
  const drawList = () => {
    const focused = list.contains(document.activeElement) ? document.activeElement.dataset.id : null;
    fill(list, table("Dead deliveries still lost, newest first",
      deliveryColumns(app.id, endpoints, selectColumn), page.data,
      "No dead letters: every dead delivery was recovered."), pager(page, hash, filters, query.has("cursor")));
    const again = focused && list.querySelector(`input[data-id="${CSS.escape(focused)}"]`);
    if (again) again.focus();
  };

  // The buttons are made once, so that a refresh never takes one away while it is used.
  const selectAll = h("button", { type: "button", "aria-pressed": "false", onclick: () => {
    const every = page.data.length > 0 && page.data.every((d) => selected.has(d.id));
    for (const d of page.data) { if (every) selected.delete(d.id); else selected.add(d.id); }
    drawList();
    showSelection();
  } }, "Select all on this page");
  const replaySelected = h("button", { type: "button", class: "primary", onclick: (e) => {
    if (!confirm(`Replay the ${plural(selected.size, "selected delivery", "selected deliveries")}?`)) return;
    act(e.target, async () => {
      const ids = [...selected];
      for (const id of ids) {
        const replayed = await post(appPath(app.id, `/deliveries/${encodeURIComponent(id)}/replay`));
        watched.add(replayed.id);
        selected.delete(id);
      }
      progress.textContent = `${plural(ids.length, "replay", "replays")} on their way…`;
      return `Replaying ${plural(ids.length, "delivery", "deliveries")}.`;
    }, draw);
  } });
  const buttons = can("replay") ? h("div", { class: "actions" },
    selectAll, replaySelected,
    h("button", { type: "button", onclick: (e) => act(e.target, async () => {
      const tally = await post(appPath(app.id, "/deliveries/replay"), { ...replayBody(filters), dry_run: true });
      progress.textContent = `Dry run: ${tally.matched} still lost match these filters; ` +
        `${tally.replayable} can be sent (none was).`;
    }) }, "Count every match (dry run)"),
    h("button", { type: "button", onclick: (e) => {
      if (!confirm("Replay every dead delivery still lost that these filters match?")) return;
      act(e.target, async () => {
        const sent = await post(appPath(app.id, "/deliveries/replay"), replayBody(filters));
        bulkUntil = Date.now() + BULK_WATCH_MS;
        progress.textContent = `${plural(sent.replayed, "replay", "replays")} on their way…`;
        return `Replaying every match: ${plural(sent.replayed, "delivery", "deliveries")} sent again.`;
      }, draw);
    } }, "Replay every match")) : null;
  const showSelection = () => {
    const every = page.data.length > 0 && page.data.every((d) => selected.has(d.id));
    selectAll.textContent = every ? "Clear the selection" : "Select all on this page";
    selectAll.setAttribute("aria-pressed", String(every));
    replaySelected.textContent = `Replay selected (${selected.size})`;
    replaySelected.disabled = selected.size === 0;
    selectAll.disabled = page.data.length === 0;
  };

  let unsay = null; // clears "Every replay has ended." after a while
  const draw = async () => {
    // The replays first: one that ends after the list was read would leave its original shown.
    // A replay gone (its endpoint deleted, with its deliveries) has ended too.
    const replays = await Promise.all([...watched].map((id) =>
      get(appPath(app.id, `/deliveries/${encodeURIComponent(id)}`)).catch((error) => {
        if (error instanceof ApiError && error.status === 404) return { id, status: "gone" };
        throw error;
      })));
    for (const replay of replays) if (!IN_FLIGHT.has(replay.status)) watched.delete(replay.id);
    page = await get(appPath(app.id, "/deliveries",
      { ...filters, status: "dead", lost: "true", limit: PAGE, cursor: query.get("cursor") }));
    const shown = new Set(page.data.map((d) => d.id));
    for (const id of [...selected]) if (!shown.has(id)) selected.delete(id);
    drawList();
    showSelection();
    if (page.data.length === 0) bulkUntil = 0;
    const waiting = watched.size > 0 || Date.now() < bulkUntil;
    let said = progress.textContent;
    if (waiting) {
      const count = `${page.data.length}${page.next_cursor ? "+" : ""}`;
      said = `${count} ${page.data.length === 1 && !page.next_cursor ? "delivery" : "deliveries"} ` +
        "still lost; replays on their way…";
    } else if (said.endsWith("on their way…")) {
      said = "Every replay has ended.";
      clearTimeout(unsay);
      unsay = setTimeout(() => {
        if (progress.textContent === said) progress.textContent = "";
      }, SAID_FOR_MS);
    }
    if (said !== progress.textContent) progress.textContent = said;
  };
  await draw();
  fill(screen, h("h1", {}, "Dead letters"), tabs(app.id, "Dead letters"),
    h("p", { class: "muted" }, "Dead deliveries that no replay has recovered. A replay is a new " +
      "delivery with the original's webhook-id; once it succeeds the original leaves this list."),
    filterForm(hash, query, endpoints, false), buttons, progress, list);
  const following = live(app.id, draw, () => watched.size > 0 || Date.now() < bulkUntil);
  return { refresh: draw, stop() { following.stop(); clearTimeout(unsay); } };
}
