#!/usr/bin/env bash
# with-services.sh CMD [ARGS...]
#
# Starts a private, throwaway PostgreSQL, Redis and S3 server (versitygw)
# bound to 127.0.0.1 on free ports, runs CMD with these set:
#
#   MPEGFLOW_TEST_DATABASE_URL=postgres://mpegflow@127.0.0.1:PORT/postgres?sslmode=disable
#   MPEGFLOW_TEST_REDIS_URL=redis://127.0.0.1:PORT/0
#   MPEGFLOW_TEST_S3_ENDPOINT=http://127.0.0.1:PORT
#   MPEGFLOW_TEST_S3_ACCESS_KEY / MPEGFLOW_TEST_S3_SECRET_KEY
#
# then stops them all, removes their data and exits with CMD's exit code. A
# variable that is already set is passed through and its service is not
# started, so CI can point tests at service containers instead.
#
# Several instances may run at once; each gets its own directory and ports.
# Install the binaries with scripts/deps.sh.
#
# CMD runs in the foreground so Ctrl-C reaches it. A SIGTERM sent to this
# script alone takes effect once CMD exits; signal the process group (as
# Ctrl-C, timeout(1) and CI runners do) to stop CMD too.
set -euo pipefail

readonly PG_USER=mpegflow
readonly START_ATTEMPTS=5
readonly READY_TIMEOUT=60 # seconds

tmp=""
pg_dir=""
pg_bin=""
pg_port=""
pg_starting=0
redis_pid=""
redis_port=""
s3_pid=""
s3_port=""
s3_access=""
s3_secret=""
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

log() { printf 'with-services: %s\n' "$*" >&2; }

die() {
	log "$*"
	exit 1
}

have() { command -v "$1" >/dev/null 2>&1; }

# tail_log prints the end of a service log to stderr so a failed start explains
# itself.
tail_log() {
	local file=$1
	if [[ -f $file ]]; then
		log "last lines of $file:"
		tail -n 30 "$file" | sed 's/^/    /' >&2
	fi
}

