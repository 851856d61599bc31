// The API, called with the console's token. The token lives in this tab's session storage
// only: it is never put in a cookie, never sent anywhere but this server, and gone when the tab
// closes. A portal link brings it in the URL's fragment, which is taken out of the address bar
// (and the history) at once.

const STORED = "hookrelay.console.token";

export class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || `the server answered ${status}`);
    this.status = status;
    this.code = error.code || "error";
    this.details = error.details;
  }
}

export function token() {
  return sessionStorage.getItem(STORED);
}

export function signIn(value) {
  sessionStorage.setItem(STORED, value.trim());
}

export function signOut() {
  sessionStorage.removeItem(STORED);
}

// A token in the fragment (#token=...): kept for this tab, and wiped from the address bar.
export function takeTokenFromFragment() {
  const fragment = new URLSearchParams(location.hash.slice(1));
  const given = fragment.get("token");
  if (!given) return false;
  signIn(given);
  history.replaceState(null, "", location.pathname + location.search + "#/");
  return true;
}

// One call: the answer's JSON (null for a 204), or an ApiError with the server's message.
export async function call(method, path, body, options = {}) {
  const headers = { Authorization: `Bearer ${token()}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: "no-store",
    signal: options.signal,
  });
  if (response.status === 204) return null;
  const answer = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, answer);
  return answer;
}

export const get = (path, options) => call("GET", path, undefined, options);
export const post = (path, body = {}) => call("POST", path, body);
export const patch = (path, body) => call("PATCH", path, body);

// A path under an app, with a query string of the given values that are set.
export function appPath(app, rest = "", query = {}) {
  const set = Object.entries(query).filter(([, v]) => v !== undefined && v !== null && v !== "");
  const search = set.length ? `?${new URLSearchParams(set)}` : "";
  return `/v1/apps/${encodeURIComponent(app)}${rest}${search}`;
}
