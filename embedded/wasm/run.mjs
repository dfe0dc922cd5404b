// Runs every demo of the WebAssembly build (src/lib.rs) and prints `checksum <name> <hex>` and
// `result <name> PASS|FAIL` lines, as the firmware does; exits 1 if a demo errs or misses its bar.
// usage: node run.mjs staticgrad_wasm.wasm
import { readFileSync } from "node:fs";

const bytes = readFileSync(process.argv[2]);
const { instance } = await WebAssembly.instantiate(bytes, {});
const w = instance.exports;
let ok = true;
for (let i = 0; i < w.demo_count(); i++) {
  const name = new TextDecoder().decode(new Uint8Array(w.memory.buffer, w.demo_name_ptr(i), w.demo_name_len(i)));
  const t = performance.now();
  const r = w.demo_run(i);
  const ms = Math.round(performance.now() - t);
  if (r & (1n << 33n)) {
    console.log(`error ${name}`);
    ok = false;
    continue;
  }
  const passed = (r & (1n << 32n)) !== 0n;
  console.log(`checksum ${name} ${(r & 0xffffffffn).toString(16).padStart(8, "0")}`);
  console.log(`result ${name} ${passed ? "PASS" : "FAIL"} in ${ms} ms`);
  ok &&= passed;
}
process.exit(ok ? 0 : 1);
