// The mat's page: live state over Server-Sent Events, commands as JSON POSTs, charts as SVG.
// Plain JavaScript with no build step and nothing fetched from elsewhere: it works on a
// home network without internet. The server checks every value; this page only asks.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);

const POLL_MS = 5000;           // reading /api/state, while the live stream is refused or failing
const STREAM_RETRY_MS = 30000;  // trying the live stream again, while polling
const QUICK_FAILURES = 3;       // stream errors in a row, no state between, before polling
const STALL_MS = 5000;          // a countdown the mat updates every second, silent this long

const view = {
  options: null,     // /api/options: programs, levels, patterns, ranges, limits
  state: null,       // the latest state (the MQTT state JSON)
  curve: { program: "", points: [] },
  history: null,     // /api/history?days=30
  editing: new Set(), // controls the person is using right now: not overwritten by updates
  messageFrom: null,  // the command whose refusal the message shows, if any
  messageFocus: null, // where focus goes back to when the message is closed
};

/** How the page hears from the mat: a live stream, or polling when the stream is refused. */
const link = {
  mode: "off",        // "stream", "poll", or "off" (locked, or not started)
  stream: null,       // the EventSource in use or being tried
  fresh: false,       // the shown state is what the mat does now
  knownAt: 0,         // Date.now() when the shown state was last known to be current
  heardAt: 0,         // Date.now() of the last message on the stream
  failures: 0,        // stream errors in a row without a state between them
  pollReason: "",     // "busy" (the stream was refused) or "failing" (it kept dropping)
  pollFailed: false,  // the last poll got no state
  pollTimer: null,
  retryTimer: null,
};

/** The breathing guide: where the mat said the breath was, and when that came. Each state
    message sets it again, so the drawing never drifts from the motor for long. */
const breath = {
  into_s: null,   // seconds into the breath at `at`; null when no breath is paced
  at: 0,          // performance.now() when the state with it arrived
  period_s: 10,   // one breath: 60 / breaths_per_min
  frame: 0,       // the requested animation frame, 0 when none
  inhaling: null, // what the words say now
};

const STATE_WORDS = {
  idle: "Ready",
  preheat: "Warming up: waiting for you at the mat",
  running: "Running",
  cooldown: "Resting",
  fault: "Fault",
};

/** What a refusal of each command means, said before the mat's reason. */
const REFUSED_WORDS = {
  start: "The mat did not start", stop: "The mat did not stop", press: "The press did nothing",
  reset: "The fault was not reset", program: "The program did not change",
  heat: "The heat did not change", pattern: "The vibration did not change",
  intensity: "The intensity did not change", duration: "The session length did not change",
};

/** Commands about the settings; their messages go to the settings card, the rest to the status. */
const SETTINGS_COMMANDS = new Set(["program", "heat", "pattern", "intensity", "duration"]);

// --- small helpers -----------------------------------------------------------

