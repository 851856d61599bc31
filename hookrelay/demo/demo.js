// Follows one job's events over Server-Sent Events and shows its state as they arrive.
// EventSource resumes by itself after a dropped connection, sending Last-Event-ID, and the
// server replays what was missed; the ids seen are still checked so nothing shows twice.
"use strict";

const JOB_EVENTS = [
  "job.queued", "job.started", "job.progress", "job.action_required",
  "job.completed", "job.failed", "job.cancelled",
];
const TERMINAL = new Set(["completed", "failed", "cancelled"]);
const $ = (id) => document.getElementById(id);

let source = null;
let job = null;

function freshJob() {
  return { state: "unknown", percent: -1, message: "", seen: new Set() };
}

function connect(app, jobId, token) {
  if (source) source.close();
  job = freshJob();
  $("log").replaceChildren();
  render();
  const query = new URLSearchParams({ job_id: jobId, token: token });
  const url = `/v1/apps/${encodeURIComponent(app)}/events/stream?${query}`;
  const opened = new EventSource(url);
  source = opened;
  setConnection("connecting");
  opened.onopen = () => setConnection("open");
  opened.onerror = () => {
    if (opened !== source) return; // a stream this page has moved on from
    // CONNECTING: the connection dropped and EventSource is retrying by itself. CLOSED: the
    // server answered with an error, which EventSource does not show: ask again to read it.
    if (opened.readyState === EventSource.CLOSED) explainRefusal(opened, url);
    else setConnection("reconnecting");
  };
  for (const type of JOB_EVENTS) {
    opened.addEventListener(type, (message) => receive(opened, type, message));
  }
}

// The server's JSON error for the stream URL (a refused or expired token, an unknown app),
// fetched once; the request is aborted as soon as its headers are in.
async function explainRefusal(refused, url) {
  setConnection("refused");
  const abort = new AbortController();
  let reason = "the server refused the stream";
  try {
    const response = await fetch(url, { signal: abort.signal, cache: "no-store" });
    if (!response.ok) {
      const body = await response.json().catch(() => null);
      const message = body && body.error && body.error.message;
      reason = `${response.status}: ${message || response.statusText}`;
    }
  } catch (error) {
    reason = "the server cannot be reached";
  } finally {
    abort.abort();
  }
  if (refused === source) setConnection(`refused (${reason})`);
}

function setConnection(text) {
  $("connection").textContent = text;
}

function receive(from, type, message) {
  if (from !== source || job.seen.has(message.lastEventId)) return;
  job.seen.add(message.lastEventId);
  const body = JSON.parse(message.data);
  apply(type, body.data || {});
  logEvent(message.lastEventId, type, body);
  render();
  if (TERMINAL.has(job.state)) {
    // Nothing follows a finished job: let the server go instead of holding a stream open.
    source.close();
    setConnection("closed (the job has ended)");
  }
}

// The same rules as the server's job status: a finished job stays finished, progress never
// goes back, and a pending action ends only with progress beyond what the job had reached.
function apply(type, data) {
  if (TERMINAL.has(job.state)) return;
  const waiting = job.state === "unknown" || job.state === "queued";
  switch (type) {
    case "job.queued":
      if (job.state === "unknown") job.state = "queued";
      break;
    case "job.started":
      if (waiting) job.state = "running";
      break;
    case "job.progress":
      if (typeof data.percent !== "number" || data.percent < job.percent) break;
      if (waiting || (job.state === "action_required" && data.percent > job.percent)) {
        job.state = "running";
        job.action = null;
      }
      job.percent = data.percent;
      if (data.message) job.message = data.message;
      break;
    case "job.action_required":
      job.state = "action_required";
      job.action = data.action || null;
      break;
    case "job.completed":
      job.state = "completed";
      job.percent = 100;
      job.output = data.output;
      job.artifacts = data.artifacts || [];
      break;
    case "job.failed":
      job.state = "failed";
      job.error = data.error || {};
      break;
    case "job.cancelled":
      job.state = "cancelled";
      break;
  }
  // The last progress message ("upscaling") is no longer news once the job has ended.
  if (TERMINAL.has(job.state)) job.message = "";
}

function logEvent(id, type, body) {
  const item = document.createElement("li");
  item.dataset.eventId = id;
  item.dataset.type = type;
  const percent = body.data && typeof body.data.percent === "number" ? ` ${body.data.percent}%` : "";
  item.textContent = `${body.timestamp}  ${type}${percent}`;
  $("log").append(item);
  $("event-count").textContent = String(job.seen.size);
}

function render() {
  const state = $("state");
  state.textContent = job.state;
  state.className = `state ${job.state}`;
  const percent = Math.max(job.percent, 0);
  $("progress").value = percent;
  $("percent").textContent = `${percent}%`;
  $("message").textContent = job.message;

  $("action").hidden = job.state !== "action_required" || !job.action;
  if (job.action) {
    $("action-message").textContent = job.action.message || job.action.kind || "";
    const link = $("action-url");
    link.textContent = job.action.url || "";
    if (job.action.url && /^https?:/.test(job.action.url)) link.href = job.action.url;
    else link.removeAttribute("href");
  }

  $("result").hidden = job.state !== "completed";
  if (job.state === "completed") {
    $("output").textContent = job.output === undefined ? "" : JSON.stringify(job.output, null, 2);
    $("artifacts").replaceChildren(...job.artifacts.map(artifactItem));
  }
  $("failure").hidden = job.state !== "failed";
  if (job.state === "failed") {
    $("error").textContent = `${job.error.code || "error"}: ${job.error.message || ""}`;
  }
}

function artifactItem(artifact) {
  const item = document.createElement("li");
  const link = document.createElement("a");
  link.textContent = `${artifact.name || artifact.url} (${artifact.content_type}, ${artifact.size} bytes)`;
  if (/^https?:/.test(artifact.url)) link.href = artifact.url;
  link.rel = "noopener noreferrer";
  item.append(link);
  return item;
}

function startFromFragment() {
  const params = new URLSearchParams(location.hash.slice(1));
  for (const name of ["app", "job", "token"]) $(name).value = params.get(name) || "";
  if (params.get("app") && params.get("job") && params.get("token")) {
    connect(params.get("app"), params.get("job"), params.get("token"));
  }
}

$("connect").addEventListener("submit", (submitted) => {
  submitted.preventDefault();
  connect($("app").value.trim(), $("job").value.trim(), $("token").value.trim());
});
job = freshJob();
startFromFragment();
