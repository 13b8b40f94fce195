// The page on the policy server's HTTP port: the served policies and their traffic, polled from
// /ui/status, and CartPole-v1 simulated here and played by a served policy over the Open
// Inference Protocol's REST API (/v2/models/NAME/infer). `?seed=N` makes the episodes' starting
// states repeatable; window.gymservePage holds the game for the console and for tests.
"use strict";

// CartPole-v1 as Gymnasium defines it: the same constants, equations (Euler) and limits.
const CARTPOLE = {
  gravity: 9.8, // m/s²
  massCart: 1.0, // kg
  massPole: 0.1, // kg
  halfLength: 0.5, // m, half the pole's length
  forceMagnitude: 10.0, // N, pushed left (action 0) or right (action 1)
  tau: 0.02, // seconds between state updates
  thetaLimit: (12 * 2 * Math.PI) / 360, // rad, the pole falls beyond it
  xLimit: 2.4, // m, the cart leaves the track beyond it
  maxSteps: 500, // the time limit of CartPole-v1
};

function cartpoleStep([x, xDot, theta, thetaDot], action) {
  const c = CARTPOLE;
  const totalMass = c.massCart + c.massPole;
  const poleMassLength = c.massPole * c.halfLength;
  const force = action === 1 ? c.forceMagnitude : -c.forceMagnitude;
  const cosTheta = Math.cos(theta);
  const sinTheta = Math.sin(theta);
  const temp = (force + poleMassLength * thetaDot ** 2 * sinTheta) / totalMass;
  const thetaAcc =
    (c.gravity * sinTheta - cosTheta * temp) /
    (c.halfLength * (4.0 / 3.0 - (c.massPole * cosTheta ** 2) / totalMass));
  const xAcc = temp - (poleMassLength * thetaAcc * cosTheta) / totalMass;
  return [x + c.tau * xDot, xDot + c.tau * xAcc, theta + c.tau * thetaDot, thetaDot + c.tau * thetaAcc];
}

function poleFell([x, , theta]) {
  return Math.abs(x) > CARTPOLE.xLimit || Math.abs(theta) > CARTPOLE.thetaLimit;
}