/** m:ss of whole seconds, rounded down: the ring, every text and the mat's own words agree. */
function clock(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

function minutes(value) {
  return Number.isInteger(value) ? String(value) : value.toFixed(1);
}

function sentence(text) {
  const trimmed = String(text).trim().replace(/\.$/, "");
  return `${trimmed.charAt(0).toUpperCase()}${trimmed.slice(1)}.`;
}

function svg(name, attributes, text) {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
  if (text !== undefined) element.textContent = text;
  return element;
}

// --- messages ------------------------------------------------------------------------
// A message goes at the end of the card it is about, in the flow of the page: it pushes
// what follows down and covers no control. It stays until closed (its button, or
// Escape) or replaced: one that vanished by itself would also move the page under a thumb.

function showMessage(text, kind = "info", card = "status-card", from = null) {
  const box = $("message");
  const where = $("app").hidden ? $("login") : $(card);
  if (box.parentElement !== where) where.append(box);
  const words = $("message-text");
  words.textContent = text;
  words.setAttribute("role", kind === "error" ? "alert" : "status");
  box.dataset.kind = kind;
  box.hidden = false;
  view.messageFrom = from;
  view.messageFocus = document.activeElement;
}

function hideMessage() {
  const box = $("message");
  if (box.hidden) return;
  const hadFocus = box.contains(document.activeElement);
  box.hidden = true;
  view.messageFrom = null;
  const back = view.messageFocus;
  if (hadFocus && back && back.isConnected && !back.disabled) back.focus();
}

function cardFor(command) {
  return SETTINGS_COMMANDS.has(command) ? "settings-card" : "status-card";
}

/** A refused request, as a person would say it. `answer` is what api() returned. */
function explain(answer) {
  const error = answer.data && answer.data.error;
  if (!error) return "The mat did not answer.";
  const wait = answer.retryAfter || (/try again in (\d+) s/.exec(error.allowed) || [])[1];
  const later = wait ? `Try again in ${wait} s.` : "Try again in a minute.";
  const range = view.options && view.options.duration_min;
  switch (error.field) {
    case "password":
      if (answer.status === 429) return `Too many wrong passwords. ${later}`;
      return answer.status === 401 ? "Wrong password." : "Type the password, then Log in.";
    case "rate": return `Too many starts in a minute. ${later}`;
    case "duration_min": return tooLongOrShort(error.value, range);
    case "intensity_pct": return `Intensity ${error.value} % is not possible: choose 0 to 100 %.`;
    case "heat": case "pattern": case "program": {
      const what = { heat: "heat level", pattern: "vibration pattern", program: "program" }[error.field];
      return `The mat has no ${what} “${error.value}”: it has ${error.allowed.replace(/^one of: /, "")}.`;
    }
    case "session": return "Log in first.";
    case "state": return "The mat is starting. Try again in a moment.";
    case "Host": return `The mat does not answer to the name ${error.value}: open it by its ` +
      "address, or add the name to [web] allowed_hosts.";
    case "Origin": return "The mat takes changes from its own page only.";
    default: return `The mat could not do that: ${error.allowed}.`;
  }
}

function tooLongOrShort(value, range) {
  const choose = range ? `choose ${range.min} to ${range.max} min` : "choose fewer minutes";
  const number = Number(value);
  if (value === "" || value === '""' || !Number.isFinite(number)) {
    return `“${value}” is not a number of minutes: ${choose}.`;
  }
  const which = range && number < range.min ? "too short" : "too long";
  return `A session of ${value} min is ${which}: ${choose}.`;
}

function onNotice(notice) {
  switch (notice.event) {
    case "refused": {
      const lead = REFUSED_WORDS[notice.command] || "The mat said no";
      showMessage(`${lead}. ${sentence(notice.reason)}`, "error", cardFor(notice.command));
      break;
    }
    case "fault_raised":
      showMessage(`The heat is off because of a fault. ${sentence(notice.reason)}`, "error");
      break;
    case "heat_stopped": showMessage(`The heat stopped for this session. ${sentence(notice.reason)}`); break;
    case "heat_stepped_down":
      showMessage(`The heat was lowered to ${notice.level}. ${sentence(notice.reason)}`);
      break;
    case "session_ended": loadHistory(); break;
    default: break;
  }
}

// --- talking to the mat ------------------------------------------------------------

async function api(path, body) {
  const init = body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  };
  const response = await fetch(path, { credentials: "same-origin", ...init });
  const data = await response.json().catch(() => null);
  if (response.status === 401 && path !== "/api/login") showLogin();
  const retryAfter = response.headers.get("Retry-After");
  return { ok: response.ok, status: response.status, data, retryAfter };
}

async function send(command, value) {
  const body = value === undefined ? { command } : { command, value };
  try {
    const answer = await api("/api/command", body);
    if (answer.ok) {
      if (view.messageFrom === command) hideMessage();  // the person put it right
      afterCommand(command);
    } else if (answer.status !== 401) {
      showMessage(explain(answer), "error", cardFor(command), command);
      render();  // put the control back to what the mat has
    }
    return answer.ok;
  } catch (err) {
    showMessage("The mat cannot be reached. Is it on?", "error", cardFor(command), command);
    render();
    return false;
  }
}

