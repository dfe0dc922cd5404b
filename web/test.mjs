// Drives the page in headless Chromium over the DevTools protocol (a minimal WebSocket client
// below: Node 18 has none built in; no npm) and checks it against the command line's outputs;
// see web/test.sh.
//
//   node web/test.mjs URL CLI_DIR SHOTS_DIR
//
// CLI_DIR holds paths-<i>/paths.csv (experiment optimizers-2d), act/layer_stats.json
// (experiment activations --repeats 1) and train/metrics.csv (train), and config.json: the
// settings both sides ran. Exits 1 on any failed check.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';

const [url, cliDir, shotsDir] = process.argv.slice(2);
const cfg = JSON.parse(fs.readFileSync(path.join(cliDir, 'config.json'), 'utf8'));
const failures = [];
const check = (ok, what) => {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (!ok) failures.push(what);
};
const hex32 = (x) => {
  const dv = new DataView(new ArrayBuffer(4));
  dv.setFloat32(0, x);
  return dv.getUint32(0).toString(16).padStart(8, '0');
};

// ---- a WebSocket client, enough for the DevTools protocol (RFC 6455: text frames, masked) --------
function connect(wsUrl, onText) {
  return new Promise((resolve, reject) => {
    const u = new URL(wsUrl);
    const req = http.request({
      host: u.hostname, port: u.port, path: u.pathname,
      headers: { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': crypto.randomBytes(16).toString('base64') },
    });
    req.on('error', reject);
    req.on('upgrade', (_res, socket) => {
      let buf = Buffer.alloc(0);
      let parts = [];
      socket.on('data', (d) => {
        buf = Buffer.concat([buf, d]);
        for (;;) {
          if (buf.length < 2) return;
          const fin = buf[0] & 0x80;
          const op = buf[0] & 0x0f;
          let len = buf[1] & 0x7f;
          let at = 2;
          if (len === 126) { if (buf.length < 4) return; len = buf.readUInt16BE(2); at = 4; }
          else if (len === 127) { if (buf.length < 10) return; len = Number(buf.readBigUInt64BE(2)); at = 10; }
          if (buf.length < at + len) return;
          const payload = buf.subarray(at, at + len);
          buf = buf.subarray(at + len);
          if (op === 0x1 || op === 0x0) {
            parts.push(payload);
            if (fin) { onText(Buffer.concat(parts).toString('utf8')); parts = []; }
          }
        }
      });
      resolve({
        send(text) {
          const data = Buffer.from(text, 'utf8');
          const n = data.length;
          const head = n < 126 ? Buffer.from([0x81, 0x80 | n])
            : n < 65536 ? Buffer.from([0x81, 0x80 | 126, n >> 8, n & 0xff])
            : Buffer.concat([Buffer.from([0x81, 0x80 | 127]), (() => { const b = Buffer.alloc(8); b.writeBigUInt64BE(BigInt(n)); return b; })()]);
          const mask = crypto.randomBytes(4);
          const body = Buffer.alloc(n);
          for (let i = 0; i < n; i++) body[i] = data[i] ^ mask[i & 3];
          socket.write(Buffer.concat([head, mask, body]));
        },
        close() { socket.destroy(); },
      });
    });
    req.end();
  });
}

// ---- Chromium and the protocol ------------------------------------------------------------------
const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'sg-chromium-'));
const chrome = spawn(process.env.CHROMIUM || 'chromium', [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
  '--disable-sync', '--no-first-run', '--disable-dev-shm-usage', `--user-data-dir=${profile}`,
  '--remote-debugging-port=0', '--window-size=1130,900', 'about:blank',
], { stdio: ['ignore', 'ignore', 'pipe'] });
let chromeErr = '';
chrome.stderr.on('data', (d) => (chromeErr += d));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const deadline = Date.now() + 120_000;
let ws = null;
function finish(code) {
  if (ws) ws.close();
  chrome.on('exit', async () => {
    // Chromium's helpers may still be writing to the profile for a moment after it exits.
    for (let i = 0; i < 10; i++) {
      try {
        fs.rmSync(profile, { recursive: true, force: true });
        break;
      } catch {
        await sleep(200);
      }
    }
    process.exit(code);
  });
  chrome.kill();
}
function bail(msg) {
  console.error(`web test: ${msg}`);
  if (chromeErr) console.error(chromeErr.split('\n').slice(-5).join('\n'));
  finish(1);
}
setTimeout(() => bail('timed out after 120 s'), 120_000).unref();

