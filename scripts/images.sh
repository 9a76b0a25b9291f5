#!/usr/bin/env bash
# images.sh builds the two images of the project from their own Dockerfiles:
# Dockerfile (the mpegflow image) and encoder-image/Dockerfile (the encode
# pod's). `make images` and `make test-images` call it.
#
#   images.sh build        build both images, tagged mpegflow:$IMAGE_TAG and
#                          mpegflow-encoder:$IMAGE_TAG
#   images.sh exec CMD...  run CMD with the engine's environment (which engine,
#                          image names, and for podman its configuration), as
#                          the images test does: images.sh exec go test ...
#   images.sh oci DIR      save both built images as OCI archives in DIR, each
#                          named by its image id (kept: a second call with the
#                          same images saves nothing), and write DIR/images-$TAG.env
#                          (their names and archives) for the cluster tier,
#                          which imports them into its node's containerd
#
# Where a Docker engine answers (or IMAGE_ENGINE=docker), it builds with
# Docker, which pulls the base images the Dockerfiles name. Elsewhere it uses
# podman and buildah, as root, and provides those base images itself, since no
# registry need be reachable: only Debian's package mirrors and the Go module
# proxy.
#
#   debian:bookworm-slim     mmdebstrap's minbase of bookworm, imported
#   golang:1.26-bookworm     that base plus this machine's Go toolchain
#   gcr.io/distroless/static-debian12:nonroot
#                            scripts/images/distroless.Containerfile, built
#                            from that base's Debian packages
#
# Every image (base, stand-in, and the two project images) is keyed by the
# content it is made from and saved as an archive under $IMAGES_CACHE, so a
# fresh clone, or a wiped container storage, loads it instead of building it.
# docs/images.md explains the choices (chroot isolation, runc, ulimits).
set -euo pipefail

log() { printf 'images: %s\n' "$*" >&2; }
die() {
	log "$*"
	exit 1
}
have() { command -v "$1" >/dev/null 2>&1; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TAG=${IMAGE_TAG:-dev}
CACHE_DIR=${IMAGES_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mpegflow/images}

# The base images the podman path provides, as the Dockerfiles name them and
# as podman stores them (short names resolve to docker.io/library).
DEBIAN_REF=docker.io/library/debian:bookworm-slim
GOLANG_REF=docker.io/library/golang:1.26-bookworm
DISTROLESS_REF=gcr.io/distroless/static-debian12:nonroot
DEBIAN_SUITE=bookworm

# choose_engine prints docker or podman: IMAGE_ENGINE when set, else docker
# when an engine answers, else podman.
choose_engine() {
	case ${IMAGE_ENGINE:-} in
	docker | podman)
		echo "$IMAGE_ENGINE"
		return
		;;
	'') ;;
	*) die "IMAGE_ENGINE=$IMAGE_ENGINE: want docker or podman (or unset to choose)" ;;
	esac
	if have docker && docker info >/dev/null 2>&1; then
		echo docker
	else
		echo podman
	fi
}

# now prints seconds since the epoch with a tenth, for step timings.
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1fs", b-a}'; }

sha() { sha256sum | cut -d' ' -f1; }