/** Without a live stream, the result of a command is read at once rather than at the next poll. */
function afterCommand(command) {
  if (link.mode === "poll") {
    poll();
  } else if (!link.fresh) {
    showMessage("Sent. This page is not live, so it cannot show the result yet.",
      "info", cardFor(command), command);
  }
}

// --- the connection -------------------------------------------------------------------
// The page shows the mat live over Server-Sent Events. When the stream is refused (a
// ninth open page gets 503) or keeps dropping, it polls /api/state and tries the stream
// again every 30 s. Whenever what it shows may be old, it greys it out and says since when.

function connect() {
  link.mode = "stream";
  link.failures = 0;
  openStream();
  render();
}

function openStream() {
  closeStream();
  const stream = new EventSource("/api/events");
  link.stream = stream;
  const on = (name, handle) => stream.addEventListener(name, (e) => {
    link.heardAt = Date.now();
    handle(JSON.parse(e.data));
  });
  on("state", (state) => {
    link.failures = 0;
    if (link.mode === "poll") stopPolling();
    received(state);
  });
  on("curve", (curve) => { view.curve = curve; drawCurve(); });
  on("point", (point) => { view.curve.points.push(point); drawCurve(); });
  on("notice", onNotice);
  stream.onopen = () => { link.heardAt = Date.now(); };
  stream.onerror = () => streamFailed(stream);
}

function closeStream() {
  if (link.stream) link.stream.close();
  link.stream = null;
}

function streamFailed(stream) {
  if (stream !== link.stream) return;  // an old stream, already replaced
  // EventSource hides the HTTP status, but any answer other than a 200 stream (503 when
  // eight pages are open, 401 once the password changed) closes it for good: readyState
  // CLOSED. A dropped connection leaves it CONNECTING, retrying by itself. So: CLOSED,
  // or the same quick failure again and again, means poll instead; the first poll's 401
  // shows the login. No fetch of /api/events to read the status: one that got through
  // would take one of the eight streams.
  const refused = stream.readyState === EventSource.CLOSED;
  link.failures += 1;
  if (link.mode === "poll") {  // a retry while polling: keep polling
    closeStream();
    link.pollReason = refused ? "busy" : "failing";
    render();
    return;
  }
  if (link.fresh) stale(Date.now());  // it was open until now
  if (refused || link.failures >= QUICK_FAILURES) {
    closeStream();
    startPolling(refused ? "busy" : "failing");
  }
}

function startPolling(reason) {
  link.mode = "poll";
  link.pollReason = reason;
  link.pollFailed = false;
  clearInterval(link.retryTimer);
  link.retryTimer = setInterval(() => { if (!link.stream) openStream(); }, STREAM_RETRY_MS);
  poll();
}

function stopPolling() {
  clearTimeout(link.pollTimer);
  clearInterval(link.retryTimer);
  link.mode = "stream";
  render();
}

async function poll() {
  clearTimeout(link.pollTimer);
  const answer = await api("/api/state").catch(() => null);
  if (link.mode !== "poll") return;  // the stream came back, or the login is shown
  if (answer && answer.ok) {
    // Polls failed, and now one gets through: the mat is back, so try the stream at once.
    if (link.pollFailed && !link.stream) openStream();
    link.pollFailed = false;
    received(answer.data);
  } else {
    link.pollFailed = true;
    if (link.fresh) stale(link.knownAt);
  }
  clearTimeout(link.pollTimer);  // one chain of polls, even when a command asked for one
  link.pollTimer = setTimeout(poll, POLL_MS);
}

function received(state) {
  view.state = state;
  followBreath(state);
  link.knownAt = Date.now();
  link.fresh = true;
  render();
}

function stale(since) {
  link.fresh = false;
  link.knownAt = since;
  render();
}

/** A countdown the mat updates every second: silence means the connection is gone. */
function ticking(s) {
  return s !== null && (s.state === "running" || preheatLeft(s) > 0 ||
    (s.state === "cooldown" && s.cooldown_remaining_s > 0));
}

