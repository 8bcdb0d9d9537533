#!/usr/bin/env bash
# The openssl baseline of the `ca` benchmark (docs: contracts.md §4): a shell loop that, per device,
# makes a fresh P-256 key and CSR (`openssl req -newkey`) and certifies it with a throwaway software
# CA (`openssl x509 -req`). The CA is made once, at the start. No HSM, no database.
#
# Usage: scripts/openssl-loop.sh N DIR     (N devices; keys, CSRs and certificates go under DIR)
# Prints one line at the end: "devices N".
set -euo pipefail

usage() { echo "usage: $0 N DIR" >&2; exit 2; }
[[ $# -eq 2 ]] || usage
n=$1
dir=$2
[[ "$n" =~ ^[0-9]+$ && "$n" -gt 0 ]] || usage

mkdir -p "$dir/devices"
log="$dir/openssl.log"
: >"$log"
trap 'status=$?; echo "openssl-loop: failed (exit $status); openssl said:" >&2; tail -n 20 "$log" >&2; exit $status' ERR

openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -keyout "$dir/ca.key" -out "$dir/ca.pem" -days 3650 \
  -subj "/O=Example Devices Inc/CN=Bench Software Issuing CA" 2>>"$log"

for ((i = 1; i <= n; i++)); do
  serial=$(printf 'BENCH-%06d' "$i")
  base="$dir/devices/$serial"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$base.key" -out "$base.csr" \
    -subj "/O=Example Devices Inc/CN=DemoSensor-1/serialNumber=$serial" 2>>"$log"
  # OpenSSL 3 gives the certificate a random serial number when none is named.
  openssl x509 -req -in "$base.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -days 36500 \
    -out "$base.pem" 2>>"$log"
done

echo "devices $n"