# context_hash hashes the files of the build context that git knows
# (tracked, or untracked and not ignored), by path and content, leaving out
# what no image build reads: tests (go build skips *_test.go), Markdown and
# docs/ (nothing embeds them; a //go:embed of one would need it back), and
# this script with its stand-ins (their build functions are in the keys). It
# is coarser than a .dockerignore: a rebuild too many (a chart edit), never
# one too few for a source git sees.
context_hash() {
	(
		cd "$ROOT"
		if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
			git ls-files -z --cached --others --exclude-standard
		else
			find . -path ./.git -prune -o -type f -printf '%P\0'
		fi | sort -zu | while IFS= read -r -d '' f; do
			case $f in *_test.go | *.md | docs/* | scripts/images.sh | scripts/images/*) continue ;; esac
			if [[ -f $f ]]; then printf '%s\0' "$f"; fi
		done | xargs -0 -r sha256sum --
	) | sha
}

# --- podman ----------------------------------------------------------------

# podman_env writes the configuration podman and buildah read (ours, under
# the cache; /etc is left alone) and exports the variables that point at it.
podman_env() {
	((EUID == 0)) || die "without a Docker engine, images are built with podman as root (mmdebstrap --mode=root, chroot isolation); run make images as root"
	"$ROOT/scripts/deps.sh" images

	local conf=$CACHE_DIR/conf run=/run/mpegflow-images
	mkdir -p "$conf" "$CACHE_DIR/storage" "$CACHE_DIR/archives" "$run"

	# A container's rlimits can only be lowered from podman's own, so the
	# defaults (nofile 1048576) fail where the hard limit is lower; take
	# the hard limits, capped where podman's defaults would be.
	local nofile nproc
	nofile=$(ulimit -Hn) nproc=$(ulimit -Hu)
	[[ $nofile == unlimited || $nofile -gt 1048576 ]] && nofile=1048576
	[[ $nproc == unlimited || $nproc -gt 32768 ]] && nproc=32768

	cat >"$conf/containers.conf" <<EOF
# Written by scripts/images.sh; edits are overwritten.
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]

[engine]
# runc, not crun: Debian's crun 1.8 is reported to refuse hybrid cgroup
# hosts (v1 plus a cgroup2 mount); runc 1.1 runs on them.
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "$run/libpod"
EOF
	cat >"$conf/storage.conf" <<EOF
# Written by scripts/images.sh; edits are overwritten.
[storage]
driver = "${IMAGES_STORAGE_DRIVER:-overlay}"
graphroot = "$CACHE_DIR/storage"
runroot = "$run/storage"
EOF
	cat >"$conf/registries.conf" <<EOF
# Written by scripts/images.sh; edits are overwritten. Builds never pull
# (--pull=never): short names resolve to docker.io in local storage.
unqualified-search-registries = ["docker.io"]
short-name-mode = "permissive"
EOF
	export CONTAINERS_CONF=$conf/containers.conf
	export CONTAINERS_STORAGE_CONF=$conf/storage.conf
	export CONTAINERS_REGISTRIES_CONF=$conf/registries.conf
	# Builds run their RUN steps chrooted, not in an OCI runtime: no
	# cgroups to set up, and the host's network (the module proxy and
	# Debian's mirrors) without network plugins.
	export BUILDAH_ISOLATION=chroot
}

# provide LABEL REF KEY BUILDER... makes REF the image keyed by KEY: the one
# already in storage, else the one in the archive, else BUILDER's (which must
# tag REF), which is then saved as the archive. It logs what it did and how
# long that took: the figures of docs/benchmarks.md.
provide() {
	local label=$1 ref=$2 key=$3
	shift 3
	local slug=${label//[^a-zA-Z0-9_.-]/-}
	local keep=localhost/mpegflow-cache/$slug:$key
	local archive=$CACHE_DIR/archives/$slug-$key.tar
	local t0
	t0=$(now)
	if podman image exists "$keep"; then
		podman tag "$keep" "$ref"
		log "$label: in storage (key ${key:0:12}), $(since "$t0")"
	elif [[ -f $archive ]]; then
		podman load -q -i "$archive" >/dev/null ||
			die "$label: cannot load $archive; delete it to rebuild"
		podman tag "$keep" "$ref"
		log "$label: loaded from $archive, $(since "$t0")"
	else
		log "$label: building (key ${key:0:12})"
		"$@"
		podman tag "$ref" "$keep"
		local built
		built=$(since "$t0")
		podman save -q --format docker-archive -o "$archive.tmp" "$keep"
		mv "$archive.tmp" "$archive"
		# Older keys of this image are not used again by this tree; keep
		# the two newest for a branch switch, delete the rest.
		# (The pattern is exact: mpegflow-* would match the encoder's.)
		local old
		while read -r old; do
			rm -f "$CACHE_DIR/archives/$old"
		done < <(ls -t "$CACHE_DIR/archives" | grep -E "^${slug//./\\.}-[0-9a-f]{64}\.tar\$" | tail -n +3)
		log "$label: built in $built ($(since "$t0") with its archive)"
	fi
}

build_debian() {
	local tmp=$CACHE_DIR/debian-rootfs
	rm -rf "$tmp" && mkdir -p "$tmp"
	mmdebstrap --quiet --mode=root --variant=minbase "$DEBIAN_SUITE" "$tmp/rootfs.tar" ||
		die "mmdebstrap $DEBIAN_SUITE failed: is a Debian mirror reachable (apt-get update)?"
	podman import -q \
		--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
		--change 'CMD ["bash"]' \
		"$tmp/rootfs.tar" "$DEBIAN_REF" >/dev/null
	rm -rf "$tmp"
}

# build_golang makes golang:1.26-bookworm from the Debian base and this
# machine's toolchain, with the official image's PATH, GOPATH and
# GOTOOLCHAIN. The host's CA bundle goes in so that `go mod download` trusts
# what the host trusts (a TLS-inspecting proxy's CA, say), and the host's
# module settings (GOPROXY, GOSUMDB, ...) become the image's defaults. Only
# the build stages run in it: neither project image inherits any of this.
build_golang() {
	local goroot ctr=mpegflow-golang-standin
	goroot=$(go env GOROOT)
	buildah rm "$ctr" >/dev/null 2>&1 || true # a failed run's leftover
	buildah from -q --pull=never --name "$ctr" "$DEBIAN_REF" >/dev/null
	buildah copy -q "$ctr" "$goroot" /usr/local/go >/dev/null
	buildah copy -q "$ctr" /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt >/dev/null
	buildah run "$ctr" -- mkdir -p /go/bin /go/src
	buildah run "$ctr" -- chmod -R 1777 /go
	local -a env=(
		--env GOLANG_VERSION="$(go env GOVERSION | sed 's/^go//')"
		--env GOTOOLCHAIN=local
		--env GOPATH=/go
		--env PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
	)
	local v
	for v in GOPROXY GOSUMDB GONOSUMDB GOPRIVATE GONOPROXY GOINSECURE GOFLAGS; do
		env+=(--env "$v=$(go env "$v")")
	done
	buildah config "${env[@]}" --workingdir /go --cmd bash "$ctr"
	buildah commit -q "$ctr" "$GOLANG_REF" >/dev/null
	buildah rm "$ctr" >/dev/null
}

build_distroless() {
	buildah build -q --pull=never --layers \
		-f "$ROOT/scripts/images/distroless.Containerfile" \
		-t "$DISTROLESS_REF" "$ROOT/scripts/images/distroless" >/dev/null
}

# build_project REF DOCKERFILE builds one of the project's Dockerfiles as
# they are, from the repository root.
build_project() {
	local ref=$1 dockerfile=$2
	local -a ignore=()
	[[ -f $ROOT/$dockerfile.dockerignore ]] && ignore=(--ignorefile "$ROOT/$dockerfile.dockerignore")
	buildah build --pull=never --layers "${ignore[@]}" \
		-f "$ROOT/$dockerfile" -t "$ref" "$ROOT"
}

# check_bases fails when a Dockerfile names a base image this script does
# not provide: the podman build would otherwise fail on a pull.
check_bases() {
	local f from
	for f in Dockerfile encoder-image/Dockerfile; do
		while read -r from; do
			case $from in
			golang:1.26-bookworm | debian:bookworm-slim | gcr.io/distroless/static-debian12:nonroot) ;;
			*) die "$f names base image $from, which scripts/images.sh does not provide; add a stand-in for it" ;;
			esac
		done < <(awk 'toupper($1)=="FROM"{for(i=2;i<=NF;i++) if($i !~ /^--/){print $i; break}}' "$ROOT/$f")
	done
	local gov
	gov=$(go env GOVERSION)
	[[ $gov == go1.26 || $gov == go1.26.* ]] ||
		die "the golang:1.26-bookworm stand-in is made from this machine's Go, which is $gov; install Go 1.26"
}

podman_build() {
	check_bases
	local t0 debian_key golang_key distroless_key context
	t0=$(now)
	fn_key() { declare -f "$1" | sha; }
	context=$(context_hash)

	# Each key is what the image is made from: the function that builds
	# it (not this file's comments), its inputs, and its bases' keys.
	debian_key=$(printf '%s\n' "$DEBIAN_SUITE" minbase "$(fn_key build_debian)" | sha)
	golang_key=$(printf '%s\n' "$debian_key" "$(go env GOVERSION GOROOT GOPROXY GOSUMDB GONOSUMDB GOPRIVATE GONOPROXY GOINSECURE GOFLAGS)" \
		"$(sha </etc/ssl/certs/ca-certificates.crt)" "$(fn_key build_golang)" | sha)
	distroless_key=$(printf '%s\n' "$debian_key" "$(fn_key build_distroless)" \
		"$(cd "$ROOT/scripts/images" && find distroless.Containerfile distroless -type f -print0 | sort -z | xargs -0 sha256sum)" | sha)
	local server_key encoder_key
	server_key=$(printf '%s\n' "$golang_key" "$distroless_key" "$context" "$(fn_key build_project)" | sha)
	encoder_key=$(printf '%s\n' "$golang_key" "$debian_key" "$context" "$(fn_key build_project)" | sha)
	log "keys computed in $(since "$t0")"

	provide debian-bookworm-slim "$DEBIAN_REF" "$debian_key" build_debian
	provide golang-1.26-bookworm "$GOLANG_REF" "$golang_key" build_golang
	provide distroless-static-nonroot "$DISTROLESS_REF" "$distroless_key" build_distroless
	provide mpegflow "localhost/mpegflow:$TAG" "$server_key" \
		build_project "localhost/mpegflow:$TAG" Dockerfile
	provide mpegflow-encoder "localhost/mpegflow-encoder:$TAG" "$encoder_key" \
		build_project "localhost/mpegflow-encoder:$TAG" encoder-image/Dockerfile
	log "mpegflow:$TAG and mpegflow-encoder:$TAG ready in $(since "$t0"); run them with: scripts/images.sh exec podman run --rm mpegflow:$TAG version"
}

# oci_export DIR saves localhost/mpegflow:$TAG and localhost/mpegflow-encoder:$TAG
# (podman, as build made them) as OCI archives, for `ctr images import`: the
# index names each image by its reference (org.opencontainers.image.ref.name),
# which containerd keeps. An archive is named by the image's id, so it is
# written once per build; older archives of the same image are deleted. The
# env file lists each image's name and archive, MPEGFLOW_CLUSTER_IMAGE* for
# the mpegflow image, MPEGFLOW_CLUSTER_ENCODER_IMAGE* for the encoder's.
oci_export() {
	local dir=$1 t0
	mkdir -p "$dir"
	local env=$dir/images-$TAG.env
	: >"$env.tmp"
	local name var ref id archive
	for name in mpegflow mpegflow-encoder; do
		t0=$(now)
		ref=localhost/$name:$TAG
		id=$(podman image inspect --format '{{.Id}}' "$ref") ||
			die "$ref is not in storage: run make images first"
		archive=$dir/$name-${id:0:12}.oci.tar
		if [[ -f $archive ]]; then
			log "$ref: OCI archive $archive exists"
		else
			podman save -q --format oci-archive -o "$archive.tmp" "$ref"
			mv "$archive.tmp" "$archive"
			find "$dir" -maxdepth 1 -name "$name-*.oci.tar" ! -name "${archive##*/}" -delete
			log "$ref: saved as $archive in $(since "$t0")"
		fi
		var=MPEGFLOW_CLUSTER_IMAGE
		[[ $name == mpegflow-encoder ]] && var=MPEGFLOW_CLUSTER_ENCODER_IMAGE
		printf '%s=%s\n%s_ARCHIVE=%s\n' "$var" "$ref" "$var" "$archive" >>"$env.tmp"
	done
	mv "$env.tmp" "$env"
}