/** Once a second: notices a stream gone silent, and counts "last update N s ago" up. */
function tick() {
  if (link.mode === "stream" && link.fresh && ticking(view.state) &&
      Date.now() - link.heardAt > STALL_MS) {
    // Wi-Fi gone or the phone asleep: the connection may stay open for minutes without a
    // word, and a countdown that stopped would look like a running one.
    stale(link.heardAt);
    openStream();
  }
  if (!link.fresh) renderLink();
}

function ago(since) {
  const s = Math.max(0, Math.floor((Date.now() - since) / 1000));
  return s < 120 ? `${s}\u00a0s ago` : `${Math.floor(s / 60)}\u00a0min ago`;
}

/** The header's word, the line above the cards, and what is greyed out. */
function renderLink() {
  const every = `refreshing every ${POLL_MS / 1000}\u00a0s`;
  const word = link.fresh ? (link.mode === "poll" ? "refreshing" : "live")
    : (link.knownAt ? "not live" : "connecting…");
  const header = $("link");
  header.dataset.live = link.fresh ? "yes" : "no";
  if (header.textContent !== word) header.textContent = word;  // announced on a change only
  $("app").dataset.live = link.fresh ? "yes" : "no";
  $("app").dataset.mode = link.mode;  // polling: the curve, which only the stream extends, is greyed
  const line = $("connection");
  line.dataset.kind = link.fresh ? "poll" : "stale";
  line.hidden = link.fresh && link.mode !== "poll";
  if (line.hidden) return;
  if (link.fresh) {
    line.textContent = link.pollReason === "busy"
      ? `Live updates are busy: ${every}.`  // too many pages open: the mat's limit
      : `Live updates keep dropping: ${every}.`;
  } else if (link.knownAt) {
    line.textContent = `Not live: last update ${ago(link.knownAt)}. Trying to reconnect…`;
  } else {
    line.textContent = "Not live: no update from the mat yet. Trying to connect…";
  }
}

// --- the live state -----------------------------------------------------------------

function render() {
  renderLink();
  renderControls();
  renderBreath();
  const s = view.state;
  const o = view.options;
  if (!s || !o) return;
  $("app").dataset.state = s.state;

  $("fault").hidden = !s.fault;
  $("fault-reason").textContent = s.fault || "";

  const stateLine = $("state");
  stateLine.textContent = STATE_WORDS[s.state] || s.state;
  stateLine.dataset.state = s.state;
  $("state-detail").textContent = detail(s, o);
  renderPresence(s);
  renderRing(s, o);

  // null: no valid reading is recent (a sensor fault, say). Never an old number instead.
  const reading = s.temperature_c !== null && s.temperature_c !== undefined;
  $("temp").textContent = reading ? s.temperature_c.toFixed(1) : "no reading";
  $("temp").dataset.reading = reading ? "yes" : "no";
  $("temp-unit").hidden = !reading;
  $("setpoint").textContent = s.setpoint_c === null ? "no heat" : `target ${s.setpoint_c} °C`;
  $("heater").dataset.on = s.heater_on ? "yes" : "no";
  $("heater").textContent = s.heater_on ? "heating" : "heater off";
  const doseMax = o.limits.dose_max_cem43;
  const doseShare = Math.min(s.dose_cem43 / doseMax, 1);
  $("dose-text").textContent = `${s.dose_cem43.toFixed(2)} of ${doseMax} CEM43`;
  $("dose-bar").style.width = `${(doseShare * 100).toFixed(1)}%`;
  $("dose-bar").dataset.high = doseShare >= 0.75 ? "yes" : "no";

  if (!view.editing.has("program")) $("program").value = s.program;
  pressOnly("heat", s.heat_level);
  pressOnly("pattern", s.pattern);
  if (!view.editing.has("intensity")) $("intensity").value = s.intensity_pct;
  $("intensity-out").textContent = `${Math.round($("intensity").value)} %`;
  if (!view.editing.has("duration")) $("duration").value = minutes(s.planned_min);

  $("today").textContent = Math.round(s.today_min);
  $("streak").textContent = s.streak_days;
  $("streak-label").textContent = s.streak_days === 1 ? "day in a row" : "days in a row";
}

