#!/bin/sh
# Issue 3's journal benchmark; run by `make bench` (after `make irp`).
# 1. bench/journal_bench.c, built here against the journal's own sources:
#    appends per second with and without fdatasync, and reading, verifying
#    and reopening a 10,000-event journal.
# 2. bench/journal_resume.py: `irp resume` of a run with a 10,000-event journal.
# Scratch files go to ${TMPDIR:-/tmp}; fdatasync costs depend on that disk.
set -e
here=$(dirname "$0")
root="$here/.."
out="${BUILD:-$root/build}/bench"
mkdir -p "$out"
WARN="-Wall -Wextra -Werror -Wshadow -Wmissing-prototypes -Wstrict-prototypes -Wpointer-arith -Wformat=2 -Wundef -Wwrite-strings -Wno-unused-parameter"
# shellcheck disable=SC2086
${CC:-cc} -std=c11 -D_GNU_SOURCE -O2 -g $WARN -I"$root/include" $(pkg-config --cflags jansson libcrypto) \
  "$here/journal_bench.c" "$root/runner/journal.c" "$root/runner/journal_verify.c" "$root/runner/util.c" \
  $(pkg-config --libs jansson libcrypto) -o "$out/journal_bench"
scratch=$(mktemp -d "${TMPDIR:-/tmp}/irp-bench-journal.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
echo "journal: scratch directory on $(df -PT "$scratch" | awk 'NR==2 {print $2 " (" $1 ")"}')"
"$out/journal_bench" "$scratch" 10000 1000
python3 "$here/journal_resume.py" "${IRP:-$root/irp}"
