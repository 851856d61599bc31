// The admin's list of apps: each with its endpoints, those failing or disabled, and its dead
// letters still lost.
import { appPath, get } from "./api.js";
import { appHash, counted, PAGE, pager } from "./common.js";
import { fill, h, table } from "./dom.js";
import { failed, setTrail } from "./ui.js";

// Every app's news would be a long-poll per app: the counts are asked again instead.
const APPS_REFRESH_MS = 10000;

export async function apps(screen, _params, query) {
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
        return lost.count ? h("a", { href: appHash(app.id, "dead") }, counted(lost)) : "0";
      }, { numeric: true }],
    ], page.data, "No apps yet: create one with POST /v1/apps."));
  };
  await draw();
  fill(screen, h("h1", {}, "Apps"), body, pager(page, "#/apps", {}, Boolean(cursor)));
  const timer = setInterval(() => draw().catch(failed), APPS_REFRESH_MS);
  return { refresh: draw, stop() { clearInterval(timer); } };
}
