#!/usr/bin/env bash
# Runs every demo firmware under QEMU, then the host test that checks the firmware's final-weight
# checksums against the same demos run on this machine (the bit-identical promise).
# Fails if a firmware misses its bar (accuracy, RAM budget), faults, times out, or if any checksum
# differs from the host's. Needs qemu-system-arm and the thumbv7em/thumbv6m Rust targets.
# usage: embedded/run-all.sh            (log: target/embedded/firmware.log)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
log_dir=$root/target/embedded
mkdir -p "$log_dir"
log=$log_dir/firmware.log
: > "$log"

run() { # crate-dir bin
  echo "--- $1 $2" | tee -a "$log"
  if ! (cd "$root/embedded/$1" && cargo run -q --release --bin "$2") 2>&1 | tee -a "$log"; then
    echo "FAILED: $1 $2 (see $log)"; exit 1
  fi
}

bins=$(cd "$root/embedded/mps2-an386/src/bin" && ls *.rs | sed 's/\.rs$//')
(cd "$root/embedded/mps2-an386" && cargo build -q --release)
for b in $bins; do run mps2-an386 "$b"; done
if [ -d "$root/embedded/microbit" ]; then
  (cd "$root/embedded/microbit" && cargo build -q --release)
  run microbit xor-m0
fi

echo "--- host: same demos on $(uname -m), checksums compared with $log"
cd "$root"
STATICGRAD_FIRMWARE_LOG=$log cargo test -q -p staticgrad-tests --test embedded_demos
echo "all firmware demos passed and match the host bit for bit"
