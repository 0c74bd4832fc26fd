// The demo page: drives the wasm facade (src/web.rs). Everything heavy runs on the GPU through
// Promises, so the page never blocks on a readback. window.demo exposes the state to the
// headless test (web/test/page.mjs).
import init, { Demo, WebRace, Playground, surface_grid, optimizer_catalog, optimizer_settings, demo_constants } from './pkg/adahessian_wgpu.js';

// The racers: every optimizer the library registers (from the wasm module's catalog, so a new
// method appears here without a change to this page), then Newton's method. Known ones keep
// their colours; `state.racers` says which run.
const COLORS = { sgd: '#7f7f7f', momentum: '#2ca02c', adam: '#ff7f0e', adahessian: '#d62728', newton: '#1f77b4' };
const MORE_COLORS = ['#9467bd', '#8c564b', '#e377c2', '#17becf', '#bcbd22', '#393b79'];
let RACERS = [];
let CATALOG = [];
function loadCatalog() {
  CATALOG = JSON.parse(optimizer_catalog());
  let extra = 0;
  RACERS = CATALOG.filter((o) => o.name !== 'adamw')
    .map((o) => ({ name: o.name, color: COLORS[o.name] || MORE_COLORS[extra++ % MORE_COLORS.length], lr: o.surface_lr, summary: o.summary }));
  RACERS.push({ name: 'newton', color: COLORS.newton, lr: 1.0, summary: "Newton's method with the exact 2×2 Hessian (damped)" });
  for (const r of RACERS) state['lr_' + r.name] = r.lr;
  for (const id of ['opt-a-method', 'opt-b-method']) {
    $(id).innerHTML = CATALOG.map((o) => `<option value="${o.name}" title="${o.summary}">${o.name}</option>`).join('');
  }
}
const activeRacers = () => RACERS.filter((r) => state.racers.split(',').includes(r.name));

// ---- lessons: one click sets the whole state and starts the race ------------------------------
// The lessons (titles, texts, the state each sets) and the claims each text makes, which
// tests/lessons.rs checks natively with the page's own racers: web/lessons.json.
const LESSONS = await fetch(new URL('./lessons.json', import.meta.url)).then((r) => {
  if (!r.ok) throw new Error(`lessons.json: HTTP ${r.status}`);
  return r.json();
});
// the playground lesson the next playground is built for (demo.pg.lesson once it exists)
let pgLesson = null;
// sets the state of a lesson; returns it (null for an unknown name)
function applyLesson(name) {
  const l = LESSONS.find((x) => x.name === name);
  if (!l) return null;
  if (l.pg) {
    // architecture settings a lesson does not name are the plain MLP's
    Object.assign(state, { depth: 0, archa: 'plain', archb: 'plain', norma: 'none', normb: 'none' }, l.state);
    pgLesson = l.name;
  } else {
    // every racer's default lr unless the lesson sets one
    for (const r of RACERS) state['lr_' + r.name] = r.lr;
    Object.assign(state, l.state, { x: null, y: null });
  }
  demo.lesson = l.name;
  $('lesson-text').innerHTML = l.pg ? `<b>${l.title}</b> runs in the <a href="#pg-section">network playground</a> below.` : `<b>${l.title}.</b> ${l.text}`;
  $('pg-lesson-text').innerHTML = l.pg ? `<b>${l.title}.</b> ${l.text}` : '';
  for (const b of document.querySelectorAll('#lessons button')) b.classList.toggle('active', b.dataset.lesson === l.name);
  return l;
}
// Surfaces' windows and starts: the library's numbers (demo_constants).
let BOUNDS = {}, STARTS = {}, MINIMUM = {};
function loadConstants() {
  const c = JSON.parse(demo_constants());
  for (const s of c.surfaces) { BOUNDS[s.name] = s.bounds; STARTS[s.name] = s.start; MINIMUM[s.name] = s.minimum; }
}
// a surface without a minimum (the saddle): f is charted on a signed log scale, a racer whose f
// ran off to −∞ has escaped, and the table counts the steps to escape (f ≤ −1)
const unbounded = () => MINIMUM[state.surface] === null;
function racerStatus(name, loss) {
  if (loss !== null) return loss.toExponential(3);
  const l = demo.race.losses[name] || [], last = l.findLast((v) => v !== null);
  return unbounded() && last !== undefined && last < 0 ? 'escaped (f → −∞)' : 'diverged';
}
const $ = (id) => document.getElementById(id);
const demo = (window.demo = { hover: (id, px, py) => (hovers[id] ? hovers[id](px, py) : null), ready: false, errors: [], race: { steps: 0, losses: {} }, pg: { steps: 0, a: [], b: [], lesson: null }, landscapeDone: false, curvatureDone: false, lessons: [], lesson: null, timings: {} });

// ---- state in the URL ----------------------------------------------------------------------
const state = {
  surface: 'quadratic', cond: 1, angle: 0, hpow: 1, clip: 0, x: null, y: null,
  dataset: 'circle', noise: 0.2, testfrac: 0.3, widths: '8-8', act: 'tanh', depth: 0, archa: 'plain', archb: 'plain', norma: 'none', normb: 'none',
  opta: 'adahessian', lra: 0.15, bsa: 32, optb: 'adam', lrb: 0.01, bsb: 32, sched: 'constant', horizon: 2000,
  pgdirs: 'pca', autoplay: 0, autotrain: 0,
  racers: 'sgd,momentum,adam,adahessian,newton',
};
function readHash() {
  const p = new URLSearchParams(location.hash.slice(1));
  // a lesson sets the whole state; a page opened with no state starts the first lesson
  const lesson = p.get('lesson') || (location.hash.length <= 1 ? LESSONS[0].name : null);
  const l = lesson && applyLesson(lesson);
  if (l && l.pg) state.autotrain = 1;
  else if (l) state.autoplay = 1;
  for (const [k, v] of p) if (k in state) state[k] = typeof state[k] === 'number' || state[k] === null ? Number(v) : v;
}
function writeHash() {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(state)) if (v !== null && k !== 'autoplay' && k !== 'autotrain') p.set(k, v);
  history.replaceState(null, '', '#' + p.toString());
}
// An error is shown until the reader's next change works (a reset that succeeds clears it);
// demo.errors keeps every one for the page test.
function fail(e) {
  const msg = e && e.message ? e.message : String(e);
  demo.errors.push(msg);
  $('error').hidden = false;
  $('error').textContent = msg;
  console.error(msg);
}
function clearError() { $('error').hidden = true; $('error').textContent = ''; }
// Settings changed by hand leave the lesson: its text would describe another race or playground.
function leaveLesson(part) {
  const note = 'You changed the settings by hand, so no lesson describes this any more; pick one above to start it again.';
  if (part === 'race' && demo.lesson && !(LESSONS.find((l) => l.name === demo.lesson) || {}).pg) {
    demo.lesson = null;
    $('lesson-text').textContent = note;
    for (const b of document.querySelectorAll('#lessons button')) b.classList.remove('active');
  }
  if (part === 'pg' && (pgLesson || demo.pg.lesson)) {
    pgLesson = null; demo.pg.lesson = null;
    $('pg-lesson-text').textContent = note;
  }
}

