#!/usr/bin/env bash
# Builds KEDA's own operator from the Go module proxy, at the version the
# main module pins, into $1 (a path under bin/ named by that version).
# KEDA must be built with its own go.mod (its replaces and versions), so the
# module is copied out of the read-only module cache into a scratch tree.
set -euo pipefail
out=${1:?usage: build-keda.sh OUTPUT}
go=${GO:-go}
version=$(awk '$1=="github.com/kedacore/keda/v2"{print $2; exit}' go.mod)
"$go" mod download github.com/kedacore/keda/v2
src=$("$go" list -m -f '{{.Dir}}' github.com/kedacore/keda/v2)
work=$(mktemp -d)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
cp -r "$src/." "$work/"
chmod -R u+w "$work"
mkdir -p "$(dirname "$out")"
echo "building KEDA operator $version (cold: about 12 minutes on two cores)" >&2
# Static, as KEDA's own image builds it: the same binary runs as a process
# (the operator's and end-to-end tests) and, packed alone into an image, as
# the cluster tier's KEDA pod (no libc in that image).
(cd "$work" && CGO_ENABLED=0 GOFLAGS=-buildvcs=false "$go" build -trimpath \
	-ldflags "-X github.com/kedacore/keda/v2/version.Version=$version" \
	-o "$out.tmp" ./cmd/operator)
mv "$out.tmp" "$out"
