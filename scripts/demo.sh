#!/usr/bin/env bash
# demo.sh — `make demo`: a real video through the real pipeline on this
# machine. It starts `mpegflow dev` (private Postgres, Redis and S3 server,
# the API, the coordinator and a local executor that starts `mpegflow encode`
# processes the way KEDA starts Jobs) in a temporary data directory,
# generates a 10 s 1080p clip, submits it with the hls-ladder workflow,
# follows it, downloads the outputs to ./demo-output, verifies them with
# ffprobe, prints a summary and stops the stack. It exits 0 only if the
# outputs are valid.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bin=$root/bin/mpegflow
out=$root/demo-output

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

free_port() {
	local port
	for _ in $(seq 1 100); do
		port=$((20000 + RANDOM % 20000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			echo "$port"
			return 0
		fi
	done
	die "no free port found"
}

work=$(mktemp -d "${TMPDIR:-/tmp}/mpegflow-demo.XXXXXX")
chmod 755 "$work"
dev_pid=""
cleanup() {
	local rc=$?
	if [[ -n $dev_pid ]] && kill -0 "$dev_pid" 2>/dev/null; then
		say "Stopping the stack"
		kill -INT "$dev_pid" 2>/dev/null || true
		for _ in $(seq 1 150); do kill -0 "$dev_pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$dev_pid" 2>/dev/null || true
	fi
	if ((rc != 0)) && [[ -f $work/dev.log ]]; then
		echo "--- last lines of the mpegflow dev log ($work/dev.log) ---" >&2
		tail -n 40 "$work/dev.log" >&2 || true
	else
		rm -rf "$work"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

http_port=$(free_port)
grpc_port=$(free_port)
metrics_port=$(free_port)
export MPEGFLOW_CONFIG=$work/cli.json
export MPEGFLOW_VERSITYGW=${VERSITYGW:-${XDG_CACHE_HOME:-$HOME/.cache}/mpegflow/tools/versitygw}

say "Starting mpegflow dev (data in $work/dev)"
"$bin" dev --data "$work/dev" --http-addr "127.0.0.1:$http_port" --grpc-addr "127.0.0.1:$grpc_port" \
	--metrics-addr "127.0.0.1:$metrics_port" >"$work/dev.log" 2>&1 &
dev_pid=$!
for i in $(seq 1 240); do
	if curl -fsS "http://127.0.0.1:$http_port/ready" >/dev/null 2>&1; then
		break
	fi
	kill -0 "$dev_pid" 2>/dev/null || die "mpegflow dev exited early"
	((i == 240)) && die "mpegflow dev not ready after 120 s"
	sleep 0.5
done
eval "$("$bin" dev env --data "$work/dev")"
echo "API: $MPEGFLOW_SERVER"

say "Generating a 10 s 1080p sample clip"
sample=$work/sample.mp4
ffmpeg -hide_banner -loglevel error -f lavfi -i testsrc2=size=1920x1080:rate=30:duration=10 \
	-f lavfi -i sine=frequency=440:duration=10 -c:v libx264 -preset veryfast -pix_fmt yuv420p \
	-c:a aac -b:a 128k -shortest -y "$sample"

say "Submitting it with the hls-ladder workflow"
start=$(date +%s.%N)
job_json=$("$bin" jobs submit "$sample" --workflow hls-ladder -o json)
job_id=$(printf '%s' "$job_json" | grep -o '"id": *"[0-9a-f-]\{36\}"' | head -n 1 | grep -o '[0-9a-f-]\{36\}')
[[ -n $job_id ]] || die "could not read the job id from: $job_json"
echo "job $job_id"

say "Following the job"
"$bin" jobs watch "$job_id" || die "the job did not complete (see: $bin jobs get $job_id)"
end=$(date +%s.%N)

say "Downloading the outputs to $out"
rm -rf "$out"
"$bin" jobs download "$job_id" --dir "$out"

say "Verifying with ffprobe"
master=$out/master.m3u8
[[ -f $master ]] || die "no master playlist in $out"
mapfile -t variants < <(grep -v '^#' "$master" | grep -v '^$')
((${#variants[@]} > 0)) || die "the master playlist lists no variants"
ok=1
summary=()
for v in "${variants[@]}"; do
	playlist=$out/$v
	[[ -f $playlist ]] || { echo "missing $v" >&2; ok=0; continue; }
	info=$(ffprobe -v error -show_entries stream=codec_type,codec_name,width,height -show_entries format=duration \
		-of default=noprint_wrappers=1 "$playlist" 2>&1) || { echo "ffprobe rejects $v: $info" >&2; ok=0; continue; }
	dur=$(printf '%s\n' "$info" | sed -n 's/^duration=//p' | head -n 1)
	codec=$(printf '%s\n' "$info" | sed -n 's/^codec_name=//p' | head -n 1)
	w=$(printf '%s\n' "$info" | sed -n 's/^width=//p' | head -n 1)
	h=$(printf '%s\n' "$info" | sed -n 's/^height=//p' | head -n 1)
	size=$(du -sh "$(dirname "$playlist")" | cut -f1)
	if ! awk -v d="$dur" 'BEGIN{exit !(d > 9 && d < 11)}'; then
		echo "$v lasts ${dur}s, expected about 10 s" >&2
		ok=0
	fi
	summary+=("$(printf '%-28s %-5s %5sx%-5s %6.2fs %6s' "$v" "$codec" "${w:--}" "${h:--}" "${dur:-0}" "$size")")
done
((ok == 1)) || die "the outputs are not valid"

wall=$(awk -v s="$start" -v e="$end" 'BEGIN{printf "%.1f", e-s}')
speed=$(awk -v w="$wall" 'BEGIN{printf "%.2f", 10/w}')
say "Done: a real video went through the real pipeline"
echo "renditions:"
printf '  %s\n' "${summary[@]}"
echo "total size:   $(du -sh "$out" | cut -f1) in $(find "$out" -type f | wc -l) files"
echo "wall time:    ${wall} s from submit to completed (10 s of video: ${speed}x realtime)"
echo "play it:      ffplay $master"
