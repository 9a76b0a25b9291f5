#!/usr/bin/env bash
# deps.sh installs the system packages that `make test` and `make demo` need
# on a fresh Debian or Ubuntu machine: a PostgreSQL server (initdb, pg_ctl),
# Redis (redis-server, redis-cli), FFmpeg (ffmpeg, ffprobe) and protoc (to
# check that the committed generated code is current).
#
# `deps.sh images` installs instead what `make images` needs where no Docker
# engine runs (scripts/images.sh): podman and buildah (with Debian's network
# plugins), mmdebstrap for the Debian base image, and runc as the runtime,
# which runs containers on hosts with hybrid cgroups (v1 plus a cgroup2
# mount), where Debian's crun 1.8 is reported to refuse.
#
# `deps.sh node` installs what building and running the cluster tier's node
# needs (make node-tools, make test-cluster): a C toolchain and libseccomp's
# headers, since runc is built with cgo and the seccomp build tag, as its
# releases are; the reference CNI plugins (bridge, host-local, loopback in
# /usr/lib/cni) for pod networking; iproute2 and iptables, which the rig and
# kube-proxy run; nftables (the nft CLI), with which the rig checks that the
# NetworkPolicy controller removed its table; patch, which applies our patch
# to kube-network-policies before it is built.
#
# It is idempotent: when everything is already present it changes nothing and
# does not touch the network. It runs as root, or as a user with sudo.
set -euo pipefail

log() { printf 'deps: %s\n' "$*" >&2; }

have() { command -v "$1" >/dev/null 2>&1; }

# Debian and Ubuntu keep the PostgreSQL server binaries out of PATH, in
# /usr/lib/postgresql/<major>/bin.
have_initdb() {
	have initdb && return 0
	compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null
}

missing_packages() {
	local -a pkgs=()
	if [[ $profile == node ]]; then
		have gcc || pkgs+=(gcc)
		have pkg-config || pkgs+=(pkg-config)
		[[ -e /usr/include/stdio.h ]] || pkgs+=(libc6-dev)
		pkg-config --exists libseccomp 2>/dev/null || pkgs+=(libseccomp-dev)
		[[ -x /usr/lib/cni/bridge && -x /usr/lib/cni/host-local && -x /usr/lib/cni/loopback ]] || pkgs+=(containernetworking-plugins)
		have ip || pkgs+=(iproute2)
		have iptables-save || pkgs+=(iptables)
		have nft || pkgs+=(nftables)
		have patch || pkgs+=(patch)
		if ((${#pkgs[@]} > 0)); then
			printf '%s\n' "${pkgs[@]}"
		fi
		return 0
	fi
	if [[ $profile == images ]]; then
		have podman || pkgs+=(podman)
		have buildah || pkgs+=(buildah)
		have mmdebstrap || pkgs+=(mmdebstrap)
		have runc || pkgs+=(runc)
		if ((${#pkgs[@]} > 0)); then
			printf '%s\n' "${pkgs[@]}"
		fi
		return 0
	fi
	have_initdb || pkgs+=(postgresql)
	have psql || pkgs+=(postgresql-client)
	have redis-server || pkgs+=(redis-server)
	have redis-cli || pkgs+=(redis-tools)
	if ! have ffmpeg || ! have ffprobe; then
		pkgs+=(ffmpeg)
	fi
	have protoc || pkgs+=(protobuf-compiler)
	have curl || pkgs+=(curl)
	# The console's browser tests drive Debian's chromium headless.
	have chromium || pkgs+=(chromium)
	if ((${#pkgs[@]} > 0)); then
		printf '%s\n' "${pkgs[@]}"
	fi
}

profile=test

main() {
	case ${1:-} in
	'') ;;
	images) profile=images ;;
	node) profile=node ;;
	*)
		log "unknown profile '$1': run deps.sh for the test packages, deps.sh images for the image builders or deps.sh node for the node tools"
		return 2
		;;
	esac
	local -a missing
	mapfile -t missing < <(missing_packages)
	if ((${#missing[@]} == 0)); then
		if [[ $profile == images ]]; then
			log "all image builders present (podman, buildah, mmdebstrap, runc); nothing to do"
		elif [[ $profile == node ]]; then
			log "all node dependencies present (gcc, pkg-config, libseccomp-dev, CNI plugins, iproute2, iptables, nftables, patch); nothing to do"
		else
			log "all dependencies present (postgresql, redis, ffmpeg, protoc, chromium); nothing to do"
		fi
		return 0
	fi

	if ! have apt-get; then
		log "this is not an apt-based system; install these with your package manager and re-run:"
		if [[ $profile == images ]]; then
			log "  podman, buildah, mmdebstrap, runc"
		elif [[ $profile == node ]]; then
			log "  a C compiler, pkg-config, libseccomp's development files, the CNI reference plugins, iproute2, iptables, nftables, patch"
		else
			log "  PostgreSQL server (initdb, pg_ctl, psql), redis-server + redis-cli, ffmpeg + ffprobe, protoc"
		fi
		log "  (Debian package names: ${missing[*]})"
		return 1
	fi

	local -a sudo=()
	if ((EUID != 0)); then
		if have sudo; then
			sudo=(sudo)
		else
			log "not root and sudo is not available; as root, run:"
			log "  apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
			return 1
		fi
	fi

	log "installing: ${missing[*]}"
	# env passes DEBIAN_FRONTEND through sudo, which resets the environment.
	# The lock timeout makes us wait for a concurrent apt run instead of failing.
	local -a apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive
		apt-get -o DPkg::Lock::Timeout=600 -q)
	"${apt[@]}" update
	"${apt[@]}" install -y --no-install-recommends "${missing[@]}"

	mapfile -t missing < <(missing_packages)
	if ((${#missing[@]} > 0)); then
		log "still missing after install: ${missing[*]}"
		return 1
	fi
	log "done"
}

main "$@"
