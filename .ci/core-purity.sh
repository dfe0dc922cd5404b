#!/usr/bin/env bash
# The core stays no_std and heap-free: no alloc, std, Vec, Box, String, format! or unsafe outside
# test code. Test code is a file's trailing `#[cfg(test)] mod tests { … }` block, the
# `#[cfg(test)]` lines themselves and core/src/testutil.rs. Comments are ignored.
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
# The one exception: core/src/kernels/simd.rs (cargo feature `simd`, off by default) may use
# `unsafe` for x86-64 intrinsics, each block with a SAFETY comment; lib.rs denies it elsewhere.
for f in $(find core/src -name '*.rs' ! -name testutil.rs); do
  unsafe_ok=0; [ "$f" = core/src/kernels/simd.rs ] && unsafe_ok=1
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
