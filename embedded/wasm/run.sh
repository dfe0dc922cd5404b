#!/usr/bin/env bash
# Builds the demos for WebAssembly (wasm32-unknown-unknown), runs them under Node.js and checks that
# every checksum equals the host's and the firmware's: the host test `tests/tests/embedded_demos.rs`
# reads the firmware log of `embedded/run-all.sh` (run it first) with the WebAssembly lines added.
# Needs node (20 or later) and the wasm32-unknown-unknown Rust target.
# usage: embedded/wasm/run.sh            (log: target/embedded/wasm.log)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
log_dir=$root/target/embedded
fw_log=$log_dir/firmware.log
[ -s "$fw_log" ] || { echo "no $fw_log: run embedded/run-all.sh first" >&2; exit 1; }
command -v node >/dev/null || { echo "need node (Node.js 20 or later)" >&2; exit 1; }

cd "$root/embedded/wasm"
cargo build -q --release --locked --target wasm32-unknown-unknown
wasm=$root/embedded/wasm/target/wasm32-unknown-unknown/release/staticgrad_wasm.wasm
echo "--- wasm32-unknown-unknown under $(node --version): $(wc -c <"$wasm") B module"
node run.mjs "$wasm" | tee "$log_dir/wasm.log"

echo "--- host: same demos on $(uname -m), checksums compared with the firmware's and WebAssembly's"
cat "$fw_log" "$log_dir/wasm.log" > "$log_dir/firmware+wasm.log"
cd "$root"
STATICGRAD_FIRMWARE_LOG=$log_dir/firmware+wasm.log cargo test -q --locked -p staticgrad-tests --test embedded_demos
echo "every demo under WebAssembly matches the host and the firmware bit for bit"
