// The chapter-6 page: loads staticgrad.wasm (web/src/), draws panels 1 and 2 from it on this
// thread, and trains on MNIST in worker.js. `?test=1` runs the checks web/test.sh reads.
'use strict';

const t0 = performance.now();
const TEST = new URLSearchParams(location.search).has('test');
const $ = (id) => document.getElementById(id);
const RULES = ['SGD', 'Momentum', 'Nesterov', 'AdaGrad', 'RMSprop', 'Adam'];
const BOOK_LR = [0.95, 0.1, 0.1, 1.5, 0.1, 0.3];
const INITS = ['std 1', 'std 0.01', 'Xavier', 'He'];
const COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b'];

let wasm = null; // the module's exports

// The wasm module's calling convention (web/src/lib.rs): 0 = ok and the result in the output
// buffer, −1 = the error's message there.
function output() {
  return new Uint8Array(wasm.memory.buffer, wasm.sg_output(), wasm.sg_output_len()).slice();
}
function call(fn, ...args) {
  if (wasm[fn](...args) !== 0) throw new Error(`${fn}: ${new TextDecoder().decode(output())}`);
  return output().buffer;
}

// ---- drawing helpers -------------------------------------------------------------------------
function frame(ctx, x, y, w, h, xr, yr) {
  // A plot area: returns data → pixel maps.
  const px = (v) => x + ((v - xr[0]) / (xr[1] - xr[0])) * w;
  const py = (v) => y + h - ((v - yr[0]) / (yr[1] - yr[0])) * h;
  ctx.strokeStyle = '#999';
  ctx.lineWidth = 1;
  ctx.strokeRect(x, y, w, h);
  return { px, py };
}
function text(ctx, s, x, y, align = 'left', size = 12, color = '#222') {
  ctx.fillStyle = color;
  ctx.font = `${size}px system-ui, sans-serif`;
  ctx.textAlign = align;
  ctx.fillText(s, x, y);
}

// ---- panel 1: update rules ---------------------------------------------------------------------
const f = (x, y) => (x * x) / 20 + y * y;

function lrInputs() {
  const box = $('lr-controls');
  RULES.forEach((name, i) => {
    const l = document.createElement('label');
    l.innerHTML = `${name} lr <input id="lr-${i}" type="number" step="any" min="0" value="${BOOK_LR[i]}">`;
    box.appendChild(l);
  });
}

// The six paths: Float32Array [rule][point][x, y].
function paths(steps, x, y, lrs) {
  return new Float32Array(call('sg_paths', steps, x, y, ...lrs));
}

function rulesSettings() {
  return {
    steps: +$('steps').value,
    x: +$('start-x').value,
    y: +$('start-y').value,
    lrs: RULES.map((_, i) => +$(`lr-${i}`).value),
  };
}

function drawRules() {
  const s = rulesSettings();
  $('steps-out').textContent = s.steps;
  const c = $('rules-canvas');
  const ctx = c.getContext('2d');
  ctx.clearRect(0, 0, c.width, c.height);
  let p;
  try {
    p = paths(s.steps, s.x, s.y, s.lrs);
  } catch (e) {
    text(ctx, e.message, 10, 20, 'left', 13, '#b00020');
    return;
  }
  const n = s.steps + 1;
  const [W, H] = [c.width / 3, c.height / 2];
  RULES.forEach((name, r) => {
    const ox = (r % 3) * W + 30;
    const oy = Math.floor(r / 3) * H + 26;
    const { px, py } = frame(ctx, ox, oy, W - 45, H - 50, [-10, 10], [-5, 5]);
    ctx.save();
    ctx.beginPath();
    ctx.rect(ox, oy, W - 45, H - 50);
    ctx.clip();
    ctx.strokeStyle = '#ccc';
    for (const lv of [0.1, 0.5, 1, 2, 3, 4, 5, 6, 7]) {
      ctx.beginPath();
      for (let k = 0; k <= 100; k++) {
        const t = (k / 100) * 2 * Math.PI;
        const [ex, ey] = [Math.sqrt(20 * lv) * Math.cos(t), Math.sqrt(lv) * Math.sin(t)];
        k ? ctx.lineTo(px(ex), py(ey)) : ctx.moveTo(px(ex), py(ey));
      }
      ctx.stroke();
    }
    ctx.strokeStyle = ctx.fillStyle = COLORS[r];
    ctx.beginPath();
    for (let i = 0; i < n - 1 || (n === 1 && i === 0); i++) {
      const [x, y] = [p[(r * n + i) * 2], p[(r * n + i) * 2 + 1]];
      i ? ctx.lineTo(px(x), py(y)) : ctx.moveTo(px(x), py(y));
    }
    ctx.stroke();
    for (let i = 0; i < Math.max(n - 1, 1); i++) {
      ctx.beginPath();
      ctx.arc(px(p[(r * n + i) * 2]), py(p[(r * n + i) * 2 + 1]), 2.5, 0, 2 * Math.PI);
      ctx.fill();
    }
    ctx.fillStyle = '#000';
    ctx.fillRect(px(0) - 2, py(0) - 2, 4, 4);
    ctx.restore();
    const [lx, ly] = [p[(r * n + n - 1) * 2], p[(r * n + n - 1) * 2 + 1]];
    text(ctx, `${name} (lr ${s.lrs[r]})`, ox, oy - 8, 'left', 13);
    text(ctx, `f after ${s.steps} = ${f(lx, ly).toPrecision(3)}`, ox + W - 45, oy - 8, 'right', 12, '#555');
  });
}

