#!/usr/bin/env bash
# Builds the page's WebAssembly module (web/www/staticgrad.wasm) and copies the bundled MNIST
# files beside it (web/www/data/), so web/www/ works served by `staticgrad web` or opened from disk.
set -euo pipefail
cd "$(dirname "$0")"
rustup target add wasm32-unknown-unknown >/dev/null 2>&1 || true
cargo build --release --locked --target wasm32-unknown-unknown
cp target/wasm32-unknown-unknown/release/staticgrad_web.wasm www/staticgrad.wasm
mkdir -p www/data
cp ../std-runner/data/mnist-10k/train-images-idx3-ubyte.gz ../std-runner/data/mnist-10k/train-labels-idx1-ubyte.gz www/data/
echo "web/www/staticgrad.wasm: $(wc -c < www/staticgrad.wasm) bytes"
