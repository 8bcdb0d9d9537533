#!/usr/bin/env bash
# The demo line: simulated devices on PTYs, SoftHSM CA, SQLite records, PNG + ZPL labels.
# A second run reuses $OUT/data and continues the work order's serial range.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-demo-out}
PORTS=${2:-4}
COUNT=${3:-4}
mkdir -p "$OUT"
set +e
node bin/station.js --data-dir "$OUT/data" batch --simulate "$PORTS" --count "$COUNT" --method secure-element-keygen --out "$OUT"
rc=$?
set -e
if [ -f "$OUT/report.json" ]; then
  node -e '
    const r = require(require("path").resolve(process.argv[1], "report.json"));
    console.log(`\ndemo: run ${r.runId}, work order ${r.workOrder}, method ${r.method}`);
    for (const d of r.devices) console.log(`  ${(d.serial ?? "-").padEnd(14)} ${d.status.padEnd(7)} ${d.certificatePath ?? ""} ${d.labelPngPath ?? ""}${d.error ? " " + d.error.code : ""}`);
    console.log(`demo: report ${process.argv[1]}/report.json, certificates ${process.argv[1]}/certs, labels ${process.argv[1]}/labels, database ${process.argv[1]}/data/station.db`);
  ' "$OUT"
fi
exit $rc