// ---- panel 2: initialisation -------------------------------------------------------------------
const BINS = 30;
// One draw of activation `act` under init `i`: per layer {mean, std, hist}.
function activations(act, i, seed, layers) {
  const v = new Float64Array(call('sg_activations', act, i, seed, 1000, 100, layers, BINS));
  const out = [];
  for (let l = 0; l < layers; l++) {
    const r = v.subarray(l * (5 + BINS), (l + 1) * (5 + BINS));
    out.push({ mean: r[0], std: r[1], hist: Array.from(r.subarray(5)) });
  }
  return out;
}

function drawInit() {
  const act = +$('act').value;
  const layers = +$('depth').value;
  const seed = +$('act-seed').value;
  $('depth-out').textContent = layers;
  const c = $('init-canvas');
  const ctx = c.getContext('2d');
  ctx.clearRect(0, 0, c.width, c.height);
  const range = act === 1 ? [-1, 1] : [0, 1];
  const [W, H] = [(c.width - 70) / layers, c.height / 4];
  INITS.forEach((name, i) => {
    const stats = activations(act, i, seed, layers);
    text(ctx, name, 4, i * H + H / 2, 'left', 13);
    stats.forEach((s, l) => {
      const ox = 70 + l * W;
      const oy = i * H + 18;
      const [w, h] = [W - 12, H - 36];
      // ReLU: the bar at 0 holds the exact zeros; scale by the others (as the runner's figure).
      const shown = act === 2 ? s.hist.slice(1) : s.hist;
      const top = Math.max(1, ...shown);
      const { px, py } = frame(ctx, ox, oy, w, h, range, [0, top]);
      ctx.fillStyle = COLORS[i];
      s.hist.forEach((cnt, b) => {
        const x0 = px(range[0] + ((range[1] - range[0]) * b) / BINS);
        const x1 = px(range[0] + ((range[1] - range[0]) * (b + 1)) / BINS);
        const y = Math.max(py(Math.min(cnt, top)), oy);
        ctx.fillRect(x0 + 0.5, y, x1 - x0 - 1, oy + h - y);
      });
      text(ctx, `layer ${l + 1}, std ${s.std.toPrecision(2)}`, ox, oy - 4, 'left', 11, '#444');
      text(ctx, String(range[0]), ox, oy + h + 12, 'left', 10, '#777');
      text(ctx, String(range[1]), ox + w, oy + h + 12, 'right', 10, '#777');
    });
  });
}

// ---- panel 3: MNIST in a worker ----------------------------------------------------------------
let worker = null;
let run = null; // the training under way: {steps: [{step, loss}], epochs: [...], settings, done}
let shown = null; // the run the curves show (the last one)

