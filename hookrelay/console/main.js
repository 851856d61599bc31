// The console: signs in, follows the address's fragment (#/apps/{app}/...) to a view, keeps
// the view live, and says what happened in one announced place.
import { ApiError, get, signIn, signOut, takeTokenFromFragment, token } from "./api.js";
import { fields, fill, h } from "./dom.js";
import { clearStaleNotice, setTrail, showTrail } from "./ui.js";
import { apps } from "./apps.js";
import { caller, setCaller } from "./common.js";
import { dead } from "./dead.js";
import { deliveries, delivery } from "./deliveries.js";
import { endpoint, endpoints } from "./endpoints.js";
import { job } from "./job.js";

const main = document.getElementById("main");
const who = document.getElementById("who");
const signOutButton = document.getElementById("sign-out");

// The view on screen: its refresh (for live news), and what stops it when it is left.
let current = null;

const ROUTES = [
  [/^\/apps$/, apps],
  [/^\/apps\/([^/]+)$/, endpoints],
  [/^\/apps\/([^/]+)\/endpoints\/([^/]+)$/, endpoint],
  [/^\/apps\/([^/]+)\/deliveries$/, deliveries],
  [/^\/apps\/([^/]+)\/deliveries\/([^/]+)$/, delivery],
  [/^\/apps\/([^/]+)\/dead$/, dead],
  [/^\/apps\/([^/]+)\/jobs\/([^/]+)$/, job],
];

function signInView(problem) {
  setTrail([["Sign in"]]);
  showTrail();
  who.textContent = "";
  signOutButton.hidden = true;
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

let following = false; // listening for hash changes

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
  setCaller(me);
  const kind = me.kind === "portal_session" ? "portal session" : "app key";
  who.textContent = me.kind === "admin" ? "admin" :
    `${kind} for ${(await get(`/v1/apps/${encodeURIComponent(me.app_id)}`).catch(() => ({}))).name || me.app_id}`;
  signOutButton.hidden = false;
  if (!following) window.addEventListener("hashchange", route);
  following = true;
  route();
}

signOutButton.addEventListener("click", () => {
  stopCurrent();
  signOut();
  location.hash = "#/";
  location.reload();
});

// Each navigation draws into a screen of its own and holds a ticket: a view that finishes
// loading after the next navigation began is stopped at once, its screen never shown.
let navigation = 0;

function stopCurrent() {
  navigation += 1; // whatever is still loading is overtaken
  if (current && current.stop) current.stop();
  current = null;
}

async function route() {
  // A portal link opened in a tab already signed in: sign in with it instead.
  if (new URLSearchParams(location.hash.slice(1)).has("token")) {
    stopCurrent();
    return start();
  }
  stopCurrent();
  const ticket = navigation;
  clearStaleNotice();
  const hash = location.hash.slice(1) || "/";
  const [path, query] = hash.split("?");
  const me = caller();
  // One app's credential has one app: the list of apps is the admin's.
  if (path === "/" || path === "" || (path === "/apps" && me.app_id)) {
    location.replace(me.app_id ? `#/apps/${encodeURIComponent(me.app_id)}` : "#/apps");
    return;
  }
  for (const [pattern, view] of ROUTES) {
    const match = pattern.exec(path);
    if (!match) continue;
    const screen = h("div");
    fill(main, h("p", { class: "muted" }, "Loading…"));
    try {
      const params = match.slice(1).map(decodeURIComponent);
      const shown = await view(screen, params, new URLSearchParams(query || ""));
      if (ticket !== navigation) {
        if (shown && shown.stop) shown.stop();
        return;
      }
      current = shown;
      fill(main, screen);
      showTrail();
    } catch (error) {
      if (ticket === navigation) showFailure(error);
      return;
    }
    main.focus({ preventScroll: true });
    return;
  }
  fill(main, h("h1", {}, "Not found"), h("p", {}, h("a", { href: "#/" }, "Start over")));
}

window.addEventListener("hookrelay:signed-out", () => showFailure(new ApiError(401, null)));

function showFailure(error) {
  if (error instanceof ApiError && error.status === 401) {
    if (!token()) return; // signed out already: the form may hold what someone is typing
    stopCurrent();
    signOut();
    signInView("Your session has ended. Sign in again.");
    return;
  }
  fill(main, h("h1", {}, "Something went wrong"), h("p", { role: "alert" },
    error instanceof URIError ? "That address is not one the console makes." :
      error instanceof ApiError ? `${error.status}: ${error.message}` : String(error)));
}

start();