let port = null;
while (!port && Date.now() < deadline) {
  try {
    port = fs.readFileSync(path.join(profile, 'DevToolsActivePort'), 'utf8').split('\n')[0];
  } catch {
    await sleep(50);
  }
}
const targets = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json();
const page = targets.find((t) => t.type === 'page');
let nextId = 1;
const waiting = new Map();
const consoleErrors = [];
ws = await connect(page.webSocketDebuggerUrl, (data) => {
  const m = JSON.parse(data);
  if (m.id && waiting.has(m.id)) {
    const { resolve, reject } = waiting.get(m.id);
    waiting.delete(m.id);
    m.error ? reject(new Error(JSON.stringify(m.error))) : resolve(m.result);
  } else if (m.method === 'Runtime.consoleAPICalled' && (m.params.type === 'error' || m.params.type === 'assert')) {
    consoleErrors.push(m.params.args.map((a) => a.value ?? a.description).join(' '));
  } else if (m.method === 'Runtime.exceptionThrown') {
    consoleErrors.push(m.params.exceptionDetails.exception?.description ?? m.params.exceptionDetails.text);
  } else if (m.method === 'Log.entryAdded' && m.params.entry.level === 'error') {
    consoleErrors.push(`${m.params.entry.text} ${m.params.entry.url ?? ''}`);
  } else if (m.method === 'Target.attachedToTarget') {
    // The worker: listen to its console and exceptions too.
    const sid = m.params.sessionId;
    for (const method of ['Runtime.enable', 'Runtime.runIfWaitingForDebugger']) {
      ws.send(JSON.stringify({ id: nextId++, method, sessionId: sid }));
    }
  }
});
const send = (method, params = {}) => new Promise((resolve, reject) => {
  const id = nextId++;
  waiting.set(id, { resolve, reject });
  ws.send(JSON.stringify({ id, method, params }));
});
const evaluate = async (expr) => (await send('Runtime.evaluate', { expression: expr, returnByValue: true })).result.value;

await send('Runtime.enable');
await send('Log.enable');
await send('Page.enable');
await send('Target.setAutoAttach', { autoAttach: true, waitForDebuggerOnStart: false, flatten: true });
await send('Emulation.setDeviceMetricsOverride', { width: 1130, height: 2600, deviceScaleFactor: 1, mobile: false });

// ---- the page's run ----------------------------------------------------------------------------
const q = new URLSearchParams({ test: '1', act: String(cfg.act), actseed: String(cfg.actSeed), layers: String(cfg.layers),
  train: JSON.stringify(cfg.train), hp: JSON.stringify(cfg.hp) });
for (const p of cfg.paths) q.append('paths', [p.steps, p.x, p.y, ...p.lrs].join(','));
const t0 = Date.now();
await send('Page.navigate', { url: `${url}?${q}` });
let res = null;
while (!res && Date.now() < deadline) {
  await sleep(200);
  res = await evaluate('window.testResult || null');
}
console.log(`page: ready in ${res.readyMs.toFixed(0)} ms; the 200-step run took ${(res.trainMs / 1000).toFixed(1)} s in the worker; all checks ${((Date.now() - t0) / 1000).toFixed(1)} s`);
if (res.error) bail(`the page's test run failed: ${res.error}`);

// (a) update-rule paths, bit for bit.
cfg.paths.forEach((p, i) => {
  const rows = fs.readFileSync(path.join(cliDir, `paths-${i}`, 'paths.csv'), 'utf8').trim().split('\n').slice(1);
  const cli = rows.flatMap((r) => { const c = r.split(','); return [hex32(+c[3]), hex32(+c[4])]; });
  const web = res.paths[i];
  const diff = cli.findIndex((h, k) => h !== web[k]);
  check(cli.length === web.length && diff < 0,
    `paths ${i} (steps ${p.steps}, start ${p.x} ${p.y}, lrs ${p.lrs}): ${web.length / 2} points equal the CLI's bit for bit` +
    (diff >= 0 ? ` — first difference at value ${diff}: CLI ${cli[diff]}, page ${web[diff]}` : ''));
});