function mnistSettings() {
  return {
    optimizer: +$('opt').value,
    lr: +$('lr').value,
    init: +$('init').value,
    initStd: 0.01,
    hidden: +$('hidden').value,
    batchnorm: $('bn').checked,
    dropout: +$('dropout').value,
    weightDecay: +$('wd').value,
    train: +$('train-n').value,
    test: 1000,
    batch: +$('batch').value,
    epochs: +$('epochs').value,
    seed: +$('seed').value,
  };
}

// Sets the controls to `s` (the test mode's settings, so its screenshot shows them).
function showMnistSettings(s) {
  $('opt').value = s.optimizer;
  $('lr').value = s.lr;
  $('init').value = s.init;
  $('hidden').value = s.hidden;
  $('bn').checked = s.batchnorm;
  $('dropout').value = s.dropout;
  $('wd').value = s.weightDecay;
  $('train-n').value = s.train;
  $('batch').value = s.batch;
  $('epochs').value = s.epochs;
  $('seed').value = s.seed;
}

// The same run on the command line.
function cliLine(s) {
  const opt = ['sgd', 'momentum', 'nesterov', 'adagrad', 'rmsprop', 'adam'][s.optimizer];
  const init = ['he', 'xavier', '0.01'][s.init];
  const layers = [784, ...Array(s.hidden).fill(100), 10].join(',');
  return `staticgrad train --layers ${layers} --optimizer ${opt} --lr ${s.lr} --init ${init} ` +
    `${s.batchnorm ? '--batchnorm' : '--no-batchnorm'} --dropout ${s.dropout} --weight-decay ${s.weightDecay} ` +
    `--limit ${s.train + s.test} --test ${s.test} --batch ${s.batch} --epochs ${s.epochs} --seed ${s.seed}`;
}

function startWorker() {
  worker = new Worker('worker.js');
  worker.onmessage = (ev) => onWorker(ev.data);
  worker.onerror = (ev) => {
    console.error('worker:', ev.message);
    $('train-status').textContent = `error: ${ev.message}`;
  };
}

function train(settings) {
  if (hp && hp.active) stopWorker();
  run = { steps: [], epochs: [], settings, done: null };
  $('train').disabled = true;
  $('stop').disabled = false;
  $('train-status').textContent = 'loading the data…';
  $('cli-line').textContent = cliLine(settings);
  worker.postMessage({ type: 'train', settings });
  return new Promise((resolve, reject) => { run.done = { resolve, reject }; });
}

// Stops the worker's job (a training run or a search).
function stopWorker() {
  worker.terminate(); // the worker is busy inside a wasm call: ending it is the way to stop
  startWorker();
  for (const id of ['train', 'hp-run']) $(id).disabled = false;
  for (const id of ['stop', 'hp-stop']) $(id).disabled = true;
  if (run) {
    $('train-status').textContent = 'stopped';
    run.done.reject(new Error('stopped'));
    run = null;
  }
  if (hp && hp.active) {
    $('hp-status').textContent = `stopped after ${hp.trials.length} trials`;
    hp.active = false;
    hp.done.reject(new Error('stopped'));
  }
}

function onWorker(m) {
  if (hp && hp.active && ['trial', 'box', 'hpdone', 'error'].includes(m.type)) return onSearch(m);
  if (!run) return;
  if (m.type === 'progress') {
    run.steps.push(...m.steps);
    run.epochs.push(...m.epochs);
    const last = run.steps[run.steps.length - 1];
    if (last) $('train-status').textContent = `step ${last.step}, loss ${last.loss.toFixed(4)}`;
    drawCurves();
  } else if (m.type === 'done') {
    $('train').disabled = false;
    $('stop').disabled = true;
    const e = run.epochs[run.epochs.length - 1];
    // The test mode's screenshot leaves the time out, so it changes only when the page does.
    const took = TEST ? '' : ` in ${(m.ms / 1000).toFixed(1)} s`;
    $('train-status').textContent = `${run.steps.length} steps${took}` +
      (e ? `; train ${(100 * e.trainAcc).toFixed(1)} %, test ${(100 * e.testAcc).toFixed(1)} %` : '');
    drawCurves();
    run.done.resolve(m);
    run = null;
  } else if (m.type === 'error') {
    console.error(m.message);
    $('train').disabled = false;
    $('stop').disabled = true;
    $('train-status').textContent = m.message;
    run.done.reject(new Error(m.message));
    run = null;
  } else if (m.type === 'status') {
    $('train-status').textContent = m.text;
  }
}

