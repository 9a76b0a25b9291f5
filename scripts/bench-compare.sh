#!/usr/bin/env bash
# bench-compare.sh: River's no-op job benchmark (tools/river, River built
# from the Go module proxy) against MpegFlow's BenchmarkClaimComplete and
# BenchmarkFullPath, alternating which goes first, against the same
# Postgres (MPEGFLOW_TEST_DATABASE_URL). Run it under
# scripts/with-services.sh; `make bench-compare` does.
#
#   ROUNDS      rounds, each runs both sides once (default 3)
#   JOBS        jobs per MpegFlow benchmark (-benchtime JOBSx, default 10000)
#   WORKERS     pods claiming at once in MpegFlow's benchmarks, one run per
#               figure (MPEGFLOW_BENCH_WORKERS; default "16 128": River's
#               bench works with up to 1,000 at once)
#   CUSTOMERS   customers submitting at once over REST in the full path
#               (MPEGFLOW_BENCH_SUBMITTERS; default: as many as pods, a
#               platform that keeps 128 pods busy has at least as many
#               clients; CUSTOMERS=8 is the benchmark's own default)
#   RIVER_JOBS  jobs River works per round (default 20000)
#
# Prints the load average at each round, every figure, and per round and
# pod count the ratios MpegFlow ÷ River of jobs/s.
set -euo pipefail
: "${MPEGFLOW_TEST_DATABASE_URL:?run under scripts/with-services.sh}"
rounds=${ROUNDS:-3}
jobs=${JOBS:-10000}
workers=${WORKERS:-16 128}
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
# mpegflow W: both benchmarks with W pods (and CUSTOMERS, else W,
# customers); prints their jobs/s.
mpegflow() {
	(cd "$root/dispatcher" && MPEGFLOW_BENCH_WORKERS=$1 MPEGFLOW_BENCH_SUBMITTERS=${CUSTOMERS:-$1} "$tmp/dispatcher.test" -test.run '^$' -test.bench 'ClaimComplete|FullPath' -test.benchtime "${jobs}x") |
		tee -a "$tmp/out" | grep '^Benchmark' >"$tmp/mf"
	# "BenchmarkX-2 N ns/op ... V jobs/s ...": the value before the unit.
	for b in ClaimComplete FullPath; do
		awk -v b="Benchmark$b" '$1 ~ "^"b"(-[0-9]+)?$" {for (i = 2; i <= NF; i++) if ($i == "jobs/s") print $(i-1)}' "$tmp/mf"
	done
}

# ours runs MpegFlow's benchmarks once per pod count, printing each.
ours() {
	local w
	: >"$tmp/ours"
	for w in $workers; do
		read -r cc fp < <(mpegflow "$w" | paste -sd' ')
		if [[ -z ${cc:-} || -z ${fp:-} ]]; then
			# A benchmark that failed prints no figure: say so, never a ratio of nothing.
			echo "bench-compare: MpegFlow's benchmarks with $w pods gave no jobs/s; their output ends:" >&2
			tail -20 "$tmp/out" >&2
			exit 1
		fi
		echo "$w pods, ${CUSTOMERS:-$w} customers:" >>"$tmp/ours"
		cat "$tmp/mf" >>"$tmp/ours"
		echo "$w $cc $fp" >>"$tmp/figures"
	done
}

for ((r = 1; r <= rounds; r++)); do
	echo "== round $r: $(uptime)"
	: >"$tmp/figures"
	if ((r % 2)); then
		rv=$(river)
		ours
	else
		ours
		rv=$(river)
	fi
	cat "$tmp/ours"
	echo "river: $rv jobs/s ($river_jobs no-op jobs); $(grep "^river " "$tmp/out" | tail -1)"
	while read -r w cc fp; do
		awk -v rv="$rv" -v cc="$cc" -v fp="$fp" -v w="$w" 'BEGIN {
			printf "%d pods: claim+complete %s jobs/s = %.3f x River;  full path %s jobs/s = %.3f x River\n", w, cc, cc / rv, fp, fp / rv }'
	done <"$tmp/figures"
done
echo "== done: $(uptime)"
