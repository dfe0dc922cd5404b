#!/usr/bin/env bash
# The page's CI test: builds the module, serves the page with `staticgrad web`, drives it in
# headless Chromium (web/test.mjs) and checks that it computes what the command line computes,
# bit for bit: (a) the update-rule paths of `experiment optimizers-2d` (two settings), the
# activation histograms of `experiment activations`, (b) every loss of a 200-step `staticgrad
# train`, the trials of a small `experiment hpsearch --narrow` (both stages); (c) no console
# errors. Saves a screenshot of each panel into docs/.
#
# STATICGRAD=path/to/staticgrad uses that binary instead of building the runner (debug).
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)

need=()
command -v chromium >/dev/null || need+=(chromium)
command -v node >/dev/null || need+=(nodejs)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
bash web/build.sh
if [ -z "${STATICGRAD:-}" ]; then
  cargo build --quiet --locked -p staticgrad-runner
  STATICGRAD=target/debug/staticgrad
fi

cli=$(mktemp -d)
trap 'kill "${server:-}" 2>/dev/null || true; rm -rf "$cli"' EXIT

# The settings both sides run (web/test.mjs reads them from config.json).
cat > "$cli/config.json" <<'JSON'
{
  "paths": [
    { "steps": 30, "x": -7, "y": 2, "lrs": [0.95, 0.1, 0.1, 1.5, 0.1, 0.3] },
    { "steps": 50, "x": 3, "y": -4, "lrs": [0.5, 0.05, 0.2, 0.9, 0.05, 0.2] }
  ],
  "act": 0, "actSeed": 0, "layers": 5,
  "train": { "optimizer": 5, "lr": 0.001, "init": 0, "hidden": 2, "batchnorm": true, "dropout": 0.1,
             "weightDecay": 0.001, "train": 2000, "test": 1000, "batch": 100, "epochs": 10, "seed": 7 },
  "hp": { "trials": 8, "epochs": 5, "narrow": true, "top": 3, "seed": 5 }
}
JSON
"$STATICGRAD" -q experiment optimizers-2d --out "$cli/paths-0" >/dev/null
"$STATICGRAD" -q experiment optimizers-2d --out "$cli/paths-1" --steps 50 --start 3 -4 \
  --lr sgd=0.5 --lr momentum=0.05 --lr nesterov=0.2 --lr adagrad=0.9 --lr rmsprop=0.05 --lr adam=0.2 >/dev/null
"$STATICGRAD" -q experiment activations --out "$cli/act" --repeats 1 --seed 0 --layers 5 >/dev/null
"$STATICGRAD" -q train --out "$cli/train" --layers 784,100,100,10 --optimizer adam --lr 0.001 --init he \
  --batchnorm --dropout 0.1 --weight-decay 0.001 --limit 3000 --test 1000 --batch 100 --epochs 10 --seed 7 >/dev/null

"$STATICGRAD" -q experiment hpsearch --out "$cli/hp" --trials 8 --epochs 5 --narrow --narrow-top 3 --seed 5 >/dev/null

"$STATICGRAD" web --port 0 --dir web/www > "$cli/serve.log" &
server=$!
for _ in $(seq 100); do grep -q http "$cli/serve.log" && break; sleep 0.1; done
url=$(grep -o 'http://[^ ]*' "$cli/serve.log")

node web/test.mjs "$url" "$cli" docs
echo "web test: $(wc -c < web/www/staticgrad.wasm) bytes of WebAssembly; $(( $(date +%s) - start )) s in all"