# port_in_use reports whether something listens on 127.0.0.1:$1 (or any
# address on that port).
port_in_use() {
	local port=$1
	if have ss; then
		[[ -n $(ss -Htln "sport = :$port" 2>/dev/null) ]]
	else
		(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
	fi
}

# free_port prints a random port that nothing listens on, below the kernel's
# ephemeral range so outgoing connections do not take it meanwhile. Another
# process can still grab it before we bind, so callers retry on EADDRINUSE.
free_port() {
	local low=32768 max port i
	if [[ -r /proc/sys/net/ipv4/ip_local_port_range ]]; then
		read -r low _ </proc/sys/net/ipv4/ip_local_port_range
	fi
	max=$((low > 11000 ? low : 65000))
	for ((i = 0; i < 100; i++)); do
		port=$((10000 + (RANDOM * 32768 + RANDOM) % (max - 10000)))
		[[ $port == "${pg_port}" || $port == "${redis_port}" ]] && continue
		if ! port_in_use "$port"; then
			echo "$port"
			return 0
		fi
	done
	die "could not find a free TCP port"
}

# --- PostgreSQL -------------------------------------------------------------

# find_pg_bin prints the directory holding initdb and pg_ctl: from PATH, else
# the newest /usr/lib/postgresql/<major>/bin (Debian and Ubuntu layout).
find_pg_bin() {
	local initdb dir
	if initdb=$(command -v initdb 2>/dev/null); then
		# Resolve symlinks so pg_ctl and pg_isready come from the same install.
		dirname "$(readlink -f "$initdb")"
		return 0
	fi
	dir=$(compgen -G '/usr/lib/postgresql/*/bin/initdb' | sort -V | tail -n 1 || true)
	[[ -n $dir ]] || die "PostgreSQL server binaries (initdb, pg_ctl) not found; run scripts/deps.sh"
	dirname "$dir"
}

# as_pg DIR CMD... runs CMD in DIR as the user that owns the cluster.
# PostgreSQL refuses to run as root, so root delegates to the postgres system
# user. DIR matters because the caller's directory may be private to root. The
# subshell execs so that we wait on (and signals reach) the real command, and a
# Ctrl-C cannot leave an initdb or pg_ctl running behind the cleanup.
as_pg() (
	cd "$1" || exit
	shift
	if ((EUID != 0)); then
		exec "$@"
	elif have runuser; then
		exec runuser -u postgres -- "$@"
	else
		exec su postgres -s /bin/sh -c "$(printf '%q ' "$@")"
	fi
)

ensure_pg_system_user() {
	((EUID == 0)) || return 0
	id -u postgres >/dev/null 2>&1 && return 0
	log "creating system user postgres to run the test database (PostgreSQL refuses to run as root)"
	useradd --system --user-group --no-create-home --home-dir /nonexistent \
		--shell /usr/sbin/nologin postgres
}

start_postgres() {
	pg_bin=$(find_pg_bin)
	[[ -x $pg_bin/pg_ctl ]] || die "pg_ctl not found next to $pg_bin/initdb"
	ensure_pg_system_user

	pg_dir=$tmp/postgres
	mkdir -p "$pg_dir/sock"
	if ((EUID == 0)); then
		chown -R postgres: "$pg_dir"
	fi

	local log_file=$pg_dir/postgres.log
	if ! as_pg "$pg_dir" "$pg_bin/initdb" -D "$pg_dir/data" -U "$PG_USER" \
		--auth=trust -E UTF8 --locale=C --no-sync >"$pg_dir/initdb.log" 2>&1; then
		tail_log "$pg_dir/initdb.log"
		die "initdb failed"
	fi

	local attempt
	for ((attempt = 1; attempt <= START_ATTEMPTS; attempt++)); do
		pg_port=$(free_port)
		pg_starting=1
		if as_pg "$pg_dir" "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$log_file" \
			-w -t "$READY_TIMEOUT" \
			-o "-k '$pg_dir/sock' -p $pg_port -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
			start >"$pg_dir/pg_ctl.log" 2>&1; then
			pg_starting=0
			break
		fi
		pg_starting=0
		if grep -q 'Address already in use' "$log_file" 2>/dev/null && ((attempt < START_ATTEMPTS)); then
			log "postgres port $pg_port was taken; retrying on another port"
			: >"$log_file"
			continue
		fi
		tail_log "$pg_dir/pg_ctl.log"
		tail_log "$log_file"
		die "PostgreSQL failed to start (data dir $pg_dir/data)"
	done

	# pg_ctl -w waits for the postmaster; also confirm TCP, which tests use.
	local pg_isready=""
	if [[ -x $pg_bin/pg_isready ]]; then
		pg_isready=$pg_bin/pg_isready
	elif have pg_isready; then
		pg_isready=$(command -v pg_isready)
	fi
	if [[ -n $pg_isready ]]; then
		local deadline=$((SECONDS + READY_TIMEOUT))
		until "$pg_isready" -q -h 127.0.0.1 -p "$pg_port" -U "$PG_USER" -d postgres; do
			if ((SECONDS >= deadline)); then
				tail_log "$log_file"
				die "PostgreSQL on 127.0.0.1:$pg_port not ready after ${READY_TIMEOUT}s"
			fi
			sleep 0.1
		done
	fi

	export MPEGFLOW_TEST_DATABASE_URL="postgres://$PG_USER@127.0.0.1:$pg_port/postgres?sslmode=disable"
	log "PostgreSQL ready on 127.0.0.1:$pg_port (log: $log_file)"
}

# shellcheck disable=SC2317 # reached from the EXIT trap
stop_postgres() {
	[[ -n $pg_dir ]] || return 0
	# Interrupted mid-start: give the postmaster a moment to write its pid file.
	local i
	for ((i = 0; i < 20 && pg_starting; i++)); do
		[[ -f $pg_dir/data/postmaster.pid ]] && break
		sleep 0.1
	done
	[[ -f $pg_dir/data/postmaster.pid ]] || return 0
	if as_pg "$pg_dir" "$pg_bin/pg_ctl" -D "$pg_dir/data" -m fast -w -t 30 stop >/dev/null 2>&1; then
		return 0
	fi
	local pid
	pid=$(head -n 1 "$pg_dir/data/postmaster.pid" 2>/dev/null || true)
	if [[ $pid =~ ^[0-9]+$ ]]; then
		log "pg_ctl stop failed; killing postmaster $pid"
		kill -KILL "$pid" 2>/dev/null || true
	fi
}

# --- Redis ------------------------------------------------------------------

# redis_server_pid prints the process_id that the Redis on 127.0.0.1:$1 reports.
# Comparing it with our child's pid matters: when our redis-server loses a port
# race and exits, another instance's Redis on that port would still answer PING.
redis_server_pid() {
	local port=$1 info
	if have redis-cli; then
		info=$(redis-cli -h 127.0.0.1 -p "$port" info server 2>/dev/null) || return 1
	else
		# No redis-cli (package redis-tools): speak RESP over bash's /dev/tcp.
		info=$(
			exec 2>/dev/null
			exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
			printf 'INFO server\r\n' >&3
			while IFS= read -r -t 2 line <&3; do
				printf '%s\n' "$line"
				[[ $line == process_id:* ]] && exit 0
			done
			exit 1
		) || return 1
	fi
	info=${info//$'\r'/}
	[[ $info =~ (^|$'\n')process_id:([0-9]+) ]] || return 1
	echo "${BASH_REMATCH[2]}"
}

start_redis() {
	have redis-server || die "redis-server not found; run scripts/deps.sh"
	local dir=$tmp/redis log_file=$tmp/redis/redis.log attempt deadline
	mkdir -p "$dir"

	for ((attempt = 1; attempt <= START_ATTEMPTS; attempt++)); do
		redis_port=$(free_port)
		: >"$log_file"
		redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
			--daemonize no --dir "$dir" </dev/null >>"$log_file" 2>&1 &
		redis_pid=$!

		deadline=$((SECONDS + READY_TIMEOUT))
		until [[ $(redis_server_pid "$redis_port" || true) == "$redis_pid" ]]; do
			if ! kill -0 "$redis_pid" 2>/dev/null; then
				wait "$redis_pid" 2>/dev/null || true
				redis_pid=""
				break
			fi
			if ((SECONDS >= deadline)); then
				tail_log "$log_file"
				die "Redis on 127.0.0.1:$redis_port not ready after ${READY_TIMEOUT}s"
			fi
			sleep 0.1
		done
		if [[ -n $redis_pid ]]; then
			export MPEGFLOW_TEST_REDIS_URL="redis://127.0.0.1:$redis_port/0"
			log "Redis ready on 127.0.0.1:$redis_port (log: $log_file)"
			return 0
		fi
		if grep -q 'Address already in use' "$log_file" && ((attempt < START_ATTEMPTS)); then
			log "redis port $redis_port was taken; retrying on another port"
			continue
		fi
		tail_log "$log_file"
		die "Redis failed to start"
	done
}

# shellcheck disable=SC2317 # reached from the EXIT trap
stop_redis() {
	[[ -n $redis_pid ]] || return 0
	kill -TERM "$redis_pid" 2>/dev/null || true
	local i
	for ((i = 0; i < 50; i++)); do
		kill -0 "$redis_pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$redis_pid" 2>/dev/null || true
	wait "$redis_pid" 2>/dev/null || true
	redis_pid=""
}

# --- S3 (versitygw, posix backend) -------------------------------------------

# start_s3 runs versitygw, an S3 server that verifies SigV4 signatures like
# real S3, over a directory of the temp dir. The binary comes from the tools
# module (make tools); VERSITYGW overrides its path. It keeps objects'
# metadata (ETags, content types) in extended attributes, as S3 keeps them:
# multipart uploads need the parts' ETags. On a file system without user
# xattrs it falls back to --nometa, where completing a multipart upload fails.
start_s3() {
	local bin=${VERSITYGW:-${XDG_CACHE_HOME:-$HOME/.cache}/mpegflow/tools/versitygw}
	[[ -x $bin ]] || die "versitygw not found at $bin; run 'make tools'"
	local dir=$tmp/s3 log_file=$tmp/s3.log attempt deadline meta=()
	mkdir -p "$dir/data"
	if ! (command -v setfattr >/dev/null && setfattr -n user.mpegflow -v 1 "$dir/data" 2>/dev/null) &&
		! python3 -c 'import os,sys; os.setxattr(sys.argv[1], "user.mpegflow", b"1")' "$dir/data" 2>/dev/null; then
		log "the temp dir's file system keeps no user xattrs: versitygw runs with --nometa (multipart uploads cannot complete)"
		meta=(--nometa)
	fi
	s3_access=mpegflowtest
	s3_secret=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
	for ((attempt = 1; attempt <= START_ATTEMPTS; attempt++)); do
		s3_port=$(free_port)
		: >"$log_file"
		ROOT_ACCESS_KEY_ID=$s3_access ROOT_SECRET_ACCESS_KEY=$s3_secret \
			"$bin" --port "127.0.0.1:$s3_port" posix "${meta[@]}" "$dir/data" </dev/null >>"$log_file" 2>&1 &
		s3_pid=$!
		deadline=$((SECONDS + READY_TIMEOUT))
		until (exec 3<>"/dev/tcp/127.0.0.1/$s3_port") 2>/dev/null; do
			if ! kill -0 "$s3_pid" 2>/dev/null; then
				wait "$s3_pid" 2>/dev/null || true
				s3_pid=""
				break
			fi
			if ((SECONDS >= deadline)); then
				tail_log "$log_file"
				die "versitygw on 127.0.0.1:$s3_port not ready after ${READY_TIMEOUT}s"
			fi
			sleep 0.1
		done
		if [[ -n $s3_pid ]] && kill -0 "$s3_pid" 2>/dev/null; then
			export MPEGFLOW_TEST_S3_ENDPOINT="http://127.0.0.1:$s3_port"
			export MPEGFLOW_TEST_S3_ACCESS_KEY=$s3_access
			export MPEGFLOW_TEST_S3_SECRET_KEY=$s3_secret
			log "versitygw ready on 127.0.0.1:$s3_port (log: $log_file)"
			return 0
		fi
		if grep -qi 'address already in use' "$log_file" && ((attempt < START_ATTEMPTS)); then
			log "s3 port $s3_port was taken; retrying on another port"
			continue
		fi
		tail_log "$log_file"
		die "versitygw failed to start"
	done
}

# shellcheck disable=SC2317 # reached from the EXIT trap
stop_s3() {
	[[ -n $s3_pid ]] || return 0
	kill -TERM "$s3_pid" 2>/dev/null || true
	local i
	for ((i = 0; i < 50; i++)); do
		kill -0 "$s3_pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$s3_pid" 2>/dev/null || true
	wait "$s3_pid" 2>/dev/null || true
	s3_pid=""
}

# --- main -------------------------------------------------------------------

# shellcheck disable=SC2317 # reached from the EXIT trap
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	set +e
	stop_s3
	stop_redis
	stop_postgres
	if [[ -n $tmp && -d $tmp ]]; then
		rm -rf -- "$tmp"
	fi
	exit "$rc"
}

main() {
	if (($# == 0)); then
		echo "usage: $0 CMD [ARGS...]" >&2
		exit 2
	fi

	trap cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM

	tmp=$(mktemp -d "${TMPDIR:-/tmp}/mpegflow-services.XXXXXX")
	# The postgres user must reach the data directory when we run as root.
	chmod 755 "$tmp"
	if ((EUID == 0)) && [[ -z ${MPEGFLOW_TEST_DATABASE_URL:-} ]]; then
		ensure_pg_system_user
		if ! as_pg / test -x "$tmp"; then
			rmdir "$tmp"
			tmp=$(mktemp -d /tmp/mpegflow-services.XXXXXX)
			chmod 755 "$tmp"
		fi
	fi

	if [[ -n ${MPEGFLOW_TEST_DATABASE_URL:-} ]]; then
		log "using existing PostgreSQL from MPEGFLOW_TEST_DATABASE_URL"
	else
		start_postgres
	fi
	if [[ -n ${MPEGFLOW_TEST_REDIS_URL:-} ]]; then
		log "using existing Redis from MPEGFLOW_TEST_REDIS_URL"
	else
		start_redis
	fi
	if [[ -n ${MPEGFLOW_TEST_S3_ENDPOINT:-} ]]; then
		log "using existing S3 server from MPEGFLOW_TEST_S3_ENDPOINT"
	else
		start_s3
	fi

	local rc=0
	"$@" || rc=$?
	exit "$rc"
}

main "$@"