/** Whether someone lies on the mat, when it has a sensor to tell (null: it has none). */
function renderPresence(s) {
  const known = s.occupied === true || s.occupied === false;
  const chip = $("occupied");
  chip.hidden = !known;
  chip.textContent = s.occupied ? "on the mat" : "mat empty";
  chip.dataset.occupied = s.occupied ? "yes" : "no";
  // The mat pauses heat and vibration, and ends the session if nobody comes back.
  $("paused").hidden = !(s.state === "running" && s.occupied === false);
}

// --- the breathing guide ------------------------------------------------------------
// A disc in the ring, drawn every frame from the mat's last breath_s moved on by the time
// since it came: between two messages the page keeps time by itself. Only while live: a
// guide that went on breathing would hide that the page has lost the mat. Nobody on the
// mat: the motor is paused, so there is nothing to follow.

/** Where the breath is now: {inhaling, into_s}; null when no guide is shown. */
function breathNow() {
  if (breath.into_s === null) return null;
  const into_s = (breath.into_s + (performance.now() - breath.at) / 1000) % breath.period_s;
  return { inhaling: into_s < view.options.inhale_share * breath.period_s, into_s };
}

/** The motor's breathe level (core/patterns.py breath_level): raised-cosine halves, 0 when
    a breath starts, 1 at the end of the inhale, 0 again at the end of the exhale. */
function breathLevel({ inhaling, into_s }) {
  const inhale_s = view.options.inhale_share * breath.period_s;
  const rising = inhaling ? into_s / inhale_s
    : 1 - (into_s - inhale_s) / (breath.period_s - inhale_s);
  return (1 - Math.cos(Math.PI * rising)) / 2;
}

/** A state came: the guide starts again from where it says the breath is (null: none). */
function followBreath(state) {
  const pacing = Number.isFinite(state.breath_s) && state.breaths_per_min > 0;
  breath.into_s = pacing ? state.breath_s : null;
  breath.at = performance.now();
  if (pacing) breath.period_s = 60 / state.breaths_per_min;
}

function renderBreath() {
  const s = view.state;
  const shown = link.fresh && breath.into_s !== null && s !== null && s.occupied !== false;
  $("breath").hidden = !shown;
  $("breath-words").hidden = !shown;
  if (shown && !breath.frame) {
    drawBreath();  // the words at once, even in a background tab that draws no frames
  } else if (!shown && breath.frame) {
    cancelAnimationFrame(breath.frame);
    breath.frame = 0;
    breath.inhaling = null;
  }
}

/** One frame of the guide; it asks for the next. */
function drawBreath() {
  breath.frame = requestAnimationFrame(drawBreath);
  const phase = breathNow();
  // The size, or without motion the strength, is app.css's to choose from the level.
  $("breath-disc").style.setProperty("--level", breathLevel(phase).toFixed(3));
  if (phase.inhaling !== breath.inhaling) {
    breath.inhaling = phase.inhaling;
    $("breath-words").textContent = phase.inhaling ? "Breathe in" : "Breathe out";
  }
}

/** What may be pressed. Without live data only Stop: stopping is always safe, and any
    other change would have an effect the page cannot show. */
function renderControls() {
  const s = view.state;
  const live = link.fresh && s !== null;
  $("start").disabled = !live || s.state !== "idle";
  $("stop").disabled = live && !(s.state === "preheat" || s.state === "running");
  for (const control of $("settings-card").querySelectorAll(".field :is(button, input, select)")) {
    control.disabled = !live;
  }
}

/** Seconds the mat still waits for a press after a remote start; null when it is not waiting. */
function preheatLeft(s) {
  const left = s.preheat_remaining_s;
  return s.state === "preheat" && s.awaiting_press && Number.isFinite(left) ? left : null;
}