function drawCurves() {
  if (run) shown = run;
  const steps = shown ? shown.steps : [];
  const epochs = shown ? shown.epochs : [];
  // Loss per step.
  let c = $('loss-canvas');
  let ctx = c.getContext('2d');
  ctx.clearRect(0, 0, c.width, c.height);
  const total = shown ? Math.max(steps.length, 1) : 1;
  const maxStep = shown ? Math.max(total, (epochs[0] ? epochs[0].step : 1) * shown.settings.epochs) : 1;
  const ymax = Math.max(0.5, ...steps.slice(0, 20).map((s) => s.loss));
  let g = frame(ctx, 45, 20, c.width - 60, c.height - 50, [0, maxStep], [0, ymax]);
  text(ctx, 'training loss per step', 45, 14, 'left', 13);
  text(ctx, 'step', c.width - 15, c.height - 10, 'right', 11, '#555');
  text(ctx, ymax.toFixed(1), 40, 28, 'right', 10, '#777');
  text(ctx, '0', 40, c.height - 30, 'right', 10, '#777');
  ctx.strokeStyle = COLORS[0];
  ctx.beginPath();
  steps.forEach((s, i) => (i ? ctx.lineTo(g.px(s.step), g.py(Math.min(s.loss, ymax))) : ctx.moveTo(g.px(s.step), g.py(Math.min(s.loss, ymax)))));
  ctx.stroke();
  // Accuracy per epoch.
  c = $('acc-canvas');
  ctx = c.getContext('2d');
  ctx.clearRect(0, 0, c.width, c.height);
  const maxEpoch = shown ? shown.settings.epochs : 1;
  g = frame(ctx, 45, 20, c.width - 60, c.height - 50, [0, maxEpoch], [0, 1]);
  text(ctx, 'accuracy per epoch: train (blue), test (orange)', 45, 14, 'left', 13);
  text(ctx, 'epoch', c.width - 15, c.height - 10, 'right', 11, '#555');
  text(ctx, '1', 40, 28, 'right', 10, '#777');
  text(ctx, '0', 40, c.height - 30, 'right', 10, '#777');
  for (const [key, color] of [['trainAcc', COLORS[0]], ['testAcc', COLORS[1]]]) {
    ctx.strokeStyle = ctx.fillStyle = color;
    ctx.beginPath();
    epochs.forEach((e, i) => (i ? ctx.lineTo(g.px(e.epoch), g.py(e[key])) : ctx.moveTo(g.px(e.epoch), g.py(e[key]))));
    ctx.stroke();
    epochs.forEach((e) => ctx.fillRect(g.px(e.epoch) - 2, g.py(e[key]) - 2, 4, 4));
  }
}

// ---- panel 4: hyperparameter search in the worker ------------------------------------------------
let hp = null; // the search under way or shown: {settings, trials: [], box, done}

function hpSettings() {
  return { trials: +$('hp-trials').value, epochs: +$('hp-epochs').value, narrow: $('hp-narrow').checked,
    top: +$('hp-top').value, seed: +$('hp-seed').value };
}
function showHpSettings(s) {
  $('hp-trials').value = s.trials;
  $('hp-epochs').value = s.epochs;
  $('hp-narrow').checked = s.narrow;
  $('hp-top').value = s.top;
  $('hp-seed').value = s.seed;
}
function hpCli(s) {
  return `staticgrad experiment hpsearch --trials ${s.trials} --epochs ${s.epochs} --seed ${s.seed}` +
    (s.narrow ? ` --narrow --narrow-top ${s.top}` : '');
}

function search(s) {
  if (run) stopWorker(); // one job at a time in the worker
  hp = { settings: s, trials: [], box: null, done: null, active: true };
  $('hp-run').disabled = true;
  $('hp-stop').disabled = false;
  $('train').disabled = true;
  $('hp-cli').textContent = hpCli(s);
  $('hp-status').textContent = 'searching…';
  drawSearch();
  worker.postMessage({ type: 'hpsearch', settings: s });
  return new Promise((resolve, reject) => { hp.done = { resolve, reject }; });
}

