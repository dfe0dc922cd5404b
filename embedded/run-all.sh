#!/usr/bin/env bash
# Runs every demo firmware under QEMU, then the host test that checks the firmware's final-weight
# checksums against the same demos run on this machine (the bit-identical promise).
# Fails if a firmware misses its bar (accuracy, RAM budget), faults, times out, or if any checksum
# differs from the host's. Needs qemu-system-arm, qemu-system-riscv32 (Debian: qemu-system-misc)
# and the Rust targets thumbv7em-none-eabihf, thumbv6m-none-eabi, riscv32imac-unknown-none-elf and
# riscv32imafc-unknown-none-elf.
# usage: embedded/run-all.sh            (log: target/embedded/firmware.log)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
log_dir=$root/target/embedded
mkdir -p "$log_dir"
log=$log_dir/firmware.log
: > "$log"

run() { # crate-dir bin [cargo args, e.g. --target T]
  local crate=$1 bin=$2; shift 2
  echo "--- $crate $bin $*" | tee -a "$log"
  if ! (cd "$root/embedded/$crate" && cargo run -q --release --bin "$bin" "$@") 2>&1 | tee -a "$log"; then
    echo "FAILED: $crate $bin $* (see $log)"; exit 1
  fi
}

bins=$(cd "$root/embedded/mps2-an386/src/bin" && ls *.rs | sed 's/\.rs$//')
(cd "$root/embedded/mps2-an386" && cargo build -q --release)
for b in $bins; do run mps2-an386 "$b"; done
if [ -d "$root/embedded/microbit" ]; then
  (cd "$root/embedded/microbit" && cargo build -q --release)
  run microbit xor-m0
fi
# RISC-V (QEMU virt): XOR and the 196-32-10 MLP, soft float (rv32imac) and hardware single
# precision (rv32imafc). They print the Arm builds' names, so the host test compares each.
for t in riscv32imac-unknown-none-elf riscv32imafc-unknown-none-elf; do
  (cd "$root/embedded/riscv-virt" && cargo build -q --release --target "$t")
  for b in xor mnist-sgd-b1; do run riscv-virt "$b" --target "$t"; done
done

echo "--- host: same demos on $(uname -m), checksums compared with $log"
cd "$root"
STATICGRAD_FIRMWARE_LOG=$log cargo test -q -p staticgrad-tests --test embedded_demos
echo "all firmware demos passed and match the host bit for bit"