function detail(s, o) {
  const what = `${s.program} · ${minutes(s.planned_min)} min`;
  switch (s.state) {
    case "idle": return `${what}. Press Start here, or the button on the mat.`;
    case "preheat": {
      const left = preheatLeft(s);
      const stops = left === null ? `after ${o.limits.preheat_max_min} min` : `in ${clock(left)}`;
      return `Lie down and press the button on the mat to begin (${what}). ` +
        `Without a press, the mat stops warming by itself ${stops}.`;
    }
    case "running": {
      const end = s.ends_at ? new Date(s.ends_at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) : "";
      return end ? `${what} · ends at ${end}` : what;
    }
    case "cooldown": return `The mat rests between sessions: ready again in ${clock(s.cooldown_remaining_s)}.`;
    case "fault": return "Nothing can start until the fault is reset at the mat.";
    default: return "";
  }
}

function renderRing(s, o) {
  let share = 1;
  let big = clock(s.planned_min * 60);
  let label = "session";
  const waiting = preheatLeft(s);
  if (s.state === "running") {
    share = s.remaining_s / Math.max(s.planned_min * 60, 1);
    big = clock(s.remaining_s);
    label = "left";
  } else if (waiting !== null) {
    share = waiting / Math.max(o.limits.preheat_max_min * 60, 1);
    big = clock(waiting);
    label = "left to press";
  } else if (s.state === "preheat") {
    label = "when you press";
  } else if (s.state === "cooldown") {
    share = s.cooldown_remaining_s / Math.max(o.limits.cooldown_min * 60, 1);
    big = clock(s.cooldown_remaining_s);
    label = "rest";
  } else if (s.state === "fault") {
    share = 0;
    big = "—";
    label = "heat off";
  }
  const bar = $("ring-bar");
  share = Math.min(Math.max(share, 0), 1);
  bar.setAttribute("stroke-dasharray", `${(share * 100).toFixed(2)} 100`);
  bar.setAttribute("visibility", share > 0 ? "visible" : "hidden");  // no lone round cap
  bar.dataset.state = s.state;
  $("remaining").textContent = big;
  $("remaining-label").textContent = label;
}

function pressOnly(group, value) {
  for (const button of $(group).querySelectorAll("button")) {
    button.setAttribute("aria-pressed", String(button.value === value));
  }
}

// --- controls -------------------------------------------------------------------------

function buildControls(o) {
  $("device-name").textContent = o.device.name;
  document.title = o.device.name;
  $("reset-below").textContent = o.limits.reset_below_c;
  $("daily-max").textContent = o.limits.daily_max_min;
  const program = $("program");
  program.replaceChildren(...o.programs.map((p) => new Option(p.name, p.name)));
  segments("heat", o.heat_levels, (level) => {
    const c = o.setpoints_c[level];
    return [level, c === undefined ? "" : `${c} °C`];
  });
  segments("pattern", o.patterns, (p) => [p]);
  const duration = $("duration");
  duration.min = o.duration_min.min;
  duration.max = o.duration_min.max;
  $("logout").hidden = !o.password;
}

function segments(group, values, label) {
  $(group).replaceChildren(...values.map((value) => {
    const button = document.createElement("button");
    button.type = "button";
    button.value = value;
    const [name, note] = label(value);
    button.textContent = name;
    if (note !== undefined) {
      const small = document.createElement("small");
      small.textContent = note || "\u00a0";
      button.append(small);
    }
    button.setAttribute("aria-pressed", "false");
    return button;
  }));
}