function onSearch(m) {
  if (m.type === 'trial') {
    hp.trials.push(m.trial);
    const best = hp.trials.reduce((a, b) => (b.val > a.val ? b : a));
    $('hp-status').textContent = `${hp.trials.length} trials; best validation ${(100 * best.val).toFixed(0)} % ` +
      `(lr ${best.lr.toExponential(1)}, weight decay ${best.wd.toExponential(1)})`;
  } else if (m.type === 'box') {
    hp.box = m.box;
  } else if (m.type === 'hpdone' || m.type === 'error') {
    hp.active = false;
    $('hp-run').disabled = false;
    $('hp-stop').disabled = true;
    $('train').disabled = false;
    if (m.type === 'error') {
      console.error(m.message);
      $('hp-status').textContent = m.message;
      hp.done.reject(new Error(m.message));
    } else {
      hp.done.resolve(m);
    }
  }
  drawSearch();
}

// Validation accuracy 0 → 1 as dark blue → yellow.
function accColor(a) {
  const stops = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
  const x = Math.min(Math.max(a, 0), 1) * (stops.length - 1);
  const k = Math.min(Math.floor(x), stops.length - 2);
  const f = x - k;
  const c = stops[k].map((v, j) => Math.round(v + f * (stops[k + 1][j] - v)));
  return `rgb(${c.join(',')})`;
}

function drawSearch() {
  const c = $('hp-canvas');
  const ctx = c.getContext('2d');
  ctx.clearRect(0, 0, c.width, c.height);
  const [ox, oy, w, h] = [60, 20, c.width - 160, c.height - 60];
  const { px, py } = frame(ctx, ox, oy, w, h, [-6, -2], [-8, -4]);
  text(ctx, 'learning rate', ox + w, oy + h + 34, 'right', 12, '#555');
  for (let e = -6; e <= -2; e++) text(ctx, `1e${e}`, px(e), oy + h + 16, 'center', 11, '#555');
  for (let e = -8; e <= -4; e++) text(ctx, `1e${e}`, ox - 6, py(e) + 4, 'right', 11, '#555');
  text(ctx, 'weight decay', ox, oy - 6, 'left', 12, '#555');
  if (hp && hp.box) {
    ctx.strokeStyle = '#d62728';
    ctx.setLineDash([5, 4]);
    const b = hp.box;
    ctx.strokeRect(px(b.lr[0]), py(b.wd[1]), px(b.lr[1]) - px(b.lr[0]), py(b.wd[0]) - py(b.wd[1]));
    ctx.setLineDash([]);
    text(ctx, 'narrowed box', px(b.lr[0]), py(b.wd[1]) - 4, 'left', 11, '#d62728');
  }
  for (const t of hp ? hp.trials : []) {
    ctx.fillStyle = accColor(t.val);
    ctx.strokeStyle = '#333';
    ctx.beginPath();
    const [x, y] = [px(Math.log10(t.lr)), py(Math.log10(t.wd))];
    if (t.stage === 0) ctx.arc(x, y, 6, 0, 2 * Math.PI);
    else ctx.rect(x - 5, y - 5, 10, 10);
    ctx.fill();
    ctx.stroke();
  }
  // Colour bar.
  for (let i = 0; i <= 100; i++) {
    ctx.fillStyle = accColor(i / 100);
    ctx.fillRect(c.width - 70, oy + h - (i / 100) * h, 18, h / 100 + 1);
  }
  text(ctx, 'validation', c.width - 78, oy - 6, 'left', 11, '#555');
  text(ctx, '100 %', c.width - 48, oy + 10, 'left', 11, '#555');
  text(ctx, '0 %', c.width - 48, oy + h, 'left', 11, '#555');
  text(ctx, '● first search   ■ narrowed', ox + 8, oy + 16, 'left', 11, '#555');
}

// ---- test mode (web/test.sh) --------------------------------------------------------------------
const hex = (v) => Array.from(new Uint32Array(new Float32Array(v).buffer), (u) => u.toString(16).padStart(8, '0'));

