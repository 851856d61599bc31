// The console: signs in, follows the address's fragment (#/apps/{app}/...) to a view, keeps
// the view live, and says what happened in one announced place.
import { ApiError, get, signIn, signOut, takeTokenFromFragment, token } from "./api.js";
import { fields, fill, h } from "./dom.js";
import { notify, setTrail } from "./ui.js";
import * as views from "./views.js";

const main = document.getElementById("main");
const who = document.getElementById("who");
const signOutButton = document.getElementById("sign-out");

// The view on screen: its refresh (for live news), and what stops it when it is left.
let current = null;

const ROUTES = [
  [/^\/apps$/, views.apps],
  [/^\/apps\/([^/]+)$/, views.endpoints],
  [/^\/apps\/([^/]+)\/endpoints\/([^/]+)$/, views.endpoint],
  [/^\/apps\/([^/]+)\/deliveries$/, views.deliveries],
  [/^\/apps\/([^/]+)\/deliveries\/([^/]+)$/, views.delivery],
  [/^\/apps\/([^/]+)\/dead$/, views.dead],
  [/^\/apps\/([^/]+)\/jobs\/([^/]+)$/, views.job],
];

function signInView(problem) {
  setTrail([["Sign in"]]);
  const form = h("form", { class: "stacked", id: "sign-in", onsubmit: (event) => {
    event.preventDefault();
    signIn(fields(event.target).token);
    start();
  } },
  h("label", {}, "Admin token or portal session token",
    h("input", { name: "token", type: "password", required: true, autocomplete: "off",
      id: "token-input" })),
  h("button", { type: "submit", class: "primary" }, "Sign in"));
  fill(main, h("h1", {}, "Sign in"),
    h("p", { class: "muted" }, "A portal link signs you in by itself. The token is kept in this " +
      "tab only, until you sign out or close it."),
    problem ? h("p", { role: "alert" }, problem) : null, form);
  form.querySelector("input").focus();
}

async function start() {
  takeTokenFromFragment();
  if (!token()) return signInView();
  let me;
  try {
    me = await get("/v1/me");
  } catch (error) {
    signOut();
    const expired = error instanceof ApiError && error.status === 401;
    return signInView(expired ? "That token is not valid, or its session has ended." :
      `The server cannot be reached: ${error.message}`);
  }
  views.setCaller(me);
  who.textContent = me.kind === "admin" ? "admin" :
    `${me.kind === "portal_session" ? "portal session" : "app key"} for ${me.app_id}`;
  signOutButton.hidden = false;
  window.addEventListener("hashchange", route);
  route();
}

signOutButton.addEventListener("click", () => {
  signOut();
  location.hash = "#/";
  location.reload();
});

async function route() {
  const hash = location.hash.slice(1) || "/";
  const [path, query] = hash.split("?");
  if (current && current.stop) current.stop();
  current = null;
  notify("");
  const me = views.caller();
  if (path === "/" || path === "") {
    location.replace(me.app_id ? `#/apps/${encodeURIComponent(me.app_id)}` : "#/apps");
    return;
  }
  for (const [pattern, view] of ROUTES) {
    const match = pattern.exec(path);
    if (!match) continue;
    const params = match.slice(1).map(decodeURIComponent);
    fill(main, h("p", { class: "muted" }, "Loading…"));
    try {
      current = await view(main, params, new URLSearchParams(query || ""));
    } catch (error) {
      showFailure(error);
    }
    main.focus({ preventScroll: true });
    return;
  }
  fill(main, h("h1", {}, "Not found"), h("p", {}, h("a", { href: "#/" }, "Start over")));
}

window.addEventListener("hookrelay:signed-out", () => showFailure(new ApiError(401, null)));

function showFailure(error) {
  if (error instanceof ApiError && error.status === 401) {
    signOut();
    signInView("Your session has ended. Sign in again.");
    return;
  }
  fill(main, h("h1", {}, "Something went wrong"), h("p", { role: "alert" },
    error instanceof ApiError ? `${error.status}: ${error.message}` : String(error)));
}

start();
