// Drives web/jaxjs.html: parses the same query string as bench.html, times jitted jax-js steps.
import { init, defaultDevice, numpy as np, nn, random, blockUntilReady, tree } from './jax.js';
import { mlpParams, adamStep, adahessianStep } from './step.mjs';

const q = new URLSearchParams(location.search);
const status = document.getElementById('status');
const fail = (message) => { status.textContent = `Error: ${message}`; document.title = `ERR ${message}`; };

async function main() {
  const model = q.get('model') || 'mlp:64-128-128-10:tanh';
  const m = /^mlp:([0-9]+(?:-[0-9]+)+)(?::(tanh|relu))?$/.exec(model);
  if (!m) return fail(`model=${model}: the jax-js page takes mlp:W0-W1-…:tanh|relu`);
  const widths = m[1].split('-').map(Number);
  const activation = m[2] || 'tanh';
  const [batch, steps, warmup] = ['batch', 'steps', 'warmup'].map((k, i) => Number(q.get(k) || [128, 30, 5][i]));
  const names = (q.get('optimizers') || 'adam,adahessian').split(',').filter(Boolean);
  if (!navigator.gpu) return fail('this browser has no WebGPU');
  const devices = await init('webgpu');
  if (!devices.includes('webgpu')) return fail('jax-js found no WebGPU device');
  defaultDevice('webgpu');
  const k = widths[widths.length - 1];
  let seed = 1;
  const rnd = () => { seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0; return seed / 4294967296; };
  // N(0, 1) inputs (Box-Muller) and uniform labels, like the library's synthetic bench data
  const xs = Float32Array.from({ length: batch * widths[0] },
    () => Math.sqrt(-2 * Math.log(1 - rnd())) * Math.cos(2 * Math.PI * rnd()));
  const labels = Int32Array.from({ length: batch }, () => Math.floor(rnd() * k));
  const x = np.array(xs).reshape([batch, widths[0]]);
  const y = nn.oneHot(np.array(labels, { dtype: np.int32 }), k);
  const results = [];
  for (const name of names) {
    if (name !== 'adam' && name !== 'adahessian') return fail(`optimizer ${name}: the jax-js page has adam and adahessian`);
    let params = mlpParams(widths, 7);
    let mo = tree.map((p) => np.zerosLike(p.ref), params);
    let ve = tree.map((p) => np.zerosLike(p.ref), params);
    const step = name === 'adam' ? adamStep(activation) : adahessianStep(activation);
    let t = 0;
    const run = (n) => {
      for (let i = 0; i < n; i++) {
        t += 1;
        const b1 = np.array(1 - 0.9 ** t), b2 = np.array(1 - 0.999 ** t);
        [params, mo, ve] = name === 'adam'
          ? step(params, mo, ve, x.ref, y.ref, b1, b2)
          : step(params, mo, ve, x.ref, y.ref, random.key(t), b1, b2);
      }
    };
    run(warmup);
    await blockUntilReady(params);
    const start = performance.now();
    run(steps);
    await blockUntilReady(params);
    results.push({ optimizer: name, ms_per_step: (performance.now() - start) / steps });
    tree.dispose([params, mo, ve]);
    step.dispose();
  }
  const out = { adapter: 'jax-js 0.1.25, WebGPU device', model, batch, results };
  status.textContent = `${out.adapter} — ${model}, batch ${batch}, ${steps} steps after ${warmup} warm-up`;
  const body = document.querySelector('#results tbody');
  for (const r of results) {
    const row = document.createElement('tr');
    for (const cell of [r.optimizer, r.ms_per_step.toFixed(3), `${(r.ms_per_step / results[0].ms_per_step).toFixed(2)}×`]) {
      const td = document.createElement('td'); td.textContent = cell; row.appendChild(td);
    }
    body.appendChild(row);
  }
  document.title = `OK ${JSON.stringify(out)}`;
}

main().catch((e) => fail(e && e.message ? e.message : String(e)));
