// The bench page: reads its settings from the query string, runs Demo.bench_steps (the library's
// own training step on synthetic data) and reports through document.title for automation.
import init, { Demo } from './pkg/adahessian_wgpu.js';

const q = new URLSearchParams(location.search);
const settings = {
  model: q.get('model') || 'mlp:64-128-128-10:tanh',
  batch: Number(q.get('batch') || 128),
  optimizers: q.get('optimizers') || 'adam,adahessian',
  steps: Number(q.get('steps') || 30),
  warmup: Number(q.get('warmup') || 5),
  kernels: q.get('kernels') || '',
};
const status = document.getElementById('status');

function fail(message) {
  status.textContent = `Error: ${message}`;
  document.title = `ERR ${message}`;
}

async function main() {
  if (!navigator.gpu) return fail('this browser has no WebGPU (WebGL cannot run compute shaders)');
  for (const key of ['batch', 'steps', 'warmup']) {
    if (!Number.isInteger(settings[key]) || settings[key] < (key === 'warmup' ? 0 : 1)) {
      return fail(`${key}=${q.get(key)} must be a whole number${key === 'warmup' ? '' : ' of at least 1'}`);
    }
  }
  status.textContent = `Running ${settings.optimizers} on ${settings.model}, batch ${settings.batch}…`;
  await init();
  const demo = await Demo.open();
  const json = await demo.bench_steps(settings.model, settings.batch, settings.optimizers, settings.steps,
    settings.warmup, settings.kernels);
  const out = JSON.parse(json);
  status.textContent = `${out.adapter} — ${out.model}, batch ${out.batch}, ${out.kernels} kernels, ` +
    `${settings.steps} steps after ${settings.warmup} warm-up`;
  const body = document.querySelector('#results tbody');
  const first = out.results[0].ms_per_step;
  for (const r of out.results) {
    const row = document.createElement('tr');
    for (const cell of [r.optimizer, r.ms_per_step.toFixed(3), `${(r.ms_per_step / first).toFixed(2)}×`,
      r.dispatches_per_step.toFixed(1)]) {
      const td = document.createElement('td');
      td.textContent = cell;
      row.appendChild(td);
    }
    body.appendChild(row);
  }
  document.title = `OK ${json}`;
}

main().catch((e) => fail(e && e.message ? e.message : String(e)));
