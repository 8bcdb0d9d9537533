#!/usr/bin/env bash
# The demo line (contracts.md §1): simulated devices on PTYs (a QA bench that keeps each device on
# its port), the SoftHSM CA, SQLite records, PNG + ZPL labels, the reference MASA and supply-chain
# service on loopback with the outbox drained to both (--wait-sync), then a BRSKI check on one
# device (`station qa brski`): the device asks for a voucher with its birth key, and verifies the
# MASA's voucher with the trust anchor the station installed. A second run reuses $OUT/data and
# continues the work order's serial range. Exit 0 only if every device passed, every record was
# delivered to both services, and the voucher verified. Every process started here is stopped,
# also on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-demo-out}
PORTS=${2:-4}
COUNT=${3:-$PORTS}
METHOD=${DEMO_METHOD:-secure-element-keygen}
WAIT_SYNC=${DEMO_WAIT_SYNC:-120}
if [ "$COUNT" -gt "$PORTS" ]; then
  echo "demo: the QA bench keeps one device per port: COUNT ($COUNT) must be at most PORTS ($PORTS)" >&2
  exit 2
fi
mkdir -p "$OUT"
DATA="$OUT/data"
station() { node bin/station.js --data-dir "$DATA" "$@"; }

station pki init

# The simulated devices, in their own process; each port keeps its device for the QA step.
SIM_DIR="$DATA/sim-demo"
mkdir -p "$SIM_DIR"
SIM_FIFO=$(mktemp -u)
mkfifo "$SIM_FIFO"
# stdin from a pipe that stays open: station-sim stops when it closes (or on SIGTERM)
sleep infinity | node bin/station-sim.js start --ports "$PORTS" --dir "$SIM_DIR" --method "$METHOD" --keep-devices >"$SIM_FIFO" 2>"$OUT/simulator.log" &
SIM_PID=$!
cleanup() {
  kill "$SIM_PID" 2>/dev/null || true
  pkill -P $$ sleep 2>/dev/null || true
  wait "$SIM_PID" 2>/dev/null || true
  rm -f "$SIM_FIFO"
}
trap cleanup EXIT
exec 3<"$SIM_FIFO"
read -r -t 60 READY <&3 || { echo "demo: the simulator did not start; see $OUT/simulator.log" >&2; exit 1; }
mapfile -t SIM_PORTS < <(node -e 'const e = JSON.parse(process.argv[1]); if (e.event !== "ready") process.exit(1); for (const p of e.ports) console.log(p)' "$READY")

set +e
station batch --port "${SIM_PORTS[@]}" --count "$COUNT" --method "$METHOD" --out "$OUT" --with-services --wait-sync "$WAIT_SYNC"
batch_rc=$?
set -e

brski_rc=1
if [ -f "$OUT/report.json" ]; then
  # the first passed device, on the port it was provisioned on
  read -r QA_SERIAL QA_PORT < <(node -e '
    const r = require(require("path").resolve(process.argv[1], "report.json"));
    const d = r.devices.find((x) => x.status === "passed");
    if (d) console.log(d.serial, d.port);
  ' "$OUT") || true
  if [ -n "${QA_SERIAL:-}" ]; then
    set +e
    station qa brski --serial "$QA_SERIAL" --port "$QA_PORT" --with-services --report "$OUT/report.json"
    brski_rc=$?
    set -e
  else
    echo "demo: no device passed; no BRSKI check" >&2
  fi
  node -e '
    const r = require(require("path").resolve(process.argv[1], "report.json"));
    console.log(`\ndemo: run ${r.runId}, work order ${r.workOrder}, method ${r.method}`);
    for (const d of r.devices) {
      const sync = d.sync ? ` masa=${d.sync.masa} supply-chain=${d.sync.supplyChain}` : "";
      const brski = d.brski ? ` brski=${d.brski.voucher}` : "";
      console.log(`  ${(d.serial ?? "-").padEnd(14)} ${d.status.padEnd(7)} ${d.certificatePath ?? ""} ${d.labelPngPath ?? ""}${sync}${brski}${d.error ? " " + d.error.code : ""}`);
    }
    console.log(`demo: report ${process.argv[1]}/report.json, certificates ${process.argv[1]}/certs, labels ${process.argv[1]}/labels, database ${process.argv[1]}/data/station.db`);
  ' "$OUT"
fi
if [ "$batch_rc" -ne 0 ]; then exit "$batch_rc"; fi
exit "$brski_rc"
