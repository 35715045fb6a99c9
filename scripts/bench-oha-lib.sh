# shellcheck shell=bash
# Shared by scripts/bench, scripts/bench-xks, scripts/bench-cloudhsm and scripts/bench-xks-reference
# (sourced, not run): drives an endpoint with oha, a standard HTTP load generator that signs
# every request with SigV4 (`--aws-sigv4`), and keeps each run's rate for same-run ratios.
#
# Install oha with `cargo install oha --locked` (crates.io); the scripts use it when it is on
# PATH and say so when it is not. Parsing oha's JSON needs python3.
#
# Environment:
#   OHA_CONCURRENCY (32)  connections, one request in flight on each
#   OHA_DURATION (10)     measured seconds per run
#   OHA_WARMUP (2)        unmeasured seconds before each run (a separate short oha run)
#   PIN (unset)           1: run the server on the last CPU with one Tokio worker, and the load
#                         generators (oha, keyhold-loadgen) on the other CPUs (`taskset`), so
#                         that client and server never compete for a core. Ratios then measure
#                         the server's own cost per request: with both on the same two cores,
#                         anything that makes a request a little slower also adds wake-ups and
#                         context switches on both sides, and a cost shows up about twice as
#                         large as the server's CPU time says. On a 2-CPU machine, oha alone
#                         on one CPU may be the bottleneck for the cheapest operations
#                         (GenerateRandom: about 54k req/s here), so compare its rates with
#                         keyhold-loadgen's before reading a ratio against them.
#
# Functions:
#   oha_ready                    true when oha and python3 are on PATH (else prints why not)
#   oha_measure NAME ARGS...     warm-up, then a measured run of `oha ARGS...`; prints one row
#                                and records NAME's rate of 200 answers in OHA_RPS[NAME]
#                                (a run with any non-200 answer or transport error counts as
#                                failed: OHA_FAILED=1)
#   oha_header                   prints the column heads for oha_measure's rows
#   oha_ratio A B                prints "A / B" of the recorded rates, e.g. "0.71x" ("-" if unknown)
#   pin_setup                    fills SERVER_PIN and CLIENT_PIN (command prefixes, empty unless
#                                PIN=1) and, with PIN=1, sets TOKIO_WORKER_THREADS=1 for the server

declare -A OHA_RPS=()
OHA_FAILED=0
SERVER_PIN=()
CLIENT_PIN=()

pin_setup() {
  SERVER_PIN=()
  CLIENT_PIN=()
  [ "${PIN:-}" = 1 ] || return 0
  local cpus
  cpus="$(nproc 2>/dev/null || echo 1)"
  if ! command -v taskset >/dev/null || ((cpus < 2)); then
    echo "(PIN=1 needs taskset and at least 2 CPUs: running unpinned)"
    return 0
  fi
  SERVER_PIN=(env TOKIO_WORKER_THREADS=1 taskset -c "$((cpus - 1))")
  CLIENT_PIN=(taskset -c "0-$((cpus - 2))")
  echo "== pinned: server on CPU $((cpus - 1)) with one worker, load generators on CPUs 0-$((cpus - 2))"
}

oha_ready() {
  if ! command -v oha >/dev/null; then
    echo "(oha not on PATH: skipping the oha runs; install it with: cargo install oha --locked)"
    return 1
  fi
  if ! command -v python3 >/dev/null; then
    echo "(python3 not on PATH: skipping the oha runs, whose JSON it parses)"
    return 1
  fi
  return 0
}

oha_header() {
  printf '%-22s %10s %9s %9s %9s %8s\n' 'oha run' 'req/s' 'p50 ms' 'p99 ms' 'max ms' 'non-200'
}

# oha_measure NAME ARGS...: ARGS are oha's (URL, -m, -H, -d, --aws-sigv4, -a, ...).
oha_measure() {
  local name="$1"
  shift
  local c="${OHA_CONCURRENCY:-32}" d="${OHA_DURATION:-10}" w="${OHA_WARMUP:-2}"
  if [ "$w" != 0 ]; then
    ${CLIENT_PIN[@]+"${CLIENT_PIN[@]}"} oha --no-tui --output-format quiet -c "$c" -z "${w}s" "$@" >/dev/null 2>&1 || true
  fi
  local json
  if ! json="$(${CLIENT_PIN[@]+"${CLIENT_PIN[@]}"} oha --no-tui --output-format json -c "$c" -z "${d}s" "$@" 2>&1)"; then
    printf '%-22s FAILED: %s\n' "$name" "$(printf '%s' "$json" | tail -n 1)"
    OHA_FAILED=1
    return 0
  fi
  local row
  row="$(printf '%s' "$json" | python3 -c '
import json, sys
r = json.load(sys.stdin)
s = r.get("summary", {})
codes = r.get("statusCodeDistribution", {}) or {}
# Requests still in flight when the duration ends are cut off, not failed.
errs = {k: v for k, v in (r.get("errorDistribution", {}) or {}).items() if k != "aborted due to deadline"}
errors = sum(errs.values())
total = sum(codes.values()) + errors
ok = codes.get("200", 0)
rps = s.get("requestsPerSec") or 0.0
ok_rps = rps * ok / total if total else 0.0
p = r.get("latencyPercentiles", {}) or {}
ms = lambda v: "%.2f" % (v * 1000.0) if isinstance(v, (int, float)) else "?"
bad = total - ok
first = ""
if bad:
    others = {k: v for k, v in codes.items() if k != "200"}
    first = " " + json.dumps({"status": others, "errors": errs})[:300]
print("%.0f|%s|%s|%s|%d|%s" % (ok_rps, ms(p.get("p50")), ms(p.get("p99")), ms(s.get("slowest")), bad, first))
')" || {
    printf '%-22s FAILED: cannot parse oha output\n' "$name"
    OHA_FAILED=1
    return 0
  }
  local rps p50 p99 max bad detail
  IFS='|' read -r rps p50 p99 max bad detail <<<"$row"
  OHA_RPS[$name]="$rps"
  printf '%-22s %10s %9s %9s %9s %8s%s\n' "$name" "$rps" "$p50" "$p99" "$max" "$bad" "$detail"
  if [ "$bad" != 0 ]; then
    OHA_FAILED=1
  fi
}

oha_ratio() {
  local a="${OHA_RPS[$1]:-}" b="${OHA_RPS[$2]:-}"
  if [[ $a =~ ^[0-9]+$ ]] && [[ $b =~ ^[0-9]+$ ]] && ((b > 0)); then
    local r=$((a * 100 / b))
    printf '%d.%02dx' $((r / 100)) $((r % 100))
  else
    printf -- '-'
  fi
}
