// The mat's page: live state over Server-Sent Events, commands as JSON POSTs, charts as SVG.
// Plain JavaScript with no build step and nothing fetched from elsewhere: it works on a
// home network without internet. The server checks every value; this page only asks.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);

const view = {
  options: null,     // /api/options: programs, levels, patterns, ranges, limits
  state: null,       // the latest state (the MQTT state JSON)
  curve: { program: "", points: [] },
  history: null,     // /api/history?days=30
  stream: null,
  editing: new Set(), // controls the person is using right now: not overwritten by updates
};

const STATE_WORDS = {
  idle: "Ready",
  preheat: "Warming up: waiting for you at the mat",
  running: "Running",
  cooldown: "Resting",
  fault: "Fault",
};

const FIELD_WORDS = {
  duration_min: "Session length", intensity_pct: "Intensity", heat: "Heat",
  pattern: "Vibration", program: "Program", rate: "Too many starts", command: "Command",
  body: "Request", session: "Login", password: "Password",
};

// --- small helpers -----------------------------------------------------------

function clock(seconds) {
  const s = Math.max(0, Math.round(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

function minutes(value) {
  return Number.isInteger(value) ? String(value) : value.toFixed(1);
}

function svg(name, attributes, text) {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
  if (text !== undefined) element.textContent = text;
  return element;
}

let messageTimer = null;
function showMessage(text, kind = "info") {
  const box = $("message");
  box.textContent = text;
  box.dataset.kind = kind;
  box.hidden = false;
  clearTimeout(messageTimer);
  messageTimer = setTimeout(() => { box.hidden = true; }, 7000);
}

function explain(error) {
  if (!error) return "The mat did not answer.";
  const field = FIELD_WORDS[error.field] || error.field;
  if (error.field === "rate") return `${field}: ${error.allowed}.`;
  return `${field} ${error.value} is not possible: ${error.allowed}.`;
}

// --- talking to the mat ------------------------------------------------------------

async function api(path, body) {
  const init = body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  };
  const response = await fetch(path, { credentials: "same-origin", ...init });
  const data = await response.json().catch(() => null);
  if (response.status === 401 && path !== "/api/login") showLogin();
  return { ok: response.ok, status: response.status, data };
}

async function send(command, value) {
  const body = value === undefined ? { command } : { command, value };
  try {
    const answer = await api("/api/command", body);
    if (!answer.ok && answer.status !== 401) {
      showMessage(explain(answer.data && answer.data.error), "error");
      render();  // put the control back to what the mat has
    }
    return answer.ok;
  } catch (err) {
    showMessage("The mat cannot be reached. Is it on?", "error");
    render();
    return false;
  }
}

function connect() {
  if (view.stream) view.stream.close();
  const stream = new EventSource("/api/events");
  view.stream = stream;
  stream.onopen = () => setLive(true);
  stream.onerror = async () => {
    setLive(false);
    const answer = await api("/api/state").catch(() => null);
    if (answer && answer.status === 401) stream.close();
  };
  stream.addEventListener("state", (e) => { view.state = JSON.parse(e.data); render(); });
  stream.addEventListener("curve", (e) => { view.curve = JSON.parse(e.data); drawCurve(); });
  stream.addEventListener("point", (e) => { view.curve.points.push(JSON.parse(e.data)); drawCurve(); });
  stream.addEventListener("notice", (e) => onNotice(JSON.parse(e.data)));
}

function setLive(live) {
  const link = $("link");
  link.dataset.live = live ? "yes" : "no";
  link.textContent = live ? "live" : "reconnecting…";
}

function onNotice(notice) {
  switch (notice.event) {
    case "refused": showMessage(`The mat said no: ${notice.reason}.`, "error"); break;
    case "fault_raised": showMessage(`Fault: ${notice.reason}. The heat is off.`, "error"); break;
    case "heat_stopped": showMessage(`Heat stopped: ${notice.reason}.`); break;
    case "heat_stepped_down": showMessage(`Heat lowered to ${notice.level}: ${notice.reason}.`); break;
    case "session_ended": loadHistory(); break;
    default: break;
  }
}

// --- the live state -----------------------------------------------------------------

function render() {
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
  renderRing(s, o);

  $("start").disabled = s.state !== "idle";
  $("stop").disabled = !(s.state === "preheat" || s.state === "running");

  $("temp").textContent = s.temperature_c === null ? "--.-" : s.temperature_c.toFixed(1);
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

function detail(s, o) {
  const what = `${s.program} · ${minutes(s.planned_min)} min`;
  switch (s.state) {
    case "idle": return `${what}. Press Start here, or the button on the mat.`;
    case "preheat": return `Lie down and press the button on the mat to begin. ` +
      `The mat stops warming by itself after ${o.limits.preheat_max_min} min.`;
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
  if (s.state === "running") {
    share = s.remaining_s / Math.max(s.planned_min * 60, 1);
    big = clock(s.remaining_s);
    label = "left";
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
  if (view.stream) view.stream.close();
  view.stream = null;
  $("app").hidden = true;
  $("logout").hidden = true;
  $("login").hidden = false;
  setLive(false);
  $("link").textContent = "locked";
  $("password").focus();
}

async function logIn(event) {
  event.preventDefault();
  const answer = await api("/api/login", { password: $("password").value });
  $("password").value = "";
  if (answer.ok) {
    $("login").hidden = true;
    start();
  } else {
    showMessage(answer.status === 401 ? "Wrong password." : explain(answer.data && answer.data.error), "error");
  }
}

async function start() {
  const answer = await api("/api/options").catch(() => null);
  if (!answer) {
    setLive(false);
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

wireControls();
start();
