// Trains on MNIST off the page's thread: its own instance of staticgrad.wasm, the bundled IDX
// files (gzip undone by DecompressionStream), one sg_train call per run. Progress goes to the
// page every few steps through the module's callbacks (web/src/mnist.rs).
'use strict';

let wasm = null;
let loaded = null; // a promise: the module instantiated and the images in its memory
let pending = { steps: [], epochs: [] };
let lastPost = 0;

function flush() {
  postMessage({ type: 'progress', steps: pending.steps, epochs: pending.epochs });
  pending = { steps: [], epochs: [] };
  lastPost = performance.now();
}

const env = {
  sg_on_step(step, loss, lr) {
    pending.steps.push({ step, loss, lr });
    if (performance.now() - lastPost > 100) flush();
  },
  sg_on_epoch(epoch, step, trainLoss, trainAcc, testAcc) {
    pending.epochs.push({ epoch, step, trainLoss, trainAcc, testAcc });
    flush();
  },
};

// The payload of an IDX file after checking its magic number and dimensions.
async function idx(url, magic, dims) {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  const raw = await new Response(res.body.pipeThrough(new DecompressionStream('gzip'))).arrayBuffer();
  const v = new DataView(raw);
  if (v.getUint32(0) !== magic) throw new Error(`${url}: not an IDX file of this kind`);
  const n = v.getUint32(4);
  const header = 4 + 4 * dims.length;
  dims.slice(1).forEach((d, i) => {
    if (v.getUint32(8 + 4 * i) !== d) throw new Error(`${url}: images are not 28×28`);
  });
  const size = dims.slice(1).reduce((a, b) => a * b, 1);
  if (raw.byteLength !== header + n * size) throw new Error(`${url}: ${raw.byteLength} bytes, expected ${header + n * size}`);
  return { n, bytes: new Uint8Array(raw, header) };
}

async function load() {
  const bytes = await (await fetch('staticgrad.wasm')).arrayBuffer();
  wasm = (await WebAssembly.instantiate(bytes, { env })).instance.exports;
  const [img, lbl] = await Promise.all([
    idx('data/train-images-idx3-ubyte.gz', 2051, [0, 28, 28]),
    idx('data/train-labels-idx1-ubyte.gz', 2049, [0]),
  ]);
  if (img.n !== lbl.n) throw new Error(`${img.n} images but ${lbl.n} labels`);
  const p = wasm.sg_input(img.n * 785);
  new Uint8Array(wasm.memory.buffer, p, img.n * 785).set(img.bytes);
  new Uint8Array(wasm.memory.buffer, p + img.n * 784, img.n).set(lbl.bytes);
  check(wasm.sg_mnist_load(img.n));
  return img.n;
}

function check(rc) {
  if (rc !== 0) {
    const out = new Uint8Array(wasm.memory.buffer, wasm.sg_output(), wasm.sg_output_len());
    throw new Error(new TextDecoder().decode(out));
  }
}

loaded = load();
// Reported when a run asks for the data; caught here so a failed load is not also an unhandled rejection.
loaded.catch(() => {});

// Ranks trials as the runner does (validation, then training accuracy, then index) and returns the
// log10 box (lr, wd) of the best `k`.
function narrowedBox(trials, k) {
  const best = [...trials].sort((a, b) => b.val - a.val || b.train - a.train || a.i - b.i).slice(0, Math.max(1, k));
  const span = (f) => [Math.min(...best.map((t) => Math.log10(f(t)))), Math.max(...best.map((t) => Math.log10(f(t))))];
  return { lr: span((t) => t.lr), wd: span((t) => t.wd) };
}

// The random search: one sg_hp_trial call per trial, each posted as it finishes.
function hpsearch(s) {
  const stages = [{ stage: 0, lr: [-6, -2], wd: [-8, -4] }];
  const all = [[], []];
  for (let st = 0; st < 2; st++) {
    if (st === 1) {
      if (!s.narrow) break;
      const box = narrowedBox(all[0], s.top);
      stages.push({ stage: 1, lr: box.lr, wd: box.wd });
      postMessage({ type: 'box', box });
    }
    const g = stages[st];
    for (let i = 0; i < s.trials; i++) {
      check(wasm.sg_hp_trial(s.seed, g.stage, i, 500, 0.2, s.epochs, 100, 6, g.lr[0], g.lr[1], g.wd[0], g.wd[1]));
      const v = new Float64Array(new Uint8Array(wasm.memory.buffer, wasm.sg_output(), wasm.sg_output_len()).slice().buffer);
      const t = { stage: g.stage, i, lr: v[0], wd: v[1], val: v[2], train: v[3],
        valCurve: Array.from(v.subarray(4, 4 + s.epochs)), trainCurve: Array.from(v.subarray(4 + s.epochs)) };
      all[st].push(t);
      postMessage({ type: 'trial', trial: t });
    }
  }
  postMessage({ type: 'hpdone', broad: all[0], narrow: all[1] });
}

onmessage = async (ev) => {
  const s = ev.data.settings;
  try {
    await loaded;
    if (ev.data.type === 'hpsearch') {
      hpsearch(s);
      return;
    }
    postMessage({ type: 'status', text: 'training…' });
    const t = performance.now();
    lastPost = t;
    check(wasm.sg_train(s.optimizer, s.lr, s.init, s.initStd, 0, s.hidden, 100, s.batchnorm ? 1 : 0, s.dropout,
      s.weightDecay, s.train, s.test, s.batch, s.epochs, 0, s.seed, 1, 0));
    const ms = performance.now() - t;
    const out = new Uint8Array(wasm.memory.buffer, wasm.sg_output(), wasm.sg_output_len()).slice();
    flush();
    postMessage({ type: 'done', ms, losses: Array.from(new Float32Array(out.buffer)) }, []);
  } catch (e) {
    flush();
    postMessage({ type: 'error', message: String(e.message || e) });
  }
};
