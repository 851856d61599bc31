// What every view shares: the one announced place for news, the trail of where you are, and
// what to do when the session ends under a view.
import { ApiError } from "./api.js";
import { h } from "./dom.js";

const notice = document.getElementById("notice");
const trail = document.getElementById("trail");

// When the notice was last given: a navigation an action set off (a replay opens the new
// delivery) keeps the notice that action gave; any later one clears it.
const NOTICE_KEPT_MS = 1500;
let noticeAt = 0;

export function notify(message, error = false) {
  notice.textContent = message;
  notice.className = error ? "error" : "";
  noticeAt = Date.now();
}

export function clearStaleNotice() {
  if (Date.now() - noticeAt > NOTICE_KEPT_MS) notify("");
}

// A screen names where it is while it loads; the trail and the title show it only once that
// screen is the one shown (showTrail), so an overtaken screen never names itself.
let pending = [];

export function setTrail(steps) {
  pending = steps;
}

export function showTrail() {
  const steps = pending;
  trail.replaceChildren(...steps.map(([label, href]) =>
    h("li", {}, href ? h("a", { href }, label) : h("span", { "aria-current": "page" }, label))));
  document.title = `${steps.map(([label]) => label).reverse().join(" · ")} · hookrelay console`;
}

// An action that failed: said in the notice; a session that ended signs out (main.js listens).
export function failed(error) {
  if (error instanceof ApiError && error.status === 401) {
    window.dispatchEvent(new Event("hookrelay:signed-out"));
    return;
  }
  notify(describe(error), true);
}

// What went wrong, in words: the API's message and what it named (fields, missing grants).
export function describe(error) {
  return error instanceof ApiError ? `${error.message}${detailsOf(error)}` : error.message || String(error);
}

// What a refusal says beyond its message: the fields a 422 names (a 403's message already
// says what the credential lacks).
function detailsOf(error) {
  const details = error.details;
  if (Array.isArray(details)) {
    return " (" + details.map((d) => `${d.path}: ${d.message}`).join("; ") + ")";
  }
  return "";
}