// Uniform numbers in [0, 1): Math.random, or mulberry32 from `seed` for repeatable episodes.
function uniformSource(seed) {
  if (seed === null) return Math.random;
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const seedParameter = new URLSearchParams(location.search).get("seed");
const uniform = uniformSource(seedParameter === null ? null : Number(seedParameter));

const page = {
  token: sessionStorage.getItem("gymserve-token") || "",
  game: null, // {state, steps, outcome: "running" | "failed" | "finished", episode: [{observation, action, mode}]}
  running: false,
  lastStatus: null, // {time, series: Map(key -> {count, seconds, buckets})}
};
window.gymservePage = page;

const $ = (id) => document.getElementById(id);

function showProblem(message) {
  $("problem").hidden = message === "";
  $("problem").textContent = message;
}

// A JSON call to this server, with the bearer token when one is typed in.
async function call(path, body) {
  const headers = page.token ? { Authorization: `Bearer ${page.token}` } : {};
  const request = body === undefined ? { headers } : {
    method: "POST",
    headers: { ...headers, "Content-Type": "application/json" },
    body: JSON.stringify(body),
  };
  const response = await fetch(path, request);
  const answer = await response.json();
  if (!response.ok) {
    const hint = response.status === 401 ? " (type the server's bearer token above)" : "";
    throw new Error(`${path}: ${response.status} ${answer.error}${hint}`);
  }
  return answer;
}

// ---- Status: the policies and the rates and latencies of the server's metrics ----

function seriesKey(kind, labels) {
  return `${kind}:${JSON.stringify(labels)}`;
}

// The q-quantile, in milliseconds, of the observations between two reads of a histogram's
// cumulative buckets ([upper bound in seconds or null for +Inf, count], ascending): linear inside
// the bucket the rank falls in, from 0 for the first; in the +Inf bucket, the largest finite bound
// (Prometheus' histogram_quantile). null when nothing was observed in between.
function latencyQuantile(q, before, after) {
  const counts = after.map(([, count], index) => count - before[index][1]);
  const total = counts[counts.length - 1];
  if (!(total > 0)) return null;
  const rank = q * total;
  const index = counts.findIndex((count) => count >= rank);
  const lower = index === 0 ? 0 : after[index - 1][0];
  const upper = after[index][0];
  if (upper === null) return lower * 1000;
  const below = index === 0 ? 0 : counts[index - 1];
  return (lower + ((upper - lower) * (rank - below)) / (counts[index] - below)) * 1000;
}
window.gymserveLatencyQuantile = latencyQuantile;

// Requests per second, mean, median and 99th percentile milliseconds of one series since the
// previous status read.
function rateAndLatency(key, total, now) {
  const previous = page.lastStatus && page.lastStatus.series.get(key);
  if (!previous || total.count < previous.count) return ["-", "-", "-", "-"];
  const requests = total.count - previous.count;
  const rate = (requests / ((now - page.lastStatus.time) / 1000)).toFixed(1);
  if (requests === 0) return [rate, "-", "-", "-"];
  const mean = (((total.seconds - previous.seconds) / requests) * 1000).toFixed(2);
  const sameBuckets = previous.buckets.length === total.buckets.length;
  const quantile = (q) => (sameBuckets ? latencyQuantile(q, previous.buckets, total.buckets).toFixed(2) : "-");
  return [rate, mean, quantile(0.5), quantile(0.99)];
}

function tableRow(cells, classes = {}) {
  const row = document.createElement("tr");
  cells.forEach((text, index) => {
    const cell = document.createElement("td");
    cell.textContent = text;
    if (classes[index]) cell.className = classes[index];
    row.append(cell);
  });
  return row;
}

function showStatus(status, now) {
  const series = new Map();
  const measured = (kind, labels, total) => {
    const key = seriesKey(kind, labels);
    series.set(key, total);
    return rateAndLatency(key, total, now);
  };
  const policyTotals = new Map(status.policy_requests.map((s) => [`${s.policy}/${s.version}`, s]));
  const policyRows = [];
  for (const policy of status.policies) {
    for (const version of policy.versions) {
      const unused = { count: 0, seconds: 0, buckets: [] };
      const total = policyTotals.get(`${policy.name}/${version.version}`) || unused;
      const latencies = measured("policy", [policy.name, version.version], total);
      const isDefault = version.version === policy.default_version ? " (default)" : "";
      const state = version.error ? `${version.state}: ${version.error}` : version.state;
      policyRows.push(tableRow(
        [policy.name, policy.env_id || "-", version.version + isDefault, state,
          version.labels.join(", "), ...latencies],
        { 3: version.state.toLowerCase(), 5: "number", 6: "number", 7: "number", 8: "number" },
      ));
    }
  }
  $("policies").replaceChildren(...policyRows);
  const routeRows = status.http_requests
    .sort((a, b) => a.route.localeCompare(b.route) || a.code.localeCompare(b.code))
    .map((s) => {
      const latencies = measured("route", [s.route, s.method, s.code], s);
      const numbers = { 3: "number", 4: "number", 5: "number", 6: "number" };
      return tableRow([s.route, s.method, s.code, ...latencies], numbers);
    });
  $("routes").replaceChildren(...routeRows);
  page.lastStatus = { time: now, series };
  offerCartpolePolicies(status.policies);
}

// The policies the game can use: those trained on a CartPole-v1 with a version that serves.
function offerCartpolePolicies(policies) {
  const select = $("policy");
  const names = policies
    .filter((p) => p.default_version !== null && /(^|\/)CartPole-v1$/.test(p.env_id || ""))
    .map((p) => p.name);
  const offered = [...select.options].map((option) => option.value);
  if (names.join("\n") === offered.join("\n")) return;
  const chosen = select.value;
  select.replaceChildren(...names.map((name) => new Option(name, name, false, name === chosen)));
}

async function pollStatus() {
  try {
    showStatus(await call("/ui/status"), performance.now());
    if (!page.running) showProblem("");
  } catch (error) {
    showProblem(error.message);
  }
}

// ---- The game ----

function currentMode() {
  return document.querySelector('input[name="mode"]:checked').value;
}

function newEpisode() {
  const state = Array.from({ length: 4 }, () => uniform() * 0.1 - 0.05);
  page.game = { state, steps: 0, outcome: "running", episode: [] };
  draw();
  showGame("-");
}

async function chooseAction(observation, mode) {
  const policy = $("policy").value;
  if (!policy) throw new Error("no served policy was trained on CartPole-v1");
  const answer = await call(`/v2/models/${encodeURIComponent(policy)}/infer`, {
    inputs: [{ name: "observations", shape: [1, 4], datatype: "FP32", data: observation }],
    parameters: { mode },
  });
  return answer.outputs.find((output) => output.name === "action").data[0];
}

async function step() {
  const game = page.game;
  const mode = currentMode();
  const action = await chooseAction(game.state, mode);
  if (game !== page.game) return; // a new episode began while the policy answered
  game.episode.push({ observation: game.state, action, mode });
  game.state = cartpoleStep(game.state, action);
  game.steps += 1;
  if (poleFell(game.state)) game.outcome = "failed";
  else if (game.steps >= CARTPOLE.maxSteps) game.outcome = "finished";
  draw();
  showGame(action);
}

// Steps until the episode ends or Pause: at CartPole's own 50 Hz, or as fast as the server answers.
async function run(fast) {
  if (page.running) return;
  if (page.game.outcome !== "running") newEpisode();
  page.running = true;
  showProblem("");
  try {
    while (page.running && page.game.outcome === "running") {
      const began = performance.now();
      await step();
      const wait = fast ? 0 : CARTPOLE.tau * 1000 - (performance.now() - began);
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    }
  } catch (error) {
    showProblem(error.message);
  } finally {
    page.running = false;
  }
}

function showGame(action) {
  const game = page.game;
  $("steps").textContent = String(game.steps);
  $("mode").textContent = currentMode();
  $("action").textContent = action === "-" ? "-" : action === 1 ? "1 (push right)" : "0 (push left)";
  const outcome = {
    running: game.steps === 0 ? "ready" : "running",
    failed: `failed: the pole fell at step ${game.steps}`,
    finished: `finished: balanced for ${game.steps} steps`,
  }[game.outcome];
  $("episode").textContent = outcome;
  $("episode").className = { failed: "failed-episode", finished: "finished-episode" }[game.outcome] || "";
}

// Drawn as Gymnasium renders CartPole: a 600x400 view of the 4.8 m track.
function draw() {
  const canvas = $("cartpole");
  const context = canvas.getContext("2d");
  const scale = canvas.width / (CARTPOLE.xLimit * 2);
  const [x, , theta] = page.game.state;
  const cartX = x * scale + canvas.width / 2;
  const cartY = canvas.height - 100;
  context.clearRect(0, 0, canvas.width, canvas.height);
  context.strokeStyle = "#000";
  context.beginPath();
  context.moveTo(0, cartY);
  context.lineTo(canvas.width, cartY);
  context.stroke();
  context.fillStyle = "#000";
  context.fillRect(cartX - 25, cartY - 15, 50, 30);
  context.save();
  context.translate(cartX, cartY - 7.5);
  context.rotate(theta);
  context.fillStyle = page.game.outcome === "failed" ? "#b3261e" : "#ca9865";
  context.fillRect(-5, -scale * 2 * CARTPOLE.halfLength, 10, scale * 2 * CARTPOLE.halfLength);
  context.restore();
  context.fillStyle = "#8184cb";
  context.beginPath();
  context.arc(cartX, cartY - 7.5, 5, 0, 2 * Math.PI);
  context.fill();
}

function start() {
  $("token").value = page.token;
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    page.token = $("token").value.trim();
    sessionStorage.setItem("gymserve-token", page.token);
    pollStatus();
  });
  $("play").addEventListener("click", () => run(false));
  $("fast").addEventListener("click", () => run(true));
  $("pause").addEventListener("click", () => { page.running = false; });
  $("reset").addEventListener("click", () => { page.running = false; newEpisode(); });
  for (const radio of document.querySelectorAll('input[name="mode"]')) {
    radio.addEventListener("change", () => { $("mode").textContent = currentMode(); });
  }
  newEpisode();
  pollStatus();
  setInterval(pollStatus, 1000);
}

start();