// ---- colour maps -------------------------------------------------------------------------------
function viridis(t) {
  t = Math.min(1, Math.max(0, t));
  const stops = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
  const f = t * (stops.length - 1), i = Math.min(stops.length - 2, Math.floor(f)), u = f - i;
  return stops[i].map((c, k) => Math.round(c + u * (stops[i + 1][k] - c)));
}
function paintField(canvas, values, nx, ny, log) {
  const ctx = canvas.getContext('2d');
  let lo = Infinity, hi = -Infinity;
  let min = Infinity;
  for (const x of values) if (isFinite(x)) min = Math.min(min, x);
  const v = Array.from(values, (x) => (log ? Math.log(x - min + 1e-3) : x));
  for (const x of v) if (isFinite(x)) { lo = Math.min(lo, x); hi = Math.max(hi, x); }
  const img = ctx.createImageData(canvas.width, canvas.height);
  for (let py = 0; py < canvas.height; py++) for (let px = 0; px < canvas.width; px++) {
    const i = Math.min(nx - 1, Math.floor(px / canvas.width * nx)), j = Math.min(ny - 1, Math.floor(py / canvas.height * ny));
    const c = viridis((v[(ny - 1 - j) * nx + i] - lo) / (hi - lo || 1));
    const o = 4 * (py * canvas.width + px);
    img.data[o] = c[0]; img.data[o + 1] = c[1]; img.data[o + 2] = c[2]; img.data[o + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
}

// ---- hover read-outs: each chart says what is under the cursor ------------------------------
// A chart's draw function registers, per canvas, a function from the cursor's canvas pixel to a
// line of text (null: nothing there); one tooltip element shows it. demo.hover(id, px, py) is the
// same read-out for the tests.
const hovers = {};
function lineHover(x0, x1, xOf, xName, series, fmt = (v) => v.toPrecision(3)) {
  // series: [{ name, pts: [[x, y], ...] }]; the nearest point of each in x
  return (px) => {
    if (px < x0 - 4 || px > x1 + 4) return null;
    const x = xOf(Math.min(x1, Math.max(x0, px)));
    let at = null;
    const parts = [];
    for (const s of series) {
      if (!s.pts.length) continue;
      let best = s.pts[0];
      for (const p of s.pts) if (Math.abs(p[0] - x) < Math.abs(best[0] - x)) best = p;
      if (at === null) at = best[0];
      parts.push(`${s.name} ${fmt(best[1])}`);
    }
    return parts.length ? `${xName} ${Number.isInteger(at) ? at : at.toPrecision(4)}: ${parts.join(' · ')}` : null;
  };
}
// a field painted by paintField over a ∈ [−1, 1] (x) and b ∈ [−1, 1] (y, upwards)
function gridHover(c, values, n, what) {
  return (px, py) => {
    const i = Math.min(n - 1, Math.max(0, Math.floor(px / c.width * n))), j = Math.min(n - 1, Math.max(0, Math.floor(py / c.height * n)));
    const a = -1 + 2 * i / (n - 1), b = -1 + 2 * (n - 1 - j) / (n - 1), v = values[(n - 1 - j) * n + i];
    return `a ${a.toFixed(2)}, b ${b.toFixed(2)}: ${what} ${isFinite(v) ? v.toPrecision(4) : '–'}`;
  };
}
function setupHover() {
  const tip = document.createElement('div');
  tip.id = 'chart-tip'; tip.className = 'chart-tip'; tip.hidden = true;
  document.body.appendChild(tip);
  for (const c of document.querySelectorAll('canvas')) {
    c.addEventListener('mousemove', (e) => {
      const r = c.getBoundingClientRect();
      const text = demo.hover(c.id, (e.clientX - r.left) * c.width / r.width, (e.clientY - r.top) * c.height / r.height);
      tip.hidden = !text;
      if (!text) return;
      tip.textContent = text;
      tip.style.left = `${e.pageX + 14}px`; tip.style.top = `${e.pageY + 14}px`;
    });
    c.addEventListener('mouseleave', () => { tip.hidden = true; });
  }
}

// ---- part 1: the race ----------------------------------------------------------------------
let race = null, raceBusy = false, playing = false, paths = {}, contour = null;
function kappa() { return Math.pow(10, state.cond); }
function toPixel([x, y]) {
  const [x0, x1, y0, y1] = BOUNDS[state.surface], c = $('race');
  return [(x - x0) / (x1 - x0) * c.width, (1 - (y - y0) / (y1 - y0)) * c.height];
}
function drawRace() {
  const c = $('race'), ctx = c.getContext('2d');
  if (contour) ctx.putImageData(contour, 0, 0);
  for (const r of RACERS) {
    const p = paths[r.name];
    if (!p || !p.length) continue;
    ctx.strokeStyle = r.color; ctx.lineWidth = 2; ctx.beginPath();
    p.forEach((q, i) => { const [a, b] = toPixel(q); i ? ctx.lineTo(a, b) : ctx.moveTo(a, b); });
    ctx.stroke();
    const [a, b] = toPixel(p[p.length - 1]);
    ctx.fillStyle = r.color; ctx.beginPath(); ctx.arc(a, b, 4, 0, 2 * Math.PI); ctx.fill();
  }
}
// iso-lines of z (n × n, row-major from the bottom) by marching squares, at 14 levels of log f
function isoLines(ctx, z, n, w, h) {
  let lo = Infinity, hi = -Infinity;
  for (const v of z) if (isFinite(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  ctx.strokeStyle = 'rgba(255,255,255,0.45)'; ctx.lineWidth = 1;
  const X = (i) => i / (n - 1) * w, Y = (j) => h - j / (n - 1) * h;
  for (let k = 1; k < 14; k++) {
    const level = lo + (hi - lo) * k / 14;
    ctx.beginPath();
    for (let j = 0; j + 1 < n; j++) for (let i = 0; i + 1 < n; i++) {
      const c = [[i, j], [i + 1, j], [i + 1, j + 1], [i, j + 1]].map(([a, b]) => [a, b, z[b * n + a]]);
      const pts = [];
      for (let e = 0; e < 4; e++) {
        const p = c[e], q = c[(e + 1) % 4];
        if ((p[2] < level) !== (q[2] < level)) {
          const t = (level - p[2]) / (q[2] - p[2]);
          pts.push([X(p[0] + t * (q[0] - p[0])), Y(p[1] + t * (q[1] - p[1]))]);
        }
      }
      for (let m = 0; m + 1 < pts.length; m += 2) { ctx.moveTo(...pts[m]); ctx.lineTo(...pts[m + 1]); }
    }
    ctx.stroke();
  }
}
function drawContour() {
  const c = $('race'), n = 120;
  const f = surface_grid(state.surface, kappa(), state.angle, new Float64Array(BOUNDS[state.surface]), n, n);
  paintField(c, f, n, n, true);
  let min = Infinity;
  for (const v of f) min = Math.min(min, v);
  isoLines(c.getContext('2d'), Array.from(f, (v) => Math.log(v - min + 1e-3)), n, c.width, c.height);
  contour = c.getContext('2d').getImageData(0, 0, c.width, c.height);
}
// The race's GPU work runs one call at a time. A reset (a lesson's click, a changed control)
// waits for the step in flight and no new step starts while a reset waits: the animation loop
// asks for a step every frame, and a reset that polled for a free moment (as this did) lost to
// it for seconds whenever a step took longer than a frame.
let resetsWaiting = 0;
const raceIdleWaiters = [];
const raceIdle = () => new Promise((resolve) => raceIdleWaiters.push(resolve));
function releaseRace() {
  raceBusy = false;
  for (const resolve of raceIdleWaiters.splice(0)) resolve();
}
async function resetRace() {
  resetsWaiting++;
  const asked = performance.now();
  try {
    while (raceBusy) await raceIdle();
  } finally { resetsWaiting--; }
  raceBusy = true;
  // what the reset waited for and what it took (the page test prints them)
  const timing = { lesson: demo.lesson, waited: performance.now() - asked };
  try {
    const start = state.x === null ? STARTS[state.surface] : [state.x, state.y];
    drawContour();
    timing.contour = performance.now() - asked - timing.waited;
    race = await WebRace.create(demo.gpu, state.surface, kappa(), state.angle, start[0], start[1],
      activeRacers().map((r) => r.name).join(','), new Float32Array(activeRacers().map((r) => state['lr_' + r.name])), state.hpow, !!state.clip);
    paths = Object.fromEntries(activeRacers().map((r) => [r.name, [start]]));
    const costs = Object.fromEntries(JSON.parse(race.costs()).map((c) => [c.name, c.grad_evals_per_step]));
    demo.race = { steps: 0, losses: Object.fromEntries(activeRacers().map((r) => [r.name, []])), costs, lesson: demo.lesson };
    timing.created = performance.now() - asked;
    drawRace();
    drawRaceChart();
    clearError();
  } catch (e) { fail(e); }
  demo.timings.resets = (demo.timings.resets || []).concat([timing]).slice(-50);
  releaseRace();
}
let firstRaceFrameDrawn;
const firstRaceFrame = new Promise((resolve) => { firstRaceFrameDrawn = resolve; });
async function stepRace(n) {
  if (!race || raceBusy || resetsWaiting) return;
  raceBusy = true;
  try {
    const rows = JSON.parse(await race.step(n));
    // one loss and one point per step taken (a frame takes several steps)
    for (const r of rows) {
      for (const [x, y] of r.path) if (x !== null && y !== null) paths[r.name].push([x, y]);
      for (const l of r.losses) demo.race.losses[r.name].push(l);
    }
    demo.race.steps += n;
    // milliseconds from navigation to the first frame that moved a racer (BENCHMARKS.md)
    if (demo.timings.firstRaceFrame === undefined) {
      demo.timings.firstRaceFrame = performance.now();
      firstRaceFrameDrawn();
    }
    $('race-losses').innerHTML = '<tr><th>optimizer</th><th>loss</th></tr>' + rows.map((r) =>
      `<tr><td><span class="swatch" style="background:${RACERS.find((q) => q.name === r.name).color}"></span>${r.name}</td><td>${racerStatus(r.name, r.loss)}</td></tr>`).join('');
    const ro = JSON.parse(await race.readout(Math.max(0, activeRacers().findIndex((r) => r.name === 'adahessian'))));
    const f = (v) => (v === null ? '–' : v.toFixed(3));
    $('readout').innerHTML = `<tr><th></th><th>x</th><th>y</th></tr>
      <tr><td>Hessian row</td><td>${f(ro.hessian[0])}, ${f(ro.hessian[1])}</td><td>${f(ro.hessian[1])}, ${f(ro.hessian[2])}</td></tr>
      <tr><td>|diagonal|</td><td>${f(Math.abs(ro.diagonal[0]))}</td><td>${f(Math.abs(ro.diagonal[1]))}</td></tr>
      <tr><td>row norm</td><td>${f(ro.row_norms[0])}</td><td>${f(ro.row_norms[1])}</td></tr>
      <tr><td>AdaHessian √v̂</td><td>${ro.adahessian ? f(ro.adahessian[0]) : '–'}</td><td>${ro.adahessian ? f(ro.adahessian[1]) : '–'}</td></tr>`;
    drawRace();
    drawRaceChart();
  } catch (e) { fail(e); playing = false; firstRaceFrameDrawn(); }
  releaseRace();
}
// loss against steps or against cost (gradient-evaluation equivalents, the library's count per
// racer), log scale; and each racer's steps and cost to get within the tolerance of the minimum
function drawRaceChart() {
  const c = $('race-chart'), ctx = c.getContext('2d');
  ctx.clearRect(0, 0, c.width, c.height);
  const byCost = $('chart-x').value === 'cost';
  // a log scale where f has a minimum of 0; where f falls without bound, sign(f)·log10(1 + |f|),
  // so an escape down the saddle is drawn instead of dropped
  const signed = unbounded();
  const scale = signed ? (v) => Math.sign(v) * Math.log10(1 + Math.abs(v)) : Math.log10;
  const series = activeRacers().map((r) => {
    const l = demo.race.losses[r.name] || [], per = demo.race.costs ? demo.race.costs[r.name] || 1 : 1;
    return { r, per, pts: l.map((v, i) => [(i + 1) * (byCost ? per : 1), v]).filter((p) => p[1] !== null && isFinite(p[1]) && (signed || p[1] > 0)) };
  });
  const all = series.flatMap((s) => s.pts);
  if (all.length < 2) return;
  const xmax = Math.max(...all.map((p) => p[0]));
  // at most 12 decades below the highest loss: a racer that reaches 1e-36 must not flatten the others
  const ly = all.map((p) => scale(p[1])), top = Math.max(...ly);
  const lo = Math.max(Math.min(...ly), top - (signed ? 40 : 12)), hi = Math.max(top, lo + 1e-6);
  const X = (x) => 40 + (x / xmax) * (c.width - 50), Y = (v) => 10 + (hi - Math.max(lo, scale(v))) / (hi - lo) * (c.height - 35);
  ctx.strokeStyle = '#999'; ctx.lineWidth = 1; ctx.beginPath(); ctx.moveTo(40, 10); ctx.lineTo(40, c.height - 25); ctx.lineTo(c.width - 10, c.height - 25); ctx.stroke();
  ctx.fillStyle = '#333'; ctx.font = '11px sans-serif';
  const label = (t) => (signed ? `${t < 0 ? '−' : ''}1e${Math.abs(t).toFixed(1)}` : `1e${t.toFixed(1)}`);
  ctx.fillText(label(hi), 2, 14); ctx.fillText(label(lo), 2, c.height - 28);
  if (signed && lo < 0 && hi > 0) {
    ctx.strokeStyle = '#ccc'; ctx.setLineDash([3, 3]); ctx.beginPath(); ctx.moveTo(40, Y(0)); ctx.lineTo(c.width - 10, Y(0)); ctx.stroke(); ctx.setLineDash([]);
    ctx.fillText('f = 0', 2, Y(0) + 4);
  }
  ctx.fillText(byCost ? `gradient evaluations (to ${xmax.toFixed(0)})` : `steps (to ${xmax})`, c.width / 2 - 60, c.height - 8);
  for (const s of series) {
    ctx.strokeStyle = s.r.color; ctx.lineWidth = 2; ctx.beginPath();
    s.pts.forEach((p, i) => (i ? ctx.lineTo(X(p[0]), Y(p[1])) : ctx.moveTo(X(p[0]), Y(p[1]))));
    ctx.stroke();
  }
  hovers['race-chart'] = lineHover(40, c.width - 10, (px) => (px - 40) / (c.width - 50) * xmax,
    byCost ? 'gradient evaluations' : 'step', series.map((s) => ({ name: s.r.name, pts: s.pts })), (v) => `f = ${v.toPrecision(4)}`);
  const tol = signed ? -1 : Number($('tol').value) || 1e-3;
  const goal = signed ? 'escape (f ≤ −1)' : 'f ≤ tol';
  $('race-cost').innerHTML = `<tr><th>optimizer</th><th>cost / step</th><th>steps to ${goal}</th><th>cost to ${goal}</th></tr>` + series.map((s) => {
    const l = demo.race.losses[s.r.name] || [], k = l.findIndex((v) => v !== null && v <= tol);
    return `<tr><td><span class="swatch" style="background:${s.r.color}"></span>${s.r.name}</td><td>${s.per.toFixed(2)}</td><td>${k < 0 ? '–' : k + 1}</td><td>${k < 0 ? '–' : ((k + 1) * s.per).toFixed(1)}</td></tr>`;
  }).join('');
}
function raceLoop() {
  if (playing) stepRace(2);
  else firstRaceFrameDrawn();   // nothing to wait for: the playground may start building
  requestAnimationFrame(raceLoop);
}

// ---- part 2: the playground ------------------------------------------------------------------
// Two networks, A and B, from one seed on the same points; each has its own optimizer text (the
// library's parser: `adahessian(beta2=0.99)`), lr and batch size. A CSV the reader picks is read
// by the library's own loader (x, y, label per row).
const CLASS_COLORS = [[49, 130, 189], [230, 85, 13], [49, 163, 84], [117, 107, 177], [214, 39, 40], [140, 86, 75],
  [227, 119, 194], [127, 127, 127], [188, 189, 34], [23, 190, 207], [57, 59, 121], [99, 121, 57], [140, 109, 49],
  [132, 60, 57], [123, 65, 115], [82, 84, 163]];
// a class named after a colour is drawn in it (labels red, green, blue are not recoloured by
// their sorted index); other classes take the palette in class order
const NAMED_COLORS = { red: [214, 39, 40], green: [44, 160, 44], blue: [31, 119, 180], orange: [255, 127, 14],
  purple: [148, 103, 189], brown: [140, 86, 75], pink: [227, 119, 194], gray: [127, 127, 127], grey: [127, 127, 127],
  olive: [188, 189, 34], cyan: [23, 190, 207], yellow: [230, 200, 0], black: [30, 30, 30], magenta: [200, 0, 200] };
function classColor(k) {
  const names = (demo.pg.info && demo.pg.info.class_names) || [];
  const named = NAMED_COLORS[String(names[k] || '').trim().toLowerCase()];
  return named || CLASS_COLORS[k % CLASS_COLORS.length];
}
let pgA = null, pgB = null, training = false, curvHistory = [], csvText = '', csvName = '';
// the curvature panel's points so far (the page test reads λmin along the way)
Object.defineProperty(demo, 'curvatureHistory', { get: () => curvHistory });
const curvEvery = () => (demo.pg.lesson ? 50 : 100);
function pgSettings(which) {
  return JSON.stringify({
    data: state.dataset, csv_name: csvName || 'the uploaded file', noise: state.noise, samples: 400, test_fraction: state.testfrac,
    hidden: state.widths, activation: state.act, depth: state.depth, residual: state['arch' + which] === 'residual', norm: state['norm' + which],
    optimizer: state['opt' + which], lr: state['lr' + which], batch: state['bs' + which],
    schedule: state.sched, horizon: state.horizon, seed: 7,
  });
}
// "name(k=v, …)" with every setting of the method but its lr and seed, for the reader to edit
function optimizerText(name) {
  const o = CATALOG.find((c) => c.name === name);
  if (!o) return name;
  const kv = Object.entries(o.settings).filter(([k]) => k !== 'lr' && k !== 'seed')
    .map(([k, v]) => `${k}=${v === null ? 'none' : v}`);
  return kv.length ? `${name}(${kv.join(', ')})` : name;
}
// The playground's GPU work runs one job at a time: a job hands over to the next in line directly,
// so the training loop (which steps only when no one waits) cannot take the device back first,
// and the status line says what runs and what waits. Panels and exports queue in the order asked;
// a rebuild (a lesson's click, a changed setting) goes to the front, so it waits only for the job
// running now, and the panel jobs that were queued for the old networks are dropped when their
// turn comes (the rebuild queues its own). A job on the GPU cannot be interrupted.
const pgJobs = { running: null, waiting: [] };
demo.jobs = () => ({ running: pgJobs.running, waiting: pgJobs.waiting.map((w) => w.label) });
function showJobs() {
  const el = $('pg-jobs');
  if (!el) return;
  const busy = pgJobs.running && pgJobs.running !== 'training';
  el.textContent = busy ? `running: ${pgJobs.running}${pgJobs.waiting.length ? ' · next: ' + pgJobs.waiting.map((w) => w.label).join(', ') : ''}` : '';
}
async function withPlayground(label, job, first = false) {
  if (pgJobs.running !== null || pgJobs.waiting.length) {
    await new Promise((go) => {
      const w = { label, go, first };
      if (first) pgJobs.waiting.unshift(w); else pgJobs.waiting.push(w);
      showJobs();
    });
  }
  pgJobs.running = label; showJobs();
  try { return await job(); } finally {
    const next = pgJobs.waiting.shift();
    pgJobs.running = next ? next.label : null;
    if (next) next.go();
    showJobs();
  }
}
// A rebuild waits: a job of several GPU calls stops between them, its result being for networks
// about to be replaced.
const rebuildWaiting = () => pgJobs.waiting.some((w) => w.first);
// Which networks a panel job was asked for: bumped when a rebuild replaces them.
let pgGeneration = 0;
function panelJob(label, job) {
  const asked = pgGeneration;
  return withPlayground(label, async () => (asked === pgGeneration ? job() : undefined));
}
// Resets are coalesced: one asked for while the playground is busy waits its turn, and gives way
// to any asked for after it (which reads the newer state), so the last request wins.
let resetsAsked = 0;
function resetPlayground() { return runReset(++resetsAsked); }
async function runReset(ticket) {
  return withPlayground('rebuilding the networks', async () => {
  // a newer reset waiting behind this one reads the newer state: this one gives way
  if (ticket < resetsAsked) return true;
  try {
    if (state.dataset === 'csv' && !csvText) {
      state.dataset = 'circle';
      $('dataset').value = 'circle';
      $('pg-info').textContent = 'The page was opened with dataset=csv but the file is not in the URL: pick it again.';
    }
    const [a, b] = await Promise.all(['a', 'b'].map((w) => Playground.create(demo.gpu, pgSettings(w), csvText)));
    if (pgA) pgA.free();
    if (pgB) pgB.free();
    pgA = a; pgB = b; pgGeneration++;
    demo.pg = { steps: 0, a: [], b: [], lesson: pgLesson, info: JSON.parse(pgA.info()), infoB: JSON.parse(pgB.info()), drawn: {} };
    curvHistory = [];
    const cap = (w, info) => `${w.toUpperCase()}: ${info.optimizer}, lr ${state['lr' + w]}, batch ${info.batch}`;
    $('cap-a').textContent = cap('a', demo.pg.info);
    $('cap-b').textContent = cap('b', demo.pg.infoB);
    const i = demo.pg.info;
    $('pg-info').textContent = `${i.model} (${i.params} parameters), ${i.classes} classes, ${i.train_rows} train / ${i.test_rows} test points`;
    $('pg-legend').innerHTML = i.class_names.map((n, k) => `<span class="swatch" style="background:rgb(${classColor(k).join(',')})"></span>${n}`).join(' ');
    await drawBoundaries();
    // the lesson's first frame: the new networks' decision regions (page.mjs times it)
    demo.pg.drawn.boundaries = true;
    drawCurves();
    // no blank panels: the landscape, curvature and per-layer views of the new networks follow
    // (each waits its turn behind training)
    for (const id of ['landscape', 'curvature'].concat(demo.pg.info.tensors <= 12 ? ['per-layer'] : [])) {
      const c = $(id), ctx = c.getContext('2d');
      ctx.fillStyle = '#fff'; ctx.fillRect(0, 0, c.width, c.height);
      ctx.fillStyle = '#666'; ctx.fillText('computing…', 10, 20);
    }
    // the per-layer panel costs power iterations for every tensor: on a deep network (more
    // than 12 tensors) it waits for its button
    const perLayerAuto = demo.pg.info.tensors <= 12;
    if (!perLayerAuto) {
      const c = $('per-layer'), ctx = c.getContext('2d');
      ctx.fillStyle = '#fff'; ctx.fillRect(0, 0, c.width, c.height);
      ctx.fillStyle = '#666'; ctx.fillText(`${demo.pg.info.tensors} tensors: press "per-layer curvature" to compute (a power iteration each)`, 10, 20);
    }
    // the landscape and per-layer views, a forward pass per grid point and a power iteration per
    // tensor, wait for the first training point when the networks train, so a learner sees them
    // learn first. The curvature at step 0 comes first on a small network (a lesson reads it);
    // on a deep one (each readout takes seconds on a CPU adapter) the readout after the first 5
    // steps is the first, unless training is paused before them.
    const deep = !perLayerAuto;
    pgPanelsLater = () => {
      if (deep && !training && !curvHistory.length) curvature();
      landscape();
      if (perLayerAuto) perLayer();
    };
    setTimeout(() => { if (!deep) curvature(); if (!training) runPanelsLater(); }, 0);
    clearError();
    return true;
  } catch (e) { fail(e); }
  return false;
  }, true);
}
// each pixel mixes the class colours by the predicted probabilities, lightened; train points
// filled, test points as rings
async function drawBoundaries() {
  const info = demo.pg.info, n = info.grid_n, k = info.classes, pts = pgA.points();
  const [x0, x1, y0, y1] = info.bounds;
  const palette = Array.from({ length: k }, (_, q) => classColor(q));
  for (const [pg, id] of [[pgA, 'boundary-a'], [pgB, 'boundary-b']]) {
    const p = await pg.boundary(), c = $(id), ctx = c.getContext('2d');
    const img = ctx.createImageData(c.width, c.height);
    for (let y = 0; y < c.height; y++) for (let x = 0; x < c.width; x++) {
      const g = (Math.floor(y / c.height * n) * n + Math.floor(x / c.width * n)) * k, o = 4 * (y * c.width + x);
      for (let ch = 0; ch < 3; ch++) {
        let v = 0;
        for (let q = 0; q < k; q++) v += p[g + q] * palette[q][ch];
        img.data[o + ch] = 0.5 * v + 0.5 * 255;
      }
      img.data[o + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
    for (let m = 0; m < pts.length; m += 4) {
      const px = (pts[m] - x0) / (x1 - x0) * c.width, py = (y1 - pts[m + 1]) / (y1 - y0) * c.height;
      const col = `rgb(${classColor(pts[m + 2]).join(',')})`;
      ctx.beginPath(); ctx.arc(px, py, 2.4, 0, 2 * Math.PI);
      if (pts[m + 3]) { ctx.strokeStyle = col; ctx.lineWidth = 1.2; ctx.stroke(); } else { ctx.fillStyle = col; ctx.fill(); }
    }
  }
}
function drawCurves() {
  const c = $('curves'), ctx = c.getContext('2d');
  ctx.fillStyle = '#fff'; ctx.fillRect(0, 0, c.width, c.height);
  const all = [...demo.pg.a, ...demo.pg.b].flatMap((m) => [m.train_loss, m.test_loss]).filter((v) => v !== null && isFinite(v));
  if (!all.length) return;
  const hi = Math.max(...all), n = Math.max(demo.pg.a.length, 2);
  for (const [hist, color] of [[demo.pg.a, '#1f77b4'], [demo.pg.b, '#d62728']]) for (const [key, dash] of [['train_loss', []], ['test_loss', [5, 4]]]) {
    ctx.strokeStyle = color; ctx.setLineDash(dash); ctx.lineWidth = 2; ctx.beginPath();
    hist.forEach((m, i) => { const x = i / (n - 1) * (c.width - 10) + 5, y = c.height - 5 - (m[key] / hi) * (c.height - 10); i ? ctx.lineTo(x, y) : ctx.moveTo(x, y); });
    ctx.stroke();
  }
  ctx.setLineDash([]);
  ctx.fillStyle = '#333'; ctx.font = '11px sans-serif'; ctx.fillText(`0 … ${hi.toPrecision(3)}`, 8, 12);
  const pts = (hist, key) => hist.map((m, i) => [i, m[key]]).filter((p) => p[1] !== null && isFinite(p[1]));
  const steps = demo.pg.a.map((m) => m.step);
  const curve = lineHover(5, c.width - 5, (px) => (px - 5) / (c.width - 10) * (n - 1), 'point',
    [{ name: 'A train', pts: pts(demo.pg.a, 'train_loss') }, { name: 'A test', pts: pts(demo.pg.a, 'test_loss') },
      { name: 'B train', pts: pts(demo.pg.b, 'train_loss') }, { name: 'B test', pts: pts(demo.pg.b, 'test_loss') }],
    (v) => v.toFixed(4));
  // say the training step, not the point's index
  hovers.curves = (px, py) => {
    const t = curve(px, py);
    if (!t) return null;
    const i = Math.round(Math.min(n - 1, Math.max(0, (px - 5) / (c.width - 10) * (n - 1))));
    return t.replace(/^point \d+/, `step ${steps[Math.min(i, steps.length - 1)]}, loss`);
  };
}
// A's point of a training job that stopped before B's steps (see trainStep)
let pgAhead = null;
// the new networks' landscape and per-layer panels, queued after their first training point
let pgPanelsLater = null;
function runPanelsLater() {
  const go = pgPanelsLater;
  pgPanelsLater = null;
  if (go) go();
}
async function trainStep() {
  // training steps only when nothing the reader asked for waits
  if (!training || !pgA || pgJobs.running !== null || pgJobs.waiting.length) return;
  return withPlayground('training', async () => {
  try {
    // a rebuild waits (a lesson's click): both networks are about to be replaced, so B's steps
    // would only delay it (on a deep network each takes a second on a CPU adapter). A's point is
    // kept, and B catches up first if the same networks train on (a rebuild that failed):
    // A and B stay at the same step.
    const ahead = pgAhead && pgAhead.generation === pgGeneration ? pgAhead.point : null;
    pgAhead = null;
    const a = ahead || JSON.parse(await pgA.train(5));
    if (!ahead && rebuildWaiting()) { pgAhead = { generation: pgGeneration, point: a }; return; }
    const b = JSON.parse(await pgB.train(5));
    demo.pg.a.push(a); demo.pg.b.push(b); demo.pg.steps = a.step;
    const acc = (v) => (v === null || v === undefined ? '–' : v.toFixed(3));
    $('pg-step').textContent = `step ${a.step}, lr A ${a.lr.toPrecision(3)}, B ${b.lr.toPrecision(3)} · test accuracy A ${acc(a.test_accuracy)}, B ${acc(b.test_accuracy)} · test loss A ${acc(a.test_loss)}, B ${acc(b.test_loss)}`;
    if (demo.pg.a.length % 4 === 1) await drawBoundaries();
    drawCurves();
    if (pgPanelsLater) setTimeout(runPanelsLater, 0);
    // the curvature panel follows training
    // (and once right after the first steps: before them an adaptive method's P is ε alone)
    if (a.step % curvEvery() < 5 || a.step === 5) setTimeout(curvature, 0);
  } catch (e) { fail(e); training = false; runPanelsLater(); }
  });
}
function trainLoop() { trainStep().finally(() => setTimeout(trainLoop, 0)); }
// what a panel cost: wall time on this GPU, and Hessian-vector products where it used them
const costText = (ms, hvps) => ` (${hvps !== undefined ? hvps + ' HVPs, ' : ''}${ms.toFixed(0)} ms)`;
async function landscape() {
  return panelJob('landscape', async () => {
  if (!pgA) return;
  try {
    // PCA needs 3 snapshots of the weights (one every 20 steps): random directions before that
    const dirs = state.pgdirs === 'pca' && demo.pg.steps < 60 ? 'random' : state.pgdirs;
    const t0 = performance.now();
    // 41 × 41 points; 21 × 21 on a deep network (each point is a forward pass through it)
    const n = demo.pg.info.tensors > 12 ? 21 : 41, v = new Float32Array(n * n);
    // a few rows per GPU call (a deep network's whole grid takes seconds): a rebuild asked for
    // meanwhile runs after the current rows, and this landscape, of the old networks, stops
    const per = Math.ceil(n / 7);
    let path = [];
    for (let row = 0; row < n; row += per) {
      if (row && rebuildWaiting()) return;
      const k = Math.min(per, n - row), part = await pgA.landscape_rows(n, dirs, row, k);
      v.set(part.subarray(0, k * n), row * n);
      path = part.slice(k * n);
    }
    paintField($('landscape'), v, n, n, true);
    const c = $('landscape'), ctx = c.getContext('2d');
    hovers.landscape = gridHover(c, v, n, 'training loss');
    let lmin = Infinity;
    for (const x of v) if (isFinite(x)) lmin = Math.min(lmin, x);
    isoLines(ctx, Array.from(v, (x) => Math.log(x - lmin + 1e-3)), n, c.width, c.height);
    // the recent trajectory, projected onto the plane (a, b ∈ [−1, 1] fill the canvas)
    const px = (a) => (a + 1) / 2 * c.width, py = (b) => (1 - (b + 1) / 2) * c.height;
    ctx.strokeStyle = '#ff4040'; ctx.lineWidth = 2; ctx.beginPath();
    for (let k = 0; k + 1 < path.length; k += 2) k ? ctx.lineTo(px(path[k]), py(path[k + 1])) : ctx.moveTo(px(path[k]), py(path[k + 1]));
    ctx.stroke();
    ctx.strokeStyle = '#fff'; ctx.lineWidth = 2; ctx.beginPath();
    ctx.moveTo(c.width / 2 - 6, c.height / 2); ctx.lineTo(c.width / 2 + 6, c.height / 2);
    ctx.moveTo(c.width / 2, c.height / 2 - 6); ctx.lineTo(c.width / 2, c.height / 2 + 6); ctx.stroke();
    ctx.fillStyle = '#fff'; ctx.fillText(`${dirs} directions, ${n}×${n}`, 6, 14);
    $('landscape-cost').textContent = costText(performance.now() - t0) + `: ${n * n} loss evaluations${dirs === 'hessian' ? ' and the power iterations' : ''}`;
    demo.landscapeDirections = dirs;
    demo.landscapeDone = demo.pg.drawn.landscape = true;
  } catch (e) { fail(e); }
  });
}
// Li et al.'s non-convexity map (their Fig. 7) on the landscape's plane: |λmin/λmax| at 11×11
// points, 10 Lanczos steps each, bright where negative curvature is as strong as positive
async function nonconvexity() {
  return panelJob('non-convexity map', async () => {
  if (!pgA) return;
  try {
    const dirs = state.pgdirs === 'pca' && demo.pg.steps < 60 ? 'random' : state.pgdirs;
    const t0 = performance.now(), n = 11;
    const all = await pgA.nonconvexity(n, dirs), v = all.slice(0, n * n), hvps = all[n * n];
    const c = $('landscape'), ctx = c.getContext('2d');
    paintField(c, v, n, n, false);
    hovers.landscape = gridHover(c, v, n, '|λmin/λmax|');
    let hi = 0;
    for (const x of v) if (isFinite(x)) hi = Math.max(hi, x);
    ctx.fillStyle = '#fff';
    ctx.fillText(`|λmin/λmax| on ${dirs} directions, ${n}×${n}: 0 (dark) … ${hi.toPrecision(3)} (bright); centre ${v[(n * n - 1) / 2].toPrecision(3)}`, 6, 14);
    $('landscape-cost').textContent = costText(performance.now() - t0, hvps) + `: Lanczos at ${n * n} points`;
    demo.nonconvexity = { n, values: Array.from(v), hvps };
  } catch (e) { fail(e); }
  });
}
async function curvature() {
  return panelJob('curvature', async () => {
  if (!pgA) return;
  try {
    const t0 = performance.now();
    // λmax, λmin, tr H and the edge of stability, one GPU call each (`curvature_part`): a
    // lesson's click waits at most for one part, not for both networks' whole readout
    const readCurvature = async (pg) => {
      const r = { hvps: 0 };
      for (let part = 0; part < 4; part++) {
        if (rebuildWaiting()) return null;
        const p = JSON.parse(await pg.curvature_part(part));
        Object.assign(r, p, { hvps: r.hvps + p.hvps });
      }
      return r;
    };
    const r = await readCurvature(pgA);
    if (!r) return;
    const rb = await readCurvature(pgB);
    if (!rb) return;
    const ms = performance.now() - t0;
    const last = demo.pg.a[demo.pg.a.length - 1], lastB = demo.pg.b[demo.pg.b.length - 1];
    curvHistory.push({ step: demo.pg.steps, ...r, topB: rb.top, bottomB: rb.bottom, edgeB: rb.edge, testA: last && last.test_loss, testB: lastB && lastB.test_loss });
    demo.curvature = r; demo.curvatureB = rb;
    const c = $('curvature'), ctx = c.getContext('2d');
    ctx.fillStyle = '#fff'; ctx.fillRect(0, 0, c.width, c.height);
    // log scale: λmax(H) of A and B, tr H / 10 of A, the sharpness each optimizer sees
    // (λmax(P⁻¹H); the same as λmax(H) for SGD) and the edge of stability each is subject to
    // (dashed), as the library computes them
    // λmax(P⁻¹H) only where P is a preconditioner (for SGD and momentum it is λmax(H) itself and
    // would hide that line); each network's edge dashed in a colour of its own
    const pre = (e) => (e && e.preconditioned ? e.sharpness : NaN);
    const series = [[(h) => h.top, '#1f77b4', []], [(h) => h.topB, '#d62728', []], [(h) => h.trace / 10, '#2ca02c', []],
      [(h) => pre(h.edge), '#9467bd', []], [(h) => (h.edge ? h.edge.threshold : NaN), '#222', [6, 4]],
      [(h) => pre(h.edgeB), '#e377c2', []], [(h) => (h.edgeB ? h.edgeB.threshold : NaN), '#8c564b', [2, 3]],
      // negative curvature: −λmin where λmin < 0 (A cyan, B orange)
      [(h) => (h.bottom < 0 ? -h.bottom : NaN), '#17becf', [1, 2]], [(h) => (h.bottomB < 0 ? -h.bottomB : NaN), '#ff7f0e', [1, 2]]];
    const logs = curvHistory.flatMap((h) => series.map(([f]) => f(h))).filter((v) => isFinite(v) && v > 0).map(Math.log10);
    const lo = Math.min(...logs, 0) - 0.1, hi = Math.max(...logs, lo + 1) + 0.1, n = Math.max(curvHistory.length, 2);
    const Y = (v) => c.height - 10 - (Math.log10(v) - lo) / (hi - lo) * (c.height - 48);
    // the y axis: one labelled line per decade
    ctx.font = '10px sans-serif';
    for (let d = Math.ceil(lo); d <= Math.floor(hi); d++) {
      const y = Y(Math.pow(10, d));
      ctx.strokeStyle = '#eee'; ctx.lineWidth = 1; ctx.setLineDash([]); ctx.beginPath(); ctx.moveTo(38, y); ctx.lineTo(c.width - 10, y); ctx.stroke();
      ctx.fillStyle = '#666'; ctx.fillText(d === 0 ? '1' : `1e${d}`, 2, y + 3);
    }
    for (const [f, color, dash] of series) {
      ctx.strokeStyle = ctx.fillStyle = color; ctx.lineWidth = 2; ctx.setLineDash(dash); ctx.beginPath();
      let started = false;
      curvHistory.forEach((h, i) => {
        const v = f(h);
        if (!(isFinite(v) && v > 0)) return;
        const x = 40 + i / (n - 1) * (c.width - 50), y = Y(v);
        started ? ctx.lineTo(x, y) : ctx.moveTo(x, y); started = true; ctx.fillRect(x - 3, y - 3, 6, 6);
      });
      ctx.stroke();
    }
    ctx.setLineDash([]);
    const names = ['λmax A', 'λmax B', 'tr A / 10', 'λmax(P⁻¹H) A', 'edge A', 'λmax(P⁻¹H) B', 'edge B', '−λmin A', '−λmin B'];
    const readout = lineHover(40, c.width - 10, (px) => (px - 40) / (c.width - 50) * (n - 1), 'point',
      series.map(([f], k) => ({ name: names[k], pts: curvHistory.map((h, i) => [i, f(h)]).filter((p) => isFinite(p[1]) && p[1] > 0) })));
    const curvSteps = curvHistory.map((h) => h.step);
    hovers.curvature = (px, py) => {
      const t = readout(px, py);
      if (!t) return null;
      const i = Math.round(Math.min(n - 1, Math.max(0, (px - 40) / (c.width - 50) * (n - 1))));
      return t.replace(/^point \d+/, `step ${curvSteps[Math.min(i, curvSteps.length - 1)]}`);
    };
    ctx.fillStyle = '#333'; ctx.font = '11px sans-serif';
    ctx.fillText(`step ${demo.pg.steps}: λmax A ${r.top.toPrecision(3)}, B ${rb.top.toPrecision(3)}; λmin A ${r.bottom.toPrecision(3)}, B ${rb.bottom.toPrecision(3)}; tr A ${r.trace.toPrecision(3)}`, 10, 14);
    const edgeText = (w, e) => `${w} (${state['opt' + w.toLowerCase()].split('(')[0]}): ${e.preconditioned ? 'λmax(P⁻¹H)' : 'λmax'} ${e.sharpness.toPrecision(3)}, edge ${e.threshold.toPrecision(3)}`;
    ctx.fillText([r.edge && edgeText('A', r.edge), rb.edge && edgeText('B', rb.edge)].filter(Boolean).join('; '), 10, 28);
    const f = (v) => (v === null || v === undefined ? '–' : v.toFixed(3));
    if (last && lastB) ctx.fillText(`test loss A ${f(last.test_loss)}, B ${f(lastB.test_loss)}`, 10, 42);
    $('curvature-cost').textContent = costText(ms, r.hvps + rb.hvps);
    demo.curvatureDone = demo.pg.drawn.curvature = true;
    demo.curvatureFor = { lesson: demo.pg.lesson, step: demo.pg.steps };
  } catch (e) { fail(e); }
  });
}
// |λmax| and |trace| of each tensor's diagonal block of A's Hessian, log-scale bars
async function perLayer() {
  return panelJob('per-layer curvature', async () => {
  if (!pgA) return;
  try {
    const t0 = performance.now();
    const blocks = JSON.parse(await pgA.per_layer()), ms = performance.now() - t0;
    const c = $('per-layer'), ctx = c.getContext('2d');
    ctx.fillStyle = '#fff'; ctx.fillRect(0, 0, c.width, c.height);
    const vals = blocks.flatMap((b) => [Math.abs(b.top_eigenvalue), Math.abs(b.trace)]).filter((v) => v > 0);
    const lo = Math.floor(Math.log10(Math.min(...vals, 1))) , hi = Math.ceil(Math.log10(Math.max(...vals, 10)));
    const H = (v) => (v > 0 ? Math.max(0, (Math.log10(v) - lo) / (hi - lo)) * (c.height - 50) : 0);
    const w = (c.width - 40) / blocks.length;
    ctx.font = '10px sans-serif';
    blocks.forEach((b, i) => {
      const x = 30 + i * w;
      for (const [v, color, off] of [[Math.abs(b.top_eigenvalue), '#1f77b4', 0], [Math.abs(b.trace), '#2ca02c', 0.4]]) {
        ctx.fillStyle = color; ctx.fillRect(x + off * w, c.height - 30 - H(v), 0.38 * w, H(v));
      }
      ctx.fillStyle = '#333'; ctx.fillText(b.tensor, x, c.height - 16);
    });
    ctx.fillText(`1e${hi}`, 2, 22); ctx.fillText(`1e${lo}`, 2, c.height - 30);
    ctx.fillText('|λmax| (blue) and |trace| (green) of each tensor\'s block', 40, 12);
    hovers['per-layer'] = (px) => {
      const i = Math.floor((px - 30) / w);
      const b = blocks[i];
      return b ? `${b.tensor}: λmax ${b.top_eigenvalue.toPrecision(3)}, trace ${b.trace.toPrecision(3)} (${b.hvps} HVPs)` : null;
    };
    $('per-layer-cost').textContent = costText(ms, blocks.reduce((s, b) => s + b.hvps, 0));
    demo.perLayer = blocks;
    demo.pg.drawn.perLayer = true;
  } catch (e) { fail(e); }
  });
}
// model.json, final.safetensors and model.py of A or B, as a run directory holds them
async function exportNetwork(which) {
  return withPlayground(`export of ${which.toUpperCase()}`, async () => {
  if (!pgA) return;
  try {
    const e = await (which === 'a' ? pgA : pgB).export();
    demo.exported = { which, model_json: e.model_json, model_py: e.model_py, safetensors: Array.from(e.safetensors), loss: e.loss, accuracy: e.accuracy, steps: demo.pg.steps };
    const save = (blob, name) => {
      const a = document.createElement('a');
      a.href = URL.createObjectURL(blob); a.download = name; a.click();
      setTimeout(() => URL.revokeObjectURL(a.href), 1000);
    };
    save(new Blob([e.model_json], { type: 'application/json' }), 'model.json');
    save(new Blob([e.safetensors], { type: 'application/octet-stream' }), 'final.safetensors');
    save(new Blob([e.model_py], { type: 'text/x-python' }), 'model.py');
    $('export-info').textContent = `exported ${which.toUpperCase()} at step ${demo.pg.steps}: loss ${e.loss.toFixed(4)} on all ${demo.pg.info.train_rows + demo.pg.info.test_rows} points`;
  } catch (e) { fail(e); }
  });
}
// a refused file leaves the playground on the points it had
async function readCsv(file) {
  const before = { dataset: state.dataset, csvText, csvName };
  csvText = await file.text();
  csvName = file.name;
  state.dataset = 'csv';
  if (await resetPlayground()) {
    $('dataset').value = 'csv';
    writeHash();
    return;
  }
  ({ csvText, csvName } = before);
  state.dataset = before.dataset;
  $('csv-file').value = '';
  await resetPlayground();
  demo.csvRefused = file.name;
}

// ---- controls --------------------------------------------------------------------------------
function showValues() {
  $('cond-v').textContent = kappa().toFixed(1); $('angle-v').textContent = state.angle; $('hpow-v').textContent = state.hpow;
  $('noise-v').textContent = state.noise; $('testfrac-v').textContent = state.testfrac;
  for (const r of RACERS) $(`lr-${r.name}-v`).textContent = state['lr_' + r.name].toPrecision(2);
}
// the race's controls from the state (after a lesson set it)
function syncControls() {
  $('surface').value = state.surface; $('cond').value = state.cond; $('angle').value = state.angle; $('hpow').value = state.hpow; $('clip').checked = !!state.clip;
  for (const r of RACERS) {
    const on = $(`on-${r.name}`), lr = $(`lr-${r.name}`);
    if (on) on.checked = activeRacers().includes(r);
    if (lr) lr.value = Math.log10(state['lr_' + r.name]);
  }
  if ($('cond-v')) showValues();
}
// the playground's controls: [element, state key, numeric]
const PG_CONTROLS = [['dataset', 'dataset', false], ['noise', 'noise', true], ['testfrac', 'testfrac', true], ['widths', 'widths', false],
  ['act', 'act', false], ['depth', 'depth', true], ['arch-a', 'archa', false], ['norm-a', 'norma', false], ['arch-b', 'archb', false], ['norm-b', 'normb', false], ['opt-a', 'opta', false], ['lr-a', 'lra', true], ['bs-a', 'bsa', true], ['opt-b', 'optb', false], ['lr-b', 'lrb', true],
  ['bs-b', 'bsb', true], ['sched', 'sched', false], ['horizon', 'horizon', true]];
function syncPlaygroundControls() {
  for (const [id, key] of PG_CONTROLS) $(id).value = state[key];
  for (const w of ['a', 'b']) $(`opt-${w}-method`).value = state['opt' + w].split('(')[0].trim();
  if ($('noise-v')) { $('noise-v').textContent = state.noise; $('testfrac-v').textContent = state.testfrac; }
}
function bindLessons() {
  demo.lessons = LESSONS.map((l) => l.name);
  demo.pgLessons = LESSONS.filter((l) => l.pg).map((l) => l.name);
  // for the page test: the settings box's text of every method, as the page writes it, parsed
  // back by the library's parser (it must give the method's defaults)
  demo.settingsRoundTrip = () => CATALOG.map((o) => {
    const text = optimizerText(o.name);
    try { return { name: o.name, text, want: o.settings, got: JSON.parse(optimizer_settings(text)) }; }
    catch (e) { return { name: o.name, text, want: o.settings, error: String(e) }; }
  });
  $('lessons').innerHTML = LESSONS.map((l) => `<button data-lesson="${l.name}" class="${l.name === demo.lesson ? 'active' : ''}">${l.title}</button>`).join('');
  for (const b of document.querySelectorAll('#lessons button')) {
    b.onclick = () => {
      const l = applyLesson(b.dataset.lesson);
      history.replaceState(null, '', '#lesson=' + b.dataset.lesson);
      if (l.pg) {
        syncPlaygroundControls();
        $('pg-section').scrollIntoView({ behavior: 'smooth' });
        resetPlayground().then(() => { training = true; });
      } else {
        syncControls();
        resetRace().then(() => { playing = true; });
      }
    };
  }
}
function bindControls() {
  bindLessons();
  $('chart-x').addEventListener('change', drawRaceChart);
  $('tol').addEventListener('change', drawRaceChart);
  const lrs = $('lr-controls');
  lrs.innerHTML = RACERS.map((r) => `<label title="${r.summary}"><input id="on-${r.name}" type="checkbox" ${activeRacers().includes(r) ? 'checked' : ''}><span class="swatch" style="background:${r.color}"></span>${r.name} lr
    <input id="lr-${r.name}" type="range" min="-4" max="${r.name === 'newton' ? 0 : 0.5}" step="0.05" value="${Math.log10(state['lr_' + r.name])}"> <span id="lr-${r.name}-v"></span></label>`).join('');
  const show = showValues;
  const raceInput = (id, key, parse, raceReset = true) => $(id).addEventListener('input', (e) => { state[key] = parse(e.target); leaveLesson('race'); show(); writeHash(); if (raceReset) resetRace(); });
  syncControls();
  raceInput('surface', 'surface', (t) => { state.x = state.y = null; return t.value; });
  raceInput('cond', 'cond', (t) => Number(t.value));
  raceInput('angle', 'angle', (t) => Number(t.value));
  raceInput('hpow', 'hpow', (t) => Number(t.value));
  raceInput('clip', 'clip', (t) => (t.checked ? 1 : 0));
  for (const r of RACERS) raceInput(`lr-${r.name}`, 'lr_' + r.name, (t) => Math.pow(10, Number(t.value)));
  for (const r of RACERS) raceInput(`on-${r.name}`, 'racers', () => RACERS.filter((q) => $(`on-${q.name}`).checked).map((q) => q.name).join(','));
  $('race').addEventListener('click', (e) => {
    const [x0, x1, y0, y1] = BOUNDS[state.surface], rect = e.target.getBoundingClientRect();
    state.x = x0 + (e.clientX - rect.left) / rect.width * (x1 - x0);
    state.y = y1 - (e.clientY - rect.top) / rect.height * (y1 - y0);
    leaveLesson('race'); writeHash(); resetRace();
  });
  $('race-play').onclick = () => { playing = true; };
  $('race-pause').onclick = () => { playing = false; };
  $('race-step').onclick = () => stepRace(1);
  $('race-reset').onclick = () => resetRace();
  for (const [id, key, num] of PG_CONTROLS) {
    $(id).addEventListener('change', (e) => { state[key] = num ? Number(e.target.value) : e.target.value; leaveLesson('pg'); show(); writeHash(); resetPlayground(); });
  }
  syncPlaygroundControls();
  // a method picked from the list writes its full settings into the text the reader edits
  for (const w of ['a', 'b']) {
    $(`opt-${w}-method`).addEventListener('change', (e) => {
      state['opt' + w] = optimizerText(e.target.value);
      leaveLesson('pg');
      const o = CATALOG.find((c) => c.name === e.target.value);
      if (o) state['lr' + w] = o.lr;
      syncPlaygroundControls(); writeHash(); resetPlayground();
    });
    $(`export-${w}`).onclick = () => exportNetwork(w);
  }
  $('csv-file').addEventListener('change', (e) => { if (e.target.files.length) readCsv(e.target.files[0]).catch(fail); });
  $('pg-per-layer').onclick = () => perLayer();
  $('pg-nonconvexity').onclick = () => nonconvexity();
  $('pg-train').onclick = () => { training = true; };
  $('pg-pause').onclick = () => { training = false; runPanelsLater(); };
  $('pg-reset').onclick = () => resetPlayground();
  $('pg-landscape').onclick = () => landscape();
  $('pg-dirs').value = state.pgdirs;
  $('pg-dirs').addEventListener('change', (e) => { state.pgdirs = e.target.value; writeHash(); landscape(); });
  $('pg-curvature').onclick = () => curvature();
  show();
}

async function main() {
  if (!navigator.gpu) {
    $('no-webgpu').hidden = false;
    $('status').textContent = 'No WebGPU in this browser.';
    demo.noWebGPU = true;
    return;
  }
  try {
    await init();
    loadConstants();
    loadCatalog();
    readHash();
    demo.gpu = await Demo.open();
  } catch (e) {
    $('no-webgpu').hidden = false;
    $('status').textContent = 'WebGPU is present but no adapter could be opened: ' + (e.message || e);
    demo.errors.push(String(e.message || e));
    return;
  }
  $('status').textContent = 'Running on ' + demo.gpu.adapter();
  bindControls();
  setupHover();
  // the race animates as soon as its own kernels exist (pipelines are built on first use); the
  // playground's networks are built while it runs
  await resetRace();
  demo.timings.raceReady = performance.now();
  playing = !!state.autoplay;
  raceLoop();
  // a playing race gets the device to itself until its first frame is drawn (its pipelines are
  // compiled on first use, and the playground's would queue ahead of them)
  if (playing) await firstRaceFrame;
  await resetPlayground();
  training = !!state.autotrain;
  demo.timings.ready = performance.now();
  demo.ready = true;
  trainLoop();
}
main();
