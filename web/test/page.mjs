// Headless-Chromium test of the demo page (SwiftShader WebGPU): the page loads with no console
// errors; every optimizer's loss falls on the quadratic; the playground trains and its loss falls;
// every lesson animates when clicked, and the race's loss chart and cost table are drawn;
// the landscape and curvature panels draw something; a screenshot is kept as evidence.
// Usage: node web/test/page.mjs   (after web/build.sh; needs /usr/bin/chromium)
import { chromium } from 'playwright-core';
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const web = join(dirname(fileURLToPath(import.meta.url)), '..');
const port = 8000 + Math.floor(Math.random() * 900);
const server = spawn('python3', ['-m', 'http.server', '--bind', '127.0.0.1', String(port), '--directory', web], { stdio: 'ignore' });
const failures = [];
const check = (ok, what) => { console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`); if (!ok) failures.push(what); };
let browser;
try {
  await new Promise((r) => setTimeout(r, 800));
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--enable-unsafe-webgpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run', '--disable-quic'],
  });
  const page = await browser.newPage({ viewport: { width: 1150, height: 1500 } });
  const consoleErrors = [];
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  await page.goto(`http://127.0.0.1:${port}/index.html#surface=quadratic&cond=1&angle=30&autoplay=1&autotrain=1`);
  await page.waitForFunction(() => window.demo && (window.demo.ready || window.demo.noWebGPU || window.demo.errors.length), null, { timeout: 120000 });
  const status = await page.textContent('#status');
  console.log('status:', status);
  check(await page.evaluate(() => window.demo.ready), 'the page opens WebGPU and gets ready');
  await page.waitForFunction(() => window.demo.race.steps >= 40, null, { timeout: 180000 });
  const losses = await page.evaluate(() => window.demo.race.losses);
  for (const [name, l] of Object.entries(losses)) {
    check(l.length > 5 && l[l.length - 1] < l[0], `${name}'s loss falls on the quadratic (${l[0]} -> ${l[l.length - 1]})`);
  }
  await page.evaluate(() => { document.getElementById('race-pause').click(); });
  await page.waitForFunction(() => window.demo.pg.steps >= 40, null, { timeout: 180000 });
  const pg = await page.evaluate(() => window.demo.pg);
  for (const k of ['a', 'b']) {
    const h = pg[k];
    check(h[h.length - 1].train_loss < h[0].train_loss, `playground ${k} trains: loss ${h[0].train_loss} -> ${h[h.length - 1].train_loss}`);
  }
  await page.evaluate(() => { document.getElementById('pg-pause').click(); document.getElementById('pg-landscape').click(); });
  await page.waitForFunction(() => window.demo.landscapeDone, null, { timeout: 180000 });
  // the landscape along the principal plane of the recent path (3 snapshots: 60 steps)
  await page.evaluate(() => document.getElementById('pg-train').click());
  await page.waitForFunction(() => window.demo.pg.steps >= 80, null, { timeout: 180000 });
  await page.evaluate(() => {
    document.getElementById('pg-pause').click();
    window.demo.landscapeDone = false;
    const s = document.getElementById('pg-dirs');
    s.value = 'pca';
    s.dispatchEvent(new Event('change'));
  });
  await page.waitForFunction(() => window.demo.landscapeDone, null, { timeout: 180000 });
  check((await page.evaluate(() => window.demo.landscapeDirections)) === 'pca', 'the landscape is drawn along the PCA plane of the path');
  await page.evaluate(() => document.getElementById('pg-curvature').click());
  await page.waitForFunction(() => window.demo.curvatureDone, null, { timeout: 180000 });
  const edge = await page.evaluate(() => window.demo.curvature.edge);
  check(edge && edge.threshold > 0 && Number.isFinite(edge.sharpness), `the edge of stability is computed (λmax(P⁻¹H) ${edge && edge.sharpness} vs ${edge && edge.threshold})`);
  // every lesson: one click sets the state and the race animates
  const lessons = await page.evaluate(() => window.demo.lessons);
  check(lessons.length >= 6, `the lessons are listed (${lessons.join(', ')})`);
  for (const name of lessons) {
    await page.evaluate((n) => document.querySelector(`#lessons button[data-lesson="${n}"]`).click(), name);
    await page.waitForFunction((n) => window.demo.race.lesson === n && window.demo.race.steps >= 10, name, { timeout: 60000 });
    const text = await page.textContent('#lesson-text');
    check(text.length > 40, `lesson ${name} animates and explains itself`);
  }
  check((await page.evaluate(() => document.getElementById('race-cost').rows.length)) > 1, 'the cost table lists the racers');
  const spread = await page.evaluate(() => ['landscape', 'curvature', 'boundary-a', 'race', 'race-chart'].map((id) => {
    const c = document.getElementById(id), d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    const seen = new Set();
    for (let i = 0; i < d.length; i += 4 * 7) seen.add(`${d[i]},${d[i + 1]},${d[i + 2]}`);
    return [id, seen.size];
  }));
  for (const [id, colours] of spread) check(colours > 3, `the ${id} panel is not blank (${colours} colours)`);
  check(consoleErrors.length === 0, `no console errors${consoleErrors.length ? ': ' + consoleErrors.join(' | ') : ''}`);
  const errors = await page.evaluate(() => window.demo.errors);
  check(errors.length === 0, `no GPU errors shown${errors.length ? ': ' + errors.join(' | ') : ''}`);
  mkdirSync(join(web, 'test-output'), { recursive: true });
  await page.screenshot({ path: join(web, 'test-output', 'demo.png'), fullPage: true });
  console.log('screenshot: web/test-output/demo.png');
} catch (e) {
  failures.push(String(e));
  console.log('FAIL', e);
} finally {
  if (browser) await browser.close();
  server.kill();
}
console.log(`${failures.length ? 'FAILED' : 'passed'}: ${failures.length} failure(s)`);
process.exit(failures.length ? 1 : 0);