// The activation histograms of the init panel, count for count.
const stats = JSON.parse(fs.readFileSync(path.join(cliDir, 'act', 'layer_stats.json'), 'utf8'));
const actName = ['sigmoid', 'tanh', 'relu'][cfg.act];
['std1', 'std0.01', 'xavier', 'he'].forEach((init, i) => {
  const cli = stats[`${actName}/${init}`].map((l) => l.hist);
  check(JSON.stringify(cli) === JSON.stringify(res.hist[i]), `activation histograms ${actName}/${init}, ${cfg.layers} layers: equal the CLI's`);
});

// (b) the MNIST run: every step's loss, bit for bit.
const steps = fs.readFileSync(path.join(cliDir, 'train', 'metrics.csv'), 'utf8').trim().split('\n')
  .filter((l) => l.startsWith('step,')).map((l) => hex32(+l.split(',')[3]));
const web = res.losses;
const firstDiff = steps.findIndex((h, k) => h !== web[k]);
check(steps.length === 200 && web.length === 200 && firstDiff < 0,
  `MNIST: ${web.length} steps, every loss equal to staticgrad train's bit for bit (last ${web[web.length - 1]} vs ${steps[steps.length - 1]})` +
  (firstDiff >= 0 ? ` — first difference at step ${firstDiff + 1}` : ''));

// The search: every trial's draws (f32 bits) and accuracy curves, both stages.
for (const [stage, file] of [['broad', 'trials.jsonl'], ['narrow', 'trials_narrow.jsonl']]) {
  const cli = fs.readFileSync(path.join(cliDir, 'hp', file), 'utf8').trim().split('\n').map((l) => JSON.parse(l))
    .map((t) => ({ i: t.trial, lr: hex32(t.lr), wd: hex32(t.weight_decay), val: t.val_curve, train: t.train_curve }));
  const page = res.hp[stage];
  check(cli.length === cfg.hp.trials && JSON.stringify(cli) === JSON.stringify(page),
    `hpsearch ${stage}: ${page.length} trials (lr, weight decay, ${cfg.hp.epochs} accuracies each) equal the CLI's` +
    (JSON.stringify(cli) === JSON.stringify(page) ? '' : ` — CLI ${JSON.stringify(cli).slice(0, 300)} page ${JSON.stringify(page).slice(0, 300)}`));
}
console.log(`the search of ${2 * cfg.hp.trials} trials took ${(res.hpMs / 1000).toFixed(1)} s in the worker`);

// Page ready time (goal ≤ 1 s on this machine; reported, not failed on: CI machines vary).
console.log(`page ready time ${res.readyMs.toFixed(0)} ms (goal ≤ 1000 ms)`);

// ---- screenshots -------------------------------------------------------------------------------
fs.mkdirSync(shotsDir, { recursive: true });
for (const [id, file] of [['panel-rules', 'web-rules.png'], ['panel-init', 'web-init.png'], ['panel-mnist', 'web-mnist.png'], ['panel-hp', 'web-hpsearch.png']]) {
  const r = await evaluate(`(() => { const b = document.getElementById('${id}').getBoundingClientRect(); return [b.x, b.y + window.scrollY, b.width, b.height]; })()`);
  const shot = await send('Page.captureScreenshot', {
    format: 'png', captureBeyondViewport: true, clip: { x: r[0], y: r[1], width: r[2], height: r[3], scale: 1 },
  });
  fs.writeFileSync(path.join(shotsDir, file), Buffer.from(shot.data, 'base64'));
}
console.log(`screenshots: ${shotsDir}/web-{rules,init,mnist,hpsearch}.png`);

// (c) no console errors, on the page or in its worker.
await sleep(100);
check(consoleErrors.length === 0, `no console errors${consoleErrors.length ? ': ' + consoleErrors.join(' | ') : ''}`);
finish(failures.length ? 1 : 0);