async function selfTest(q) {
  const res = { readyMs: window.readyMs };
  // (a) the update-rule paths, for each configuration the test passes: steps,x,y,lr×6.
  res.paths = q.getAll('paths').map((cfg) => {
    const v = cfg.split(',').map(Number);
    return hex(paths(v[0], v[1], v[2], v.slice(3, 9)));
  });
  // The activation histograms of one activation, 4 inits, as the CLI's layer_stats.json.
  const act = +(q.get('act') || 0);
  res.hist = INITS.map((_, i) => activations(act, i, +(q.get('actseed') || 0), +(q.get('layers') || 5)).map((l) => l.hist));
  // (b) a training run: settings as JSON in the query.
  const settings = Object.assign(mnistSettings(), JSON.parse(q.get('train') || '{}'));
  showMnistSettings(settings);
  const done = await train(settings);
  res.losses = hex(new Float32Array(done.losses));
  res.trainMs = done.ms;
  res.epochs = shown.epochs;
  // Panel 4: a small search, both stages.
  if (q.get('hp')) {
    const s = Object.assign(hpSettings(), JSON.parse(q.get('hp')));
    showHpSettings(s);
    const t = performance.now();
    const r = await search(s);
    res.hpMs = performance.now() - t;
    const pack = (ts) => ts.map((x) => ({ i: x.i, lr: hex([x.lr])[0], wd: hex([x.wd])[0], val: x.valCurve, train: x.trainCurve }));
    res.hp = { broad: pack(r.broad), narrow: pack(r.narrow) };
  }
  return res;
}

// ---- start -------------------------------------------------------------------------------------
async function main() {
  let bytes;
  try {
    bytes = await (await fetch('staticgrad.wasm')).arrayBuffer();
    const noop = () => {};
    const { instance } = await WebAssembly.instantiate(bytes, { env: { sg_on_step: noop, sg_on_epoch: noop } });
    wasm = instance.exports;
  } catch (e) {
    $('status').innerHTML = location.protocol === 'file:'
      ? `<span class="err">This browser does not let a page opened from disk load its files (${e.message}):
        serve it with <code>staticgrad web</code> (or start Chromium with <code>--allow-file-access-from-files</code>).</span>`
      : `<span class="err">Could not load staticgrad.wasm (${e.message}): build it with
        <code>bash web/build.sh</code> and serve the page with <code>staticgrad web</code>.</span>`;
    throw e;
  }
  lrInputs();
  for (const el of document.querySelectorAll('#panel-rules input')) el.addEventListener('input', drawRules);
  drawRules();
  startWorker();
  $('train').onclick = () => train(mnistSettings()).catch(() => {});
  $('stop').onclick = stopWorker;
  $('hp-stop').onclick = stopWorker;
  $('cli-line').textContent = cliLine(mnistSettings());
  for (const el of document.querySelectorAll('#panel-mnist input, #panel-mnist select')) {
    el.addEventListener('change', () => ($('cli-line').textContent = cliLine(mnistSettings())));
  }
  drawCurves();
  $('hp-run').onclick = () => search(hpSettings()).catch(() => {});
  $('hp-cli').textContent = hpCli(hpSettings());
  for (const el of document.querySelectorAll('#panel-hp input')) {
    el.addEventListener('change', () => ($('hp-cli').textContent = hpCli(hpSettings())));
  }
  drawSearch();
  window.readyMs = performance.now() - t0;
  $('status').textContent = `Ready in ${window.readyMs.toFixed(0)} ms (module ${(bytes.byteLength / 1024).toFixed(0)} KiB).`;
  // Panel 2 after the first paint: 4 stacks of 1,000 × 100 per redraw.
  await new Promise((r) => setTimeout(r, 0));
  drawInit();
  for (const el of document.querySelectorAll('#panel-init input, #panel-init select')) el.addEventListener('change', drawInit);
  $('depth').addEventListener('input', () => ($('depth-out').textContent = $('depth').value));

  const q = new URLSearchParams(location.search);
  if (q.get('test')) {
    let res;
    try {
      res = await selfTest(q);
    } catch (e) {
      res = { error: String(e && e.message) };
    }
    window.testResult = res;
    $('test-result').textContent = JSON.stringify(res);
  }
}

main().catch((e) => console.error(e));