function wireControls() {
  $("start").addEventListener("click", () => send("start"));
  $("stop").addEventListener("click", () => send("stop"));
  $("program").addEventListener("change", (e) => send("program", e.target.value));
  for (const group of ["heat", "pattern"]) {
    $(group).addEventListener("click", (e) => {
      const button = e.target.closest("button");
      if (button) send(group, button.value);
    });
  }
  editedWhileFocused("program");
  editedWhileFocused("duration");
  const intensity = $("intensity");
  intensity.addEventListener("pointerdown", () => view.editing.add("intensity"));
  intensity.addEventListener("input", () => {
    view.editing.add("intensity");
    $("intensity-out").textContent = `${intensity.value} %`;
  });
  intensity.addEventListener("change", async () => {
    await send("intensity", Number(intensity.value));
    view.editing.delete("intensity");
  });
  const duration = $("duration");
  duration.addEventListener("change", () => sendDuration(duration.value));
  $("duration-down").addEventListener("click", () => sendDuration(Number(duration.value) - 1));
  $("duration-up").addEventListener("click", () => sendDuration(Number(duration.value) + 1));
  $("logout").addEventListener("click", async () => {
    await api("/api/logout", {});
    showLogin();
  });
  $("login-form").addEventListener("submit", logIn);
  $("message-close").addEventListener("click", hideMessage);
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && !$("message").hidden) hideMessage();
  });
}

function editedWhileFocused(id) {
  $(id).addEventListener("focus", () => view.editing.add(id));
  $(id).addEventListener("blur", () => { view.editing.delete(id); render(); });
}

function sendDuration(raw) {
  // The text goes as typed: the mat, not this page, decides what is allowed.
  const text = String(raw).trim();
  const number = Number(text);
  return send("duration", text !== "" && Number.isFinite(number) ? number : text);
}

// --- charts ------------------------------------------------------------------------------

function drawCurve() {
  const chart = $("curve");
  const points = view.curve.points;
  const [W, H] = size(chart, 170);
  const left = 30, right = 8, top = 8, bottom = 22;
  if (points.length === 0) {
    chart.append(svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "empty" },
      "The curve appears when a session starts"));
    $("curve-caption").textContent = "This session";
    return;
  }
  const temps = points.map((p) => p[1]);
  const sets = points.map((p) => p[2]).filter((c) => c !== null);
  const low = Math.floor(Math.min(20, ...temps) / 5) * 5;
  const high = Math.ceil((Math.max(...temps, ...sets, low + 10) + 1) / 5) * 5;
  const span = Math.max(points[points.length - 1][0], 60);
  const x = (t) => left + (t / span) * (W - left - right);
  const y = (c) => top + (1 - (c - low) / (high - low)) * (H - top - bottom);
  for (let c = low; c <= high; c += 5) {
    chart.append(svg("line", { x1: left, x2: W - right, y1: y(c), y2: y(c), class: "grid" }));
    chart.append(svg("text", { x: left - 5, y: y(c) + 3, "text-anchor": "end" }, `${c}°`));
  }
  chart.append(svg("text", { x: left, y: H - 6 }, "0"));
  chart.append(svg("text", { x: W - right, y: H - 6, "text-anchor": "end" }, `${minutes(Math.round(span / 6) / 10)} min`));
  const setPath = [];
  let previous = null;
  for (const [t, , c] of points) {
    if (c === null) { previous = null; continue; }
    setPath.push(`${previous === null ? "M" : "L"}${x(t).toFixed(1)},${y(previous === null ? c : previous).toFixed(1)}`);
    setPath.push(`L${x(t).toFixed(1)},${y(c).toFixed(1)}`);
    previous = c;
  }
  if (setPath.length) chart.append(svg("path", { d: setPath.join(""), class: "set-line" }));
  chart.append(svg("polyline", {
    points: points.map(([t, c]) => `${x(t).toFixed(1)},${y(c).toFixed(1)}`).join(" "),
    class: "temp-line",
  }));
  $("curve-caption").textContent = `${view.curve.program}: mat temperature (solid) and target (dashed)`;
}

function size(chart, height) {
  // Drawn at the size shown, so that labels keep their size on a phone and a desktop alike.
  const width = Math.max(Math.round(chart.getBoundingClientRect().width) || 320, 240);
  chart.setAttribute("viewBox", `0 0 ${width} ${height}`);
  chart.setAttribute("height", height);
  chart.replaceChildren();
  return [width, height];
}

async function loadHistory() {
  const answer = await api("/api/history?days=30").catch(() => null);
  if (answer && answer.ok) {
    view.history = answer.data;
    drawDays(view.history);
  }
}

