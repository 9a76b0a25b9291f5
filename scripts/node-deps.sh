#!/usr/bin/env bash
# node-deps.sh installs the Debian packages that building the cluster tier's
# node needs (make node-tools): a C toolchain and libseccomp's headers, since
# runc is built with cgo and the seccomp build tag, as its releases are.
#
# Idempotent: when everything is present it changes nothing and does not
# touch the network. It runs as root, or as a user with sudo.
set -euo pipefail

log() { printf 'node-deps: %s\n' "$*" >&2; }

have() { command -v "$1" >/dev/null 2>&1; }

missing_packages() {
	local -a pkgs=()
	have gcc || pkgs+=(gcc)
	have pkg-config || pkgs+=(pkg-config)
	[[ -e /usr/include/stdio.h ]] || pkgs+=(libc6-dev)
	pkg-config --exists libseccomp 2>/dev/null || pkgs+=(libseccomp-dev)
	if ((${#pkgs[@]} > 0)); then
		printf '%s\n' "${pkgs[@]}"
	fi
}

main() {
	local -a missing
	mapfile -t missing < <(missing_packages)
	if ((${#missing[@]} == 0)); then
		log "all build dependencies present (gcc, pkg-config, libseccomp-dev); nothing to do"
		return 0
	fi
	if ! have apt-get; then
		log "this is not an apt-based system; install a C compiler, pkg-config and libseccomp's"
		log "development files with your package manager (Debian names: ${missing[*]}) and re-run"
		return 1
	fi
	local -a sudo=()
	if ((EUID != 0)); then
		if ! have sudo; then
			log "not root and sudo is not available; as root, run:"
			log "  apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
			return 1
		fi
		sudo=(sudo)
	fi

	log "installing: ${missing[*]}"
	# env carries DEBIAN_FRONTEND through sudo; the lock timeout waits for a
	# concurrent apt run (another engineer's deps.sh) instead of failing.
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
