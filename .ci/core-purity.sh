#!/usr/bin/env bash
# The core stays no_std and heap-free: no alloc, std, Vec, Box, String, format! or unsafe outside
# test code. Test code is a file's trailing `#[cfg(test)] mod tests { … }` block, the
# `#[cfg(test)]` lines themselves and core/src/testutil.rs. Comments are ignored.
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
# The two exceptions, the fenced modules of the opt-in features (off by default), may use
# `unsafe`, each block with a SAFETY comment; lib.rs denies it elsewhere:
# core/src/kernels/x86.rs (`x86-simd`: x86-64 intrinsics) and core/src/kernels/arm.rs
# (`arm-fpu-sqrt`: the FPU square root).
for f in $(find core/src -name '*.rs' ! -name testutil.rs); do
  unsafe_ok=0
  case "$f" in core/src/kernels/x86.rs | core/src/kernels/arm.rs) unsafe_ok=1 ;; esac
  awk -v f="$f" -v unsafe_ok="$unsafe_ok" '
    /^#\[cfg\(test\)\]$/ { pending = 1; next }
    pending && /^mod tests/ { exit }
    pending { pending = 0; next }   # the single item a `#[cfg(test)]` line gates
    /^[[:space:]]*(\/\/|\*)/ { next }
    /cfg\(test\)/ { next }
    /extern crate (alloc|std)|[^a-z_]alloc::|(^|[^a-z_])std::|Vec<|Box<|String|format!/ ||
    (!unsafe_ok && /(^|[^a-z_])unsafe([^a-z_]|$)/) {
      printf "%s:%d: %s\n", f, NR, $0; bad = 1
    }
    END { exit bad }
  ' "$f" || status=1
done
[ $status -eq 0 ] || echo "core/src uses heap, std or unsafe outside tests"
exit $status