function drawDays(history) {
  const byDay = new Map();
  for (const s of history.sessions) {
    const day = s.ended.slice(0, 10);
    const entry = byDay.get(day) || { minutes: 0, completed: false };
    entry.minutes += s.actual_min;
    entry.completed = entry.completed || s.end_reason === "completed";
    byDay.set(day, entry);
  }
  const days = [];
  const first = new Date(`${history.first_day}T00:00:00Z`);
  for (let i = 0; i < history.days; i += 1) {
    days.push(new Date(first.getTime() + i * 86400000).toISOString().slice(0, 10));
  }
  const chart = $("days");
  const [W, H] = size(chart, 150);
  const left = 26, right = 4, top = 8, bottom = 22;
  const most = Math.max(20, ...[...byDay.values()].map((d) => d.minutes));
  const high = Math.ceil((most * 1.15) / 10) * 10;
  const y = (m) => top + (1 - m / high) * (H - top - bottom);
  for (const m of [0, high / 2, high]) {
    chart.append(svg("line", { x1: left, x2: W - right, y1: y(m), y2: y(m), class: "grid" }));
    chart.append(svg("text", { x: left - 5, y: y(m) + 3, "text-anchor": "end" }, String(m)));
  }
  const step = (W - left - right) / days.length;
  days.forEach((day, i) => {
    const entry = byDay.get(day);
    const x = left + i * step + 1;
    if (entry && entry.minutes > 0) {
      const height = Math.max(H - bottom - y(entry.minutes), 2);
      chart.append(svg("rect", {
        x: x.toFixed(1), y: (H - bottom - height).toFixed(1), width: (step - 2).toFixed(1),
        height: height.toFixed(1), rx: 2, class: entry.completed ? "day-done" : "day-part",
      }, undefined));
      chart.lastChild.append(svg("title", {}, `${day}: ${minutes(Math.round(entry.minutes * 10) / 10)} min`));
    }
    if (day === history.today) {
      chart.append(svg("rect", { x: (x - 1).toFixed(1), y: top, width: step.toFixed(1),
        height: H - top - bottom, rx: 3, class: "today-mark" }));
    }
  });
  const label = (day) => new Date(`${day}T12:00:00Z`).toLocaleDateString([], { day: "numeric", month: "short", timeZone: "UTC" });
  chart.append(svg("text", { x: left, y: H - 6 }, label(days[0])));
  chart.append(svg("text", { x: W - right, y: H - 6, "text-anchor": "end" }, "today"));
}

// --- login and start-up ---------------------------------------------------------------------

function showLogin() {
  closeStream();
  clearTimeout(link.pollTimer);
  clearInterval(link.retryTimer);
  link.mode = "off";
  link.fresh = false;
  renderBreath();
  $("app").hidden = true;
  $("logout").hidden = true;
  $("login").hidden = false;
  hideMessage();
  renderLink();
  $("link").textContent = "locked";
  $("password").focus();
}

async function logIn(event) {
  event.preventDefault();
  const answer = await api("/api/login", { password: $("password").value }).catch(() => null);
  $("password").value = "";
  if (answer && answer.ok) {
    $("login").hidden = true;
    hideMessage();
    start();
  } else {
    showMessage(answer ? explain(answer) : "The mat cannot be reached. Is it on?", "error");
  }
}

async function start() {
  const answer = await api("/api/options").catch(() => null);
  if (!answer) {
    renderLink();
    setTimeout(start, 3000);
    return;
  }
  if (!answer.ok) return;
  view.options = answer.data;
  buildControls(view.options);
  $("app").hidden = false;
  drawCurve();
  connect();
  loadHistory();
}

let resizeTimer = null;
window.addEventListener("resize", () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => {
    drawCurve();
    if (view.history) drawDays(view.history);
  }, 150);
});

// For tests and the curious: the phase the breathing guide draws now, or null.
window.matpiBreath = () => ($("breath").hidden ? null : breathNow());

wireControls();
setInterval(tick, 1000);
start();
