// What the console's screens share: who is signed in and what they may do, keeping a screen
// live, running an action from a button, and the pieces every screen of an app shows.
import { ApiError, appPath, get } from "./api.js";
import { fields, h } from "./dom.js";
import { describe, failed, notify, setTrail } from "./ui.js";

export const IN_FLIGHT = new Set(["pending", "sending", "retrying", "held"]);
export const PAGE = 50;
// A screen is refreshed at most this often, however busy the app: news only sets it off.
const MIN_REFRESH_MS = 3000;
const NEWS_SETTLE_MS = 300;
// Short enough that a session ended under an open page is noticed within seconds.
const LONG_POLL_S = 10;
const RETRY_POLL_MS = 3000;

let me = null;

export function setCaller(found) {
  me = found;
}

export function caller() {
  return me;
}

export const can = (grant) => me.grants.includes(grant);

// The console's address of a screen of an app; each id is encoded, whatever it holds.
export function appHash(app, ...rest) {
  return `#/apps/${[app, ...rest].map(encodeURIComponent).join("/")}`;
}

// "1 delivery", "3 deliveries".
export const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;

// A count made up to a cap: "10000+" when there were more.
export const counted = (count) => `${count.count}${count.more ? "+" : ""}`;

// --- Keeping a screen live -----------------------------------------------------------------
// The app's events are followed by long-poll (any event is news: a new delivery, a delivery
// dead or recovered); while the screen shows something still on its way, it also refreshes
// every few seconds, since a retry's success is no event. A refresh redraws the screen's data,
// never a form or a button someone may be using.

export function live(app, refresh, busy) {
  const stopped = new AbortController();
  let queued = null;
  let last = Date.now();
  const stop = () => {
    stopped.abort();
    clearInterval(timer);
    clearTimeout(queued);
  };
  const onFailure = (error) => {
    if (error instanceof ApiError && error.status === 401) stop();
    failed(error);
  };
  const run = () => {
    queued = null;
    last = Date.now();
    refresh().catch(onFailure);
  };
  const soon = () => {
    if (queued !== null || stopped.signal.aborted) return;
    queued = setTimeout(run, Math.max(NEWS_SETTLE_MS, last + MIN_REFRESH_MS - Date.now()));
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
        if (error instanceof ApiError && error.status === 401) return onFailure(error);
        await new Promise((resolve) => setTimeout(resolve, RETRY_POLL_MS));
      }
    }
  })();
  const timer = setInterval(() => { if (busy()) soon(); }, MIN_REFRESH_MS);
  return { refresh, stop };
}

// Runs an action from a button: disabled while it runs, its outcome said in the notice, and a
// failure also said beside the button, where the eye is.
// (The notice announces it; the words beside the button are for the eye.) A redraw after a
// success that fails is said as a failed refresh, not as a failed action.
export async function act(button, action, done) {
  button.disabled = true;
  const place = button.closest("fieldset, .actions, form") || button.parentElement;
  let beside = place.querySelector(":scope > .inline-error");
  let succeeded = false;
  try {
    const message = await action();
    succeeded = true;
    if (beside) beside.remove();
    if (message) notify(message);
  } catch (error) {
    failed(error);
    if (!beside) {
      beside = h("p", { class: "inline-error" });
      place.append(beside);
    }
    beside.textContent = describe(error);
  } finally {
    button.disabled = false;
  }
  if (succeeded && done) await done().catch(failed);
}

// --- What every screen of an app shows -----------------------------------------------------

export function tabs(app, active) {
  const items = [["Endpoints", []], ["Deliveries", ["deliveries"]], ["Dead letters", ["dead"]]];
  return h("ul", { class: "tabs" }, items.map(([label, rest]) => h("li", {},
    h("a", { href: appHash(app, ...rest), "aria-current": label === active ? "page" : null },
      label))));
}

export function appTrail(app, ...more) {
  const steps = me.app_id ? [] : [["Apps", "#/apps"]];
  return setTrail([...steps, [app.name || app.id, appHash(app.id)], ...more]);
}

// A job id as the API takes it (schemas: 1 to 200 of these characters).
const JOB_ID = /^[A-Za-z0-9_.:-]{1,200}$/;

export function jobSearch(app) {
  const problem = h("p", { class: "inline-error" });
  return h("form", { role: "search", "aria-label": "Find a job", onsubmit: (event) => {
    event.preventDefault();
    const job = fields(event.target).job.trim();
    if (!JOB_ID.test(job)) {
      problem.textContent = "A job id is 1 to 200 of A-Z a-z 0-9 _ . : -";
      return;
    }
    location.hash = appHash(app, "jobs", job);
  } },
  h("label", {}, "Find a job by its id", h("input", { name: "job", required: true, autocomplete: "off" })),
  h("button", { type: "submit" }, "Show the job"), problem);
}

// Cursors only go back in time: a page past the first offers the newest again, and older.
export function pager(page, hash, query = {}, paged = false) {
  const search = new URLSearchParams(query);
  const newest = paged ? h("a", { href: search.toString() ? `${hash}?${search}` : hash }, "← Newest") : null;
  const older = page.next_cursor ?
    h("a", { href: `${hash}?${new URLSearchParams({ ...query, cursor: page.next_cursor })}` }, "Older →") : null;
  return newest || older ? h("div", { class: "pager" }, newest, older) : null;
}

// A list the console reads whole up to ENOUGH, and says so when there is more.
export const ENOUGH = 250;

export function moreThanShown(page, what) {
  return page.next_cursor ?
    h("p", { class: "muted" }, `Only the first ${ENOUGH} ${what} are shown.`) : null;
}

export async function endpointsById(app) {
  const page = await get(appPath(app, "/endpoints", { limit: ENOUGH }));
  return Object.fromEntries(page.data.map((e) => [e.id, e]));
}

export function splitList(text) {
  return text.split(",").map((part) => part.trim()).filter(Boolean);
}

export function secretBox(label, secret) {
  return h("div", { class: "secret", role: "region", "aria-label": label },
    h("div", {}, label), h("code", { id: "secret-value" }, secret));
}
