#!/usr/bin/env bash
# Builds the SharpFuzz harness, instruments WgEngine.dll and runs afl-fuzz on each target in turn for
# a bounded time. Fails (exit 1) when AFL saves any crash or a target could not be fuzzed; exit 77
# means "skipped" (afl-fuzz missing outside CI). Prints executions and crashes per target and in total.
#
#   fuzz/run-fuzz.sh [total-seconds] [target...]      defaults: FUZZ_SECONDS or 60, every target
#
# Output (wiped at start) goes to FUZZ_OUT, default artifacts/fuzz: the instrumented harness in bin/,
# findings in findings/<target>/ (crashes in default/crashes/). Reproduce a crash with
#   dotnet $FUZZ_OUT/bin/WgEngine.Fuzz.dll replay <target> <crash-file>
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

TOTAL=${1:-${FUZZ_SECONDS:-60}}
shift || true
TARGETS=("$@")

if ! command -v afl-fuzz >/dev/null 2>&1; then
    if [ "${CI:-}" = "true" ]; then
        echo "fuzz: afl-fuzz is not installed (apt-get install afl++): under CI this is a failure"
        exit 1
    fi
    echo "fuzz: afl-fuzz is not installed (apt-get install afl++): skipped"
    exit 77
fi

OUT=${FUZZ_OUT:-$ROOT/artifacts/fuzz}
BIN=$OUT/bin
rm -rf "$OUT"
mkdir -p "$OUT/findings"

# A fresh publish every time: sharpfuzz instruments in place and refuses an already instrumented file.
dotnet publish "$ROOT/fuzz/WgEngine.Fuzz" -c Release -o "$BIN" -v q --nologo >"$OUT/publish.log" 2>&1 \
    || { cat "$OUT/publish.log"; echo "fuzz: harness build failed"; exit 1; }
dotnet tool run sharpfuzz "$BIN/WgEngine.dll" >"$OUT/instrument.log" 2>&1 \
    || { cat "$OUT/instrument.log"; echo "fuzz: sharpfuzz instrumentation failed"; exit 1; }

if [ ${#TARGETS[@]} -eq 0 ]; then
    mapfile -t TARGETS < <(dotnet "$BIN/WgEngine.Fuzz.dll" list | grep -v '^all$')
fi

# AFL on a shared machine as root: do not pin cores, do not insist on a performance governor or on
# core dumps going to a file; dotnet itself is not instrumented (the assembly is), so skip that check.
export AFL_SKIP_BIN_CHECK=1 AFL_NO_AFFINITY=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1
export AFL_NO_UI=1 AFL_FAST_CAL=1

[ ${#TARGETS[@]} -gt 0 ] || { echo "fuzz: no targets (harness list failed)"; exit 1; }
PER=$(( TOTAL / ${#TARGETS[@]} ))
[ "$PER" -lt 5 ] && PER=5
total_execs=0
total_crashes=0
problems=0
for t in "${TARGETS[@]}"; do
    if [ ! -d "$ROOT/fuzz/corpus/$t" ]; then
        echo "fuzz: no seed corpus for target '$t'"
        problems=$((problems + 1))
        continue
    fi
    findings=$OUT/findings/$t
    # -V: stop after PER seconds of fuzzing; -t: the first inputs run on a cold JIT.
    afl-fuzz -V "$PER" -t 5000 -m none -i "$ROOT/fuzz/corpus/$t" -o "$findings" \
        -- dotnet "$BIN/WgEngine.Fuzz.dll" "$t" >"$OUT/afl-$t.log" 2>&1 || true
    stats=$findings/default/fuzzer_stats
    if [ ! -f "$stats" ]; then
        tail -n 20 "$OUT/afl-$t.log"
        echo "fuzz: $t: afl-fuzz did not run (see $OUT/afl-$t.log)"
        problems=$((problems + 1))
        continue
    fi
    execs=$(awk -F: '/^execs_done/ {gsub(/ /, "", $2); print $2}' "$stats")
    crashes=$(awk -F: '/^(saved_crashes|unique_crashes)/ {gsub(/ /, "", $2); print $2}' "$stats" | head -n 1)
    paths=$(awk -F: '/^corpus_count|^paths_total/ {gsub(/ /, "", $2); print $2}' "$stats" | head -n 1)
    echo "fuzz: $t: ${PER}s, $execs executions, $paths corpus entries, $crashes crashes"
    total_execs=$((total_execs + execs))
    total_crashes=$((total_crashes + crashes))
    if [ "$execs" -eq 0 ]; then problems=$((problems + 1)); fi
    if [ "$crashes" -gt 0 ]; then
        for f in "$findings"/default/crashes/id:*; do
            [ -f "$f" ] && echo "fuzz: crash input: $f" && \
                dotnet "$BIN/WgEngine.Fuzz.dll" replay "$t" "$f" | head -n 6
        done
    fi
done

echo "fuzz: total $total_execs executions, $total_crashes crashes, ${#TARGETS[@]} targets"
if [ "$total_crashes" -gt 0 ] || [ "$problems" -gt 0 ]; then exit 1; fi
exit 0
