// What every view shares: the one announced place for news, the trail of where you are, and
// what to do when the session ends under a view.
import { ApiError } from "./api.js";
import { h } from "./dom.js";

const notice = document.getElementById("notice");
const trail = document.getElementById("trail");

export function notify(message, error = false) {
  notice.textContent = message;
  notice.className = error ? "error" : "";
}

export function setTrail(steps) {
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
  notify(error instanceof ApiError ? `${error.status}: ${error.message}` : String(error), true);
}
