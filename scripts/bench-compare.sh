#!/usr/bin/env bash
# bench-compare.sh: River's no-op job benchmark (tools/river, River built
# from the Go module proxy) against MpegFlow's BenchmarkClaimComplete and
# BenchmarkFullPath, alternating which goes first, against the same
# Postgres (MPEGFLOW_TEST_DATABASE_URL). Run it under
# scripts/with-services.sh; `make bench-compare` does.
#
#   ROUNDS      rounds, each runs both sides once (default 3)
#   JOBS        jobs per MpegFlow benchmark (-benchtime JOBSx, default 2000)
#   RIVER_JOBS  jobs River works per round (default 20000)
#
# Prints the load average at each round, every figure, and per round the
# ratios MpegFlow ÷ River of jobs/s.
set -euo pipefail
: "${MPEGFLOW_TEST_DATABASE_URL:?run under scripts/with-services.sh}"
rounds=${ROUNDS:-3}
jobs=${JOBS:-2000}
river_jobs=${RIVER_JOBS:-20000}
go=${GO:-go}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

(cd "$root/tools/river" && "$go" build -o "$tmp/riverbench" .)
(cd "$root" && "$go" test -c -o "$tmp/dispatcher.test" ./dispatcher/)

river() {
	"$tmp/riverbench" -jobs "$river_jobs" | tee -a "$tmp/out" | awk '{for (i = 1; i <= NF; i++) if ($i ~ /^jobs\/s=/) {sub("jobs/s=", "", $i); print $i}}'
}
mpegflow() {
	(cd "$root/dispatcher" && "$tmp/dispatcher.test" -test.run '^$' -test.bench 'ClaimComplete|FullPath' -test.benchtime "${jobs}x") |
		tee -a "$tmp/out" | grep '^Benchmark' >"$tmp/mf"
	# "BenchmarkX-2 N ns/op ... V jobs/s ...": the value before the unit.
	for b in ClaimComplete FullPath; do
		awk -v b="Benchmark$b" '$1 ~ "^"b"(-[0-9]+)?$" {for (i = 2; i <= NF; i++) if ($i == "jobs/s") print $(i-1)}' "$tmp/mf"
	done
}

for ((r = 1; r <= rounds; r++)); do
	echo "== round $r: $(uptime)"
	if ((r % 2)); then
		rv=$(river)
		read -r cc fp < <(mpegflow | paste -sd' ')
	else
		read -r cc fp < <(mpegflow | paste -sd' ')
		rv=$(river)
	fi
	cat "$tmp/mf"
	echo "river: $rv jobs/s ($river_jobs no-op jobs); $(grep "^river " "$tmp/out" | tail -1)"
	awk -v rv="$rv" -v cc="$cc" -v fp="$fp" 'BEGIN {
		printf "claim+complete: %s jobs/s = %.3f x River;  full path: %s jobs/s = %.3f x River\n", cc, cc / rv, fp, fp / rv }'
done
echo "== done: $(uptime)"