# --- docker ----------------------------------------------------------------

docker_build() {
	docker build -f "$ROOT/Dockerfile" -t "mpegflow:$TAG" "$ROOT"
	docker build -f "$ROOT/encoder-image/Dockerfile" -t "mpegflow-encoder:$TAG" "$ROOT"
}

main() {
	local cmd=${1:-}
	[[ -n $cmd ]] && shift
	local engine
	engine=$(choose_engine)
	export MPEGFLOW_IMAGE_ENGINE=$engine
	export MPEGFLOW_IMAGE="mpegflow:$TAG" MPEGFLOW_ENCODER_IMAGE="mpegflow-encoder:$TAG"
	case $cmd in
	build)
		log "engine: $engine"
		if [[ $engine == docker ]]; then
			docker_build
		else
			podman_env
			podman_build
		fi
		;;
	exec)
		(($# > 0)) || die "usage: images.sh exec COMMAND [ARG...]"
		[[ $engine == podman ]] && podman_env
		exec "$@"
		;;
	oci)
		(($# == 1)) || die "usage: images.sh oci DIR"
		[[ $engine == podman ]] || die "images.sh oci exports from podman's storage; with Docker, docker save writes a Docker archive (not supported by the cluster tier yet)"
		podman_env
		oci_export "$1"
		;;
	*) die "usage: images.sh build | images.sh exec COMMAND [ARG...] | images.sh oci DIR" ;;
	esac
}

main "$@"
