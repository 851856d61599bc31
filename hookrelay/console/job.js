// A job: its state folded from its events, and the timeline of its events and deliveries.
import { ApiError, appPath, get } from "./api.js";
import { appHash, appTrail, ENOUGH, IN_FLIGHT, live, moreThanShown, tabs } from "./common.js";
import { facts, fill, h, pretty, status, when } from "./dom.js";

export async function job(screen, [appId, jobId]) {
  const app = await get(appPath(appId));
  appTrail(app, [`Job ${jobId}`]);
  const box = h("div");
  let sent = { data: [] };
  const draw = async () => {
    const [state, events, deliveries] = await Promise.all([
      get(appPath(app.id, `/jobs/${encodeURIComponent(jobId)}`)).catch((error) => {
        if (error instanceof ApiError && error.status === 404) return null;
        throw error;
      }),
      get(appPath(app.id, "/events", { job_id: jobId, limit: ENOUGH })),
      get(appPath(app.id, "/deliveries", { job_id: jobId, limit: ENOUGH })),
    ]);
    sent = deliveries;
    if (state === null) {
      fill(box, h("p", {}, `No event of the job ${jobId} has been recorded yet. `,
        "This page shows it as soon as one is."));
      return;
    }
    const moments = [
      ...events.data.map((e) => ({ at: e.created_at, what: [h("strong", {}, e.type), " recorded ",
        h("span", { class: "mono" }, e.id)] })),
      ...deliveries.data.map((d) => ({ at: d.finished_at || d.created_at, what: [
        h("a", { href: appHash(app.id, "deliveries", d.id) }, "delivery"), ` of ${d.event_type} `,
        status(d.status), ` after ${d.attempt_count} attempt${d.attempt_count === 1 ? "" : "s"}`] })),
    ].sort((a, b) => a.at.localeCompare(b.at));
    fill(box,
      facts([
        ["State", status(state.state)],
        state.progress ? ["Progress", progressText(state.progress)] : null,
        ["Started", when(state.started_at)],
        ["Finished", when(state.finished_at)],
        ["Events", String(state.event_count)],
      ]),
      state.error ? [h("h2", {}, "Error"), pretty(state.error)] : null,
      state.output !== undefined && state.output !== null ? [h("h2", {}, "Output"), pretty(state.output)] : null,
      h("h2", {}, "Timeline"),
      moreThanShown(events, "events"), moreThanShown(deliveries, "deliveries"),
      moments.length ? h("ol", { class: "timeline" }, moments.map((m) => h("li", {}, when(m.at), " ", m.what))) :
        h("p", { class: "muted" }, "Nothing yet."));
  };
  await draw();
  fill(screen, h("h1", {}, `Job ${jobId}`), tabs(app.id, null), box);
  return live(app.id, draw, () => sent.data.some((d) => IN_FLIGHT.has(d.status)));
}

// "40% denoising", "40%", "denoising", or "—" when the job said neither.
function progressText(progress) {
  const percent = progress.percent === null || progress.percent === undefined ? null : `${progress.percent}%`;
  return [percent, progress.message].filter(Boolean).join(" ") || "—";
}
