// Headless-Chromium test of the bench page (web/bench.html): an MLP and a CNN model text both run
// Adam and AdaHessian and report through document.title; a bad setting reports ERR; jax-js's
// counterpart page (web/jaxjs.html, query prefixed with "jaxjs:") runs the same MLP.
// Usage: node web/test/bench.mjs   (after web/build.sh; needs /usr/bin/chromium)
// With BENCH_QUERY=... it runs that one query and prints the result (for measurements).
import { chromium } from 'playwright-core';
import { serve } from './serve.mjs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const web = join(dirname(fileURLToPath(import.meta.url)), '..');
const server = await serve(web);
const port = server.port;
const failures = [];
const check = (ok, what) => { console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`); if (!ok) failures.push(what); };
let browser;

async function run(page, query) {
  await page.goto(`http://127.0.0.1:${port}/${query.startsWith("jaxjs:") ? "jaxjs.html?" + query.slice(6) : "bench.html?" + query}`);
  await page.waitForFunction(() => document.title.startsWith('OK ') || document.title.startsWith('ERR '), null, { timeout: 240000 });
  return page.title();
}

try {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--enable-unsafe-webgpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run', '--disable-quic'],
  });
  const page = await browser.newPage();
  const consoleErrors = [];
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  if (process.env.BENCH_QUERY) {
    console.log(await run(page, process.env.BENCH_QUERY));
  } else {
    const cases = [
      'model=mlp:8-16-16-3:tanh&batch=16&optimizers=adam,adahessian&steps=3&warmup=1',
      `model=${encodeURIComponent('input 1x8x8; conv2d(4, k=3, p=1); relu; avgpool2d(2); flatten; linear(3)')}&batch=8&optimizers=adam,adahessian&steps=2&warmup=1`,
      'model=mlp:8-16-3:relu&batch=8&optimizers=adahessian&steps=2&warmup=0&kernels=naive',
      'model=mlp:8-70-3:tanh&batch=70&optimizers=adam,adahessian&steps=2&warmup=1&kernels=shared',
      // a CIFAR ResNet (BatchNorm, residual adds, option-A shortcuts) on 3x32x32 images
      'model=resnet:8:4&batch=2&optimizers=adam,adahessian&steps=1&warmup=0',
      // jax-js's counterpart page (web/jaxjs.html), for side-by-side measurements
      'jaxjs:model=mlp:8-16-3:tanh&batch=8&optimizers=adam,adahessian&steps=2&warmup=1',
    ];
    for (const query of cases) {
      const title = await run(page, query);
      check(title.startsWith('OK '), `bench.html?${query} reports OK (${title.slice(0, 120)})`);
      if (!title.startsWith('OK ')) continue;
      const out = JSON.parse(title.slice(3));
      const names = new URLSearchParams(query.replace(/^jaxjs:/, '')).get('optimizers').split(',');
      check(out.results.length === names.length && out.results.every((r, i) => r.optimizer === names[i]),
        `one result per optimizer, in order (${out.results.map((r) => r.optimizer)})`);
      check(out.results.every((r) => r.ms_per_step > 0 && (query.startsWith('jaxjs:') || r.dispatches_per_step > 0)),
        'every step took time (and dispatched kernels)');
      check(typeof out.adapter === 'string' && /^[^ (]/.test(out.adapter), `the adapter is named (${out.adapter})`);
    }
    const bad = await run(page, 'model=mlp:8-3&batch=0');
    check(bad.startsWith('ERR ') && bad.includes('batch'), `batch=0 is refused with a message (${bad})`);
    const badModel = await run(page, 'model=nonsense(3)&batch=4');
    check(badModel.startsWith('ERR '), `an unknown layer is refused with a message (${badModel})`);
    check(consoleErrors.length === 0, `no console errors${consoleErrors.length ? ': ' + consoleErrors.join(' | ') : ''}`);
  }
} catch (e) {
  failures.push(String(e));
  console.log('FAIL', e);
} finally {
  if (browser) await browser.close();
  server.close();
}
console.log(`${failures.length ? 'FAILED' : 'passed'}: ${failures.length} failure(s)`);
process.exit(failures.length ? 1 : 0);
