# MpegFlow — `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

GO        ?= go
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
BIN       := bin
# Tool binaries (versitygw, protoc plugins, kube-apiserver, etcd, KEDA's
# operator) are cached outside the clone, keyed by version, so every clone on
# this machine reuses them: $XDG_CACHE_HOME/mpegflow, else ~/.cache/mpegflow.
CACHE     ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/mpegflow
TOOLS_BIN := $(CACHE)/tools
VERSITYGW_VERSION := $(shell awk '$$1=="github.com/versity/versitygw"{print $$2}' tools/go.mod)
VERSITYGW := $(TOOLS_BIN)/versitygw-$(VERSITYGW_VERSION)

.PHONY: help
help: ## List the targets
	@awk 'BEGIN{FS=":.*## "} /^[a-zA-Z0-9_.-]+:.*## /{printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: deps
deps: ## Install system packages the tests and demo need (postgresql, redis, ffmpeg)
	@scripts/deps.sh

.PHONY: build
build: ## Build the mpegflow binary into bin/ (VERSION=v1.2.3 stamps a release; default git describe)
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN)/mpegflow ./cmd/mpegflow

# Tool binaries are built from the tools module and cached by version.
PROTOC_GEN_GO      := $(TOOLS_BIN)/protoc-gen-go
PROTOC_GEN_GO_GRPC := $(TOOLS_BIN)/protoc-gen-go-grpc

$(PROTOC_GEN_GO) $(PROTOC_GEN_GO_GRPC): tools/go.mod tools/go.sum
	@mkdir -p $(TOOLS_BIN)
	cd tools && GOBIN=$(TOOLS_BIN) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go google.golang.org/grpc/cmd/protoc-gen-go-grpc

$(VERSITYGW):
	@mkdir -p $(TOOLS_BIN)
	cd tools && GOBIN=$(TOOLS_BIN)/.build $(GO) install github.com/versity/versitygw/cmd/versitygw
	mv $(TOOLS_BIN)/.build/versitygw $@
	ln -sf versitygw-$(VERSITYGW_VERSION) $(TOOLS_BIN)/versitygw

# kube-apiserver and etcd for the operator's control-plane tests (envtest),
# built from the Go module proxy in their own module (tools/k8s) and cached
# under a directory named by both versions: a version bump builds anew, a
# warm cache costs nothing. Cold: about 5 to 10 minutes on two cores.
K8S_VERSION  := $(shell awk '$$1=="k8s.io/kubernetes" && NF>1 {print $$2; exit}' tools/k8s/go.mod)
ETCD_VERSION := $(shell awk '$$1=="go.etcd.io/etcd/server/v3" && NF>1 {print $$2; exit}' tools/k8s/go.mod)
K8S_ASSETS   := $(CACHE)/k8s/kube-$(K8S_VERSION)-etcd-$(ETCD_VERSION)

$(K8S_ASSETS)/kube-apiserver:
	@mkdir -p $(K8S_ASSETS)
	cd tools/k8s && $(GO) build -trimpath -o $@.tmp k8s.io/kubernetes/cmd/kube-apiserver
	mv $@.tmp $@

$(K8S_ASSETS)/etcd:
	@mkdir -p $(K8S_ASSETS)
	cd tools/k8s && $(GO) build -trimpath -o $@.tmp go.etcd.io/etcd/server/v3
	mv $@.tmp $@

# kube-controller-manager and kube-scheduler for the end-to-end rig, from the
# same module and cached beside the apiserver (new file names only: the
# directory is shared, so each binary is written to .tmp and renamed).
$(K8S_ASSETS)/kube-controller-manager:
	@mkdir -p $(K8S_ASSETS)
	cd tools/k8s && $(GO) build -trimpath -o $@.tmp k8s.io/kubernetes/cmd/kube-controller-manager
	mv $@.tmp $@

$(K8S_ASSETS)/kube-scheduler:
	@mkdir -p $(K8S_ASSETS)
	cd tools/k8s && $(GO) build -trimpath -o $@.tmp k8s.io/kubernetes/cmd/kube-scheduler
	mv $@.tmp $@

.PHONY: k8s-tools
k8s-tools: $(K8S_ASSETS)/kube-apiserver $(K8S_ASSETS)/etcd ## Build kube-apiserver and etcd for envtest into the cache ($(CACHE)/k8s), cached by version

.PHONY: k8s-e2e-tools
k8s-e2e-tools: k8s-tools $(K8S_ASSETS)/kube-controller-manager $(K8S_ASSETS)/kube-scheduler ## Build kube-controller-manager and kube-scheduler for the end-to-end rig, cached by version

# The real node for the cluster tier (docs/design/0016-cluster-tier.md):
# kubelet and kube-proxy from tools/k8s (the apiserver's Kubernetes version,
# cached beside it), and runc, containerd, CoreDNS and kube-network-policies
# each from its own module under tools/node, which resolves to exactly the
# dependency versions that upstream's go.mod names. Each binary is written to
# .tmp and renamed, under a directory named by its version: a warm cache
# builds nothing. Builds use every core (a cold CI run has nothing else to
# do meanwhile); on a busy workstation, NODE_BUILD='nice -n 10 go build -p 1
# -trimpath' leaves the rest of the machine its CPU. Cold (empty build
# cache): about 18 minutes on two cores at load 2 to 7 (docs/benchmarks.md).
NODE_CACHE := $(CACHE)/node
NODE_BUILD ?= $(GO) build -trimpath
K8S_LDFLAGS := -X k8s.io/component-base/version.gitVersion=$(K8S_VERSION) \
	-X k8s.io/component-base/version.gitMajor=$(word 1,$(subst ., ,$(K8S_VERSION:v%=%))) \
	-X k8s.io/component-base/version.gitMinor=$(word 2,$(subst ., ,$(K8S_VERSION:v%=%))) \
	-X k8s.io/component-base/version.gitTreeState=clean

$(K8S_ASSETS)/kubelet:
	@mkdir -p $(K8S_ASSETS)
	cd tools/k8s && $(NODE_BUILD) -ldflags "$(K8S_LDFLAGS)" -o $@.tmp k8s.io/kubernetes/cmd/kubelet
	mv $@.tmp $@

$(K8S_ASSETS)/kube-proxy:
	@mkdir -p $(K8S_ASSETS)
	cd tools/k8s && $(NODE_BUILD) -ldflags "$(K8S_LDFLAGS)" -o $@.tmp k8s.io/kubernetes/cmd/kube-proxy
	mv $@.tmp $@

# The cluster tier's kube-apiserver: the same build, version-stamped like
# the kubelet. helm checks a chart's kubeVersion (">=1.30.0-0") against the
# apiserver's /version, which the unstamped build reports as
# v0.0.0-master+$$Format:%H$$. Only the link differs, so with the unstamped
# build's packages in the Go build cache it takes about a minute. Kept
# under node/, not k8s/: charts/mpegflow's dry-run test takes the last
# k8s/*/kube-apiserver as its envtest assets when KUBEBUILDER_ASSETS is unset.
CLUSTER_APISERVER := $(NODE_CACHE)/kube-apiserver-$(K8S_VERSION)/kube-apiserver

$(CLUSTER_APISERVER):
	@mkdir -p $(@D)
	cd tools/k8s && $(NODE_BUILD) -ldflags "$(K8S_LDFLAGS)" -o $@.tmp k8s.io/kubernetes/cmd/kube-apiserver
	mv $@.tmp $@

# runc with seccomp needs cgo and libseccomp's headers (scripts/deps.sh node).
RUNC_VERSION := $(shell awk '$$1=="github.com/opencontainers/runc"{print $$2; exit}' tools/node/runc/go.mod)
RUNC         := $(NODE_CACHE)/runc-$(RUNC_VERSION)/runc

$(RUNC):
	scripts/deps.sh node
	@mkdir -p $(@D)
	cd tools/node/runc && CGO_ENABLED=1 $(NODE_BUILD) -tags seccomp \
		-ldflags "-X main.version=$(RUNC_VERSION:v%=%)" -o $@.tmp github.com/opencontainers/runc
	mv $@.tmp $@

# containerd with its CRI plugin (built in unless no_cri), without btrfs
# (no headers here, and the tier uses overlayfs); the shim is static and
# without gRPC, as containerd's own Makefile builds it.
CONTAINERD_VERSION := $(shell awk '$$1=="github.com/containerd/containerd/v2"{print $$2; exit}' tools/node/containerd/go.mod)
CONTAINERD_DIR     := $(NODE_CACHE)/containerd-$(CONTAINERD_VERSION)
CONTAINERD_PKG     := github.com/containerd/containerd/v2
CONTAINERD_LDFLAGS := -X $(CONTAINERD_PKG)/version.Version=$(CONTAINERD_VERSION) -X $(CONTAINERD_PKG)/version.Package=$(CONTAINERD_PKG)

$(CONTAINERD_DIR)/containerd $(CONTAINERD_DIR)/ctr: $(CONTAINERD_DIR)/%:
	@mkdir -p $(@D)
	cd tools/node/containerd && $(NODE_BUILD) -tags "urfave_cli_no_docs no_btrfs" \
		-ldflags "$(CONTAINERD_LDFLAGS)" -o $@.tmp $(CONTAINERD_PKG)/cmd/$*
	mv $@.tmp $@

$(CONTAINERD_DIR)/containerd-shim-runc-v2:
	@mkdir -p $(@D)
	cd tools/node/containerd && CGO_ENABLED=0 $(NODE_BUILD) -tags "urfave_cli_no_docs no_grpc" \
		-ldflags "$(CONTAINERD_LDFLAGS)" -o $@.tmp $(CONTAINERD_PKG)/cmd/containerd-shim-runc-v2
	mv $@.tmp $@

# CoreDNS with only the plugins the node's Corefile uses
# (tools/node/coredns/main.go), keyed by that file too: a plugin added there
# builds it again.
COREDNS_VERSION := $(shell awk '$$1=="github.com/coredns/coredns"{print $$2; exit}' tools/node/coredns/go.mod)
COREDNS_MAIN    := tools/node/coredns/main.go
COREDNS_HASH    := $(shell sha256sum $(COREDNS_MAIN) | cut -c1-12)
COREDNS         := $(NODE_CACHE)/coredns-$(COREDNS_VERSION)-$(COREDNS_HASH)/coredns

$(COREDNS):
	@mkdir -p $(@D)
	cd tools/node/coredns && CGO_ENABLED=0 $(NODE_BUILD) -o $@.tmp .
	mv $@.tmp $@

# kube-network-policies, patched (docs/design/0016-cluster-tier.md,
# "NetworkPolicy"): its native nftables queue expression becomes the xtables
# NFQUEUE target through nft_compat (this kernel has no CONFIG_NFT_QUEUE),
# and a --kubeconfig flag lets it run outside a pod. Built from upstream's
# module as the proxy serves it (tools/node/netpol/go.mod pins the version,
# its go.sum the checksum), copied, patched and built with its own go.mod,
# so with exactly the dependency versions upstream names. Keyed by the
# version and the patch's hash.
NETPOL_VERSION := $(shell awk '$$1=="sigs.k8s.io/kube-network-policies"{print $$2; exit}' tools/node/netpol/go.mod)
NETPOL_PATCH   := tools/node/netpol/nfqueue-compat.patch
NETPOL_HASH    := $(shell sha256sum $(NETPOL_PATCH) | cut -c1-12)
NETPOL         := $(NODE_CACHE)/kube-network-policies-$(NETPOL_VERSION)-patch-$(NETPOL_HASH)/kube-network-policies

$(NETPOL):
	@mkdir -p $(@D)
	rm -rf $(@D)/src
	cd tools/node/netpol && $(GO) mod download sigs.k8s.io/kube-network-policies && \
		cp -r "$$($(GO) list -m -f '{{.Dir}}' sigs.k8s.io/kube-network-policies)" $(@D)/src
	chmod -R u+w $(@D)/src
	patch -d $(@D)/src -p1 --no-backup-if-mismatch < $(NETPOL_PATCH)
	cd $(@D)/src && CGO_ENABLED=0 $(NODE_BUILD) -o $@.tmp ./cmd
	rm -rf $(@D)/src
	mv $@.tmp $@

# The pod sandbox image, built here (no registry is reachable): a static
# program packed into an OCI archive for `ctr images import`. Its tag is a
# hash of the program's source, so a change builds a new image.
PAUSE_SRC     := internal/testenv/node/pause/main.go
PAUSE_TAG     := $(shell sha256sum $(PAUSE_SRC) | cut -c1-12)
PAUSE_IMAGE   := localhost/mpegflow/pause:$(PAUSE_TAG)
PAUSE_ARCHIVE := $(NODE_CACHE)/pause-$(PAUSE_TAG)/pause.oci.tar

$(PAUSE_ARCHIVE):
	@mkdir -p $(@D)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w" -o $(@D)/pause ./internal/testenv/node/pause
	$(GO) run ./internal/testenv/node/imagearchive -name $(PAUSE_IMAGE) -path /pause -exe $(@D)/pause -o $@.tmp
	mv $@.tmp $@

.PHONY: pause-image
pause-image: $(PAUSE_ARCHIVE) ## Build the pod sandbox (pause) image as an OCI archive in $(CACHE)/node

# The cluster tier's network probe (an HTTP server that names its pod, and
# a client that resolves a Service and reports who answered), packed the
# same way; tagged by a hash of its source.
NETCHECK_SRC     := internal/testenv/node/netcheck/main.go
NETCHECK_TAG     := $(shell sha256sum $(NETCHECK_SRC) | cut -c1-12)
NETCHECK_IMAGE   := localhost/mpegflow/netcheck:$(NETCHECK_TAG)
NETCHECK_ARCHIVE := $(NODE_CACHE)/netcheck-$(NETCHECK_TAG)/netcheck.oci.tar

$(NETCHECK_ARCHIVE):
	@mkdir -p $(@D)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w" -o $(@D)/netcheck ./internal/testenv/node/netcheck
	$(GO) run ./internal/testenv/node/imagearchive -name $(NETCHECK_IMAGE) -path /netcheck -exe $(@D)/netcheck -o $@.tmp
	mv $@.tmp $@

.PHONY: netcheck-image
netcheck-image: $(NETCHECK_ARCHIVE) ## Build the cluster tier's network probe image as an OCI archive in $(CACHE)/node

# The reference CNI plugins (bridge, host-local, loopback): Debian's
# containernetworking-plugins, which scripts/deps.sh node installs.
CNI_BIN ?= /usr/lib/cni

NODE_TOOLS := $(PAUSE_ARCHIVE) $(NETCHECK_ARCHIVE) $(RUNC) $(CONTAINERD_DIR)/containerd $(CONTAINERD_DIR)/ctr $(CONTAINERD_DIR)/containerd-shim-runc-v2 \
	$(K8S_ASSETS)/kubelet $(K8S_ASSETS)/kube-proxy $(K8S_ASSETS)/kube-apiserver $(K8S_ASSETS)/etcd \
	$(K8S_ASSETS)/kube-controller-manager $(K8S_ASSETS)/kube-scheduler $(CLUSTER_APISERVER) $(COREDNS) $(NETPOL)

.PHONY: node-tools
node-tools: $(NODE_TOOLS) ## Build the cluster tier's node (runc, containerd, kubelet, kube-proxy, CoreDNS, kube-network-policies) into $(CACHE), cached by version

# helm, at the version tools/helm/go.mod pins, built from the module proxy
# (helm's own dependency versions: a module of its own) and cached by
# version, for the cluster tier's install of charts/mpegflow.
HELM_VERSION := $(shell awk '$$1=="helm.sh/helm/v3"{print $$2; exit}' tools/helm/go.mod)
HELM         := $(CACHE)/helm/helm-$(HELM_VERSION)/helm

# As helm's own Makefile does, the Kubernetes version that `helm template`
# and `helm lint` assume without a cluster is that of the client-go it is
# built with (v0.37 → 1.37); unset, it is 1.20, which this chart refuses.
HELM_K8S_MINOR := $(shell awk '$$1=="k8s.io/client-go"{split($$2,v,"."); print v[2]; exit}' tools/helm/go.mod)
HELM_LDFLAGS   := -X helm.sh/helm/v3/internal/version.version=$(HELM_VERSION) \
	-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$(HELM_K8S_MINOR) \
	-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$(HELM_K8S_MINOR)

$(HELM):
	@mkdir -p $(@D)
	cd tools/helm && $(NODE_BUILD) -ldflags "$(HELM_LDFLAGS)" -o $@.tmp helm.sh/helm/v3/cmd/helm
	mv $@.tmp $@

.PHONY: helm
helm: $(HELM) ## Build helm (version from tools/helm/go.mod) into the cache ($(CACHE)/helm)

# The project's images (make images) as OCI archives for the node's
# containerd, named by image id under $(CACHE)/images/oci: written once per
# build. The env file names each image and its archive for the tests.
CLUSTER_IMAGES_DIR = $(CACHE)/images/oci
CLUSTER_IMAGES_ENV = $(CLUSTER_IMAGES_DIR)/images-$(IMAGE_TAG).env

.PHONY: cluster-images
cluster-images: images ## Save the built images (make images) as OCI archives for the cluster tier's node, cached by image id
	IMAGE_TAG=$(IMAGE_TAG) IMAGES_CACHE=$(CACHE)/images scripts/images.sh oci $(CLUSTER_IMAGES_DIR)

# KEDA's own operator for the scaling tests (operator/keda_test.go), at the
# version go.mod pins, built from the module proxy with KEDA's own go.mod
# (scripts/build-keda.sh) and cached by version. Cold: about 12 minutes on
# two cores.
KEDA_VERSION  := $(shell awk '$$1=="github.com/kedacore/keda/v2"{print $$2; exit}' go.mod)
# Static (CGO_ENABLED=0), hence the directory's suffix: a cache that holds
# an earlier cgo build of the same version builds anew.
KEDA_OPERATOR := $(CACHE)/keda/keda-$(KEDA_VERSION)-static/keda-operator

$(KEDA_OPERATOR):
	GO=$(GO) scripts/build-keda.sh $@

# The same binary as the cluster tier's KEDA image (its entrypoint /keda,
# as in KEDA's own image and Deployment), packed like the pause image.
KEDA_IMAGE   := localhost/kedacore/keda:$(KEDA_VERSION:v%=%)
KEDA_ARCHIVE := $(NODE_CACHE)/keda-$(KEDA_VERSION)-static/keda.oci.tar

$(KEDA_ARCHIVE): $(KEDA_OPERATOR)
	@mkdir -p $(@D)
	$(GO) run ./internal/testenv/node/imagearchive -name $(KEDA_IMAGE) -path /keda -exe $(KEDA_OPERATOR) -o $@.tmp
	mv $@.tmp $@

.PHONY: keda
keda: $(KEDA_OPERATOR) ## Build KEDA's operator (version from go.mod) into the cache ($(CACHE)/keda), cached by version

# The cluster tier's own tests (build tag cluster): not part of `make test`;
# CI runs them beside the end-to-end tier (.ci/run). After the KEDA
# variables: make expands a rule's prerequisites as it reads the rule, so a
# variable defined further down is empty there (a cold machine then never
# built the KEDA image archive).
.PHONY: cluster-prereqs
cluster-prereqs: deps node-tools cluster-images $(KEDA_ARCHIVE) $(HELM) $(VERSITYGW) build ## Build what make test-cluster needs (CI builds it first, then runs the two end-to-end tiers side by side)
	scripts/deps.sh node

# What only the two end-to-end tiers need, none of which `make test` builds
# or reads: CI builds it in the background while lint, the tests and the
# fuzzing run (.ci/run), which fills the time those leave idle (package
# downloads, waits on services) on a cold machine. Network-bound steps come
# first (the images' Debian base and packages, the node tools' modules) and
# the Kubernetes binaries last: by then the foreground's kube-apiserver build
# has put the packages they share into the Go build cache, so none is
# compiled twice at once. Without -j, make builds them in the listed order.
TIER_ONLY_PREREQS := cluster-images $(RUNC) $(CONTAINERD_DIR)/containerd $(CONTAINERD_DIR)/ctr $(CONTAINERD_DIR)/containerd-shim-runc-v2 \
	$(COREDNS) $(NETPOL) $(HELM) $(PAUSE_ARCHIVE) $(NETCHECK_ARCHIVE) \
	$(K8S_ASSETS)/kube-controller-manager $(K8S_ASSETS)/kube-scheduler $(K8S_ASSETS)/kubelet $(K8S_ASSETS)/kube-proxy $(CLUSTER_APISERVER)

.PHONY: tier-prereqs
tier-prereqs: $(TIER_ONLY_PREREQS) ## Build what only the end-to-end tiers need (images, node tools, helm, controller-manager, scheduler); CI runs it beside lint and make test

.PHONY: test-cluster
test-cluster: cluster-prereqs ## Run the cluster tier's tests (tag cluster): a one-node cluster (control plane, kubelet, CNI bridge, kube-proxy, CoreDNS, NetworkPolicy, KEDA as a pod), the chart installed with helm, jobs through KEDA to encode pods, pause, a dedicated pool, a killed pod, encode-pod egress, a rolling API
	set -a && . $(CLUSTER_IMAGES_ENV) && set +a && \
	MPEGFLOW_NODE_RUNC=$(RUNC) MPEGFLOW_NODE_CONTAINERD_DIR=$(CONTAINERD_DIR) MPEGFLOW_NODE_KUBELET=$(K8S_ASSETS)/kubelet \
	MPEGFLOW_NODE_PAUSE_ARCHIVE=$(PAUSE_ARCHIVE) MPEGFLOW_NODE_PAUSE_IMAGE=$(PAUSE_IMAGE) \
	MPEGFLOW_NODE_NETCHECK_ARCHIVE=$(NETCHECK_ARCHIVE) MPEGFLOW_NODE_NETCHECK_IMAGE=$(NETCHECK_IMAGE) MPEGFLOW_NODE_NETCHECK=$(dir $(NETCHECK_ARCHIVE))netcheck \
	MPEGFLOW_NODE_COREDNS=$(COREDNS) MPEGFLOW_NODE_NETPOL=$(NETPOL) MPEGFLOW_NODE_CNI_BIN=$(CNI_BIN) KUBEBUILDER_ASSETS=$(K8S_ASSETS) \
	MPEGFLOW_NODE_APISERVER=$(CLUSTER_APISERVER) MPEGFLOW_HELM=$(HELM) VERSITYGW=$(VERSITYGW) \
	MPEGFLOW_NODE_KEDA_ARCHIVE=$(KEDA_ARCHIVE) MPEGFLOW_NODE_KEDA_IMAGE=$(KEDA_IMAGE) MPEGFLOW_BIN=$(abspath $(BIN))/mpegflow \
		scripts/with-services.sh $(GO) test -tags cluster -count=1 -timeout 30m -v ./internal/testenv/node/

.PHONY: tools
tools: $(VERSITYGW) k8s-tools keda ## Build the test tools (versitygw S3 server, kube-apiserver, etcd, KEDA operator) into $(CACHE), cached by version

.PHONY: test
test: deps tools verify-generated ## Check generated code, then run every test with -race against private Postgres, Redis and S3
	VERSITYGW=$(VERSITYGW) KUBEBUILDER_ASSETS=$(K8S_ASSETS) KEDA_OPERATOR=$(KEDA_OPERATOR) \
		scripts/with-services.sh $(GO) test -race -count=1 ./...

# A key for a CI cache of $(CACHE): the cached binaries and images are
# named by version, and their versions and recipes live in these files.
# Cold, filling the cache takes about 42 minutes on two cores and a whole run
# about 86 (measured, docs/benchmarks.md): CI keeps it between runs under
# this key and fills it with `make lint e2e-prereqs cluster-prereqs` when the
# key is new.
CACHE_KEY_FILES = go.mod $(shell git ls-files 'tools/**go.mod' 'tools/**.patch') $(COREDNS_MAIN) Makefile \
	Dockerfile encoder-image/Dockerfile scripts/images.sh scripts/build-keda.sh

.PHONY: cache-key
cache-key: ## Print the key under which CI keeps $(CACHE) (the tools' and images' versions and recipes)
	@cat $(CACHE_KEY_FILES) | sha256sum | cut -c1-16

.PHONY: e2e-prereqs
e2e-prereqs: deps tools k8s-e2e-tools ## Build what make test-e2e needs (CI builds it first, then runs the two end-to-end tiers side by side)

.PHONY: test-e2e
test-e2e: e2e-prereqs ## Run the end-to-end test: REST → KEDA → Job → process node → mpegflow encode → S3, on a real control plane
	VERSITYGW=$(VERSITYGW) KUBEBUILDER_ASSETS=$(K8S_ASSETS) KEDA_OPERATOR=$(KEDA_OPERATOR) \
		scripts/with-services.sh $(GO) test -race -count=1 -tags e2e -timeout 30m -v ./e2e/

.PHONY: bench-warm
bench-warm: deps tools k8s-e2e-tools ## Measure pod starts per minute of a 10-pod warm pool (warm_idle_seconds 20 vs 300) on the end-to-end rig, about 3 minutes
	VERSITYGW=$(VERSITYGW) KUBEBUILDER_ASSETS=$(K8S_ASSETS) KEDA_OPERATOR=$(KEDA_OPERATOR) \
		scripts/with-services.sh $(GO) test -count=1 -tags "e2e warmbench" -timeout 20m -v -run TestWarmPoolPodStarts ./e2e/

# Go fuzz targets of the hostile-input surface (docs/security.md). Their
# seed corpora run in every `make test`; this also fuzzes each briefly. The
# budget is a count of executions, not a duration: with a duration, Go 1.26's
# fuzz coordinator can report "context deadline exceeded" as a failure when
# the deadline lands while a starved worker is mid-call (go.dev/issue/75804,
# fixed in Go 1.27), which a loaded two-core CI machine hits.
FUZZ_TIME ?= 60000x
FUZZ_TARGETS := ./internal/netguard:FuzzCheckURL ./internal/strictjson:FuzzDecode ./internal/encodespec:FuzzParse

.PHONY: fuzz
fuzz: ## Fuzz the URL guard, the strict JSON decoder and the encode-spec parser for FUZZ_TIME executions each (CI runs it)
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t##*:}; \
		echo "fuzz $$fn ($$pkg) for $(FUZZ_TIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZ_TIME) -parallel 2 $$pkg || exit 1; \
	done

.PHONY: bench
bench: deps $(VERSITYGW) ## Run the coordinator benchmarks (REST + gRPC + Postgres + Redis), figures go in docs/benchmarks.md
	VERSITYGW=$(VERSITYGW) scripts/with-services.sh $(GO) test -run '^$$' -bench . -benchtime 3000x -count 3 ./dispatcher/

.PHONY: bench-compare
bench-compare: deps $(VERSITYGW) ## River's no-op bench (tools/river) and the coordinator's claim+complete and full path, alternating on one Postgres: jobs/s and ratios
	VERSITYGW=$(VERSITYGW) GO=$(GO) scripts/with-services.sh scripts/bench-compare.sh

# golangci-lint, at the version tools/lint/go.mod pins, built from the
# module proxy and cached by version (cold: a few minutes on two cores).
GOLANGCI_VERSION := $(shell awk '$$1=="github.com/golangci/golangci-lint/v2"{print $$2; exit}' tools/lint/go.mod)
GOLANGCI_LINT    := $(TOOLS_BIN)/golangci-lint-$(GOLANGCI_VERSION)

$(GOLANGCI_LINT):
	@mkdir -p $(TOOLS_BIN)
	cd tools/lint && $(GO) build -trimpath -o $@.tmp github.com/golangci/golangci-lint/v2/cmd/golangci-lint
	mv $@.tmp $@

.PHONY: lint
lint: $(GOLANGCI_LINT) ## gofmt, go vet and golangci-lint (.golangci.yaml), and no Makefile variable used before it is set; CI runs it
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	@# make expands a rule's prerequisites as it reads them: a variable set
	@# further down is empty there, and the file it names is never built
	@# (only a cold machine notices). XDG_CACHE_HOME is the environment's.
	@undefined=$$($(MAKE) -n --no-print-directory --warn-undefined-variables test test-e2e test-cluster demo images bench-compare 2>&1 >/dev/null | grep 'undefined variable' | grep -v "'XDG_CACHE_HOME'"); \
		test -z "$$undefined" || { echo "$$undefined"; echo "Makefile: a variable is used before it is set"; exit 1; }
	$(GO) vet ./...
	$(GO) vet -tags "e2e warmbench" ./e2e/
	$(GO) vet -tags cluster ./internal/testenv/...
	cd tools/processnode && $(GO) vet ./...
	cd tools/openapi && $(GO) vet ./...
	cd tools/promql && $(GO) vet ./...
	$(GOLANGCI_LINT) run ./...

.PHONY: generate
generate: $(PROTOC_GEN_GO) $(PROTOC_GEN_GO_GRPC) ## Regenerate generated code (protobuf) with the pinned plugins
	TOOLS_BIN=$(TOOLS_BIN) $(GO) generate ./...

.PHONY: verify-generated
verify-generated: $(PROTOC_GEN_GO) $(PROTOC_GEN_GO_GRPC) ## Fail when committed generated code differs from a fresh generation
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	cp -r api/coordinatorv1/. "$$tmp/" && \
	(cd "$$tmp" && protoc --plugin=protoc-gen-go=$(PROTOC_GEN_GO) --plugin=protoc-gen-go-grpc=$(PROTOC_GEN_GO_GRPC) \
		--go_out=paths=source_relative:. --go-grpc_out=paths=source_relative:. coordinator.proto) && \
	for f in coordinator.pb.go coordinator_grpc.pb.go; do \
		diff -u api/coordinatorv1/$$f "$$tmp/$$f" || { echo "generated code is stale: run make generate and commit"; exit 1; }; \
	done

.PHONY: verify
verify: lint verify-generated ## Fail when generated code is stale or the tree is unformatted

.PHONY: demo
demo: deps $(VERSITYGW) build ## Run a real video through the real pipeline on this machine (mpegflow dev + hls-ladder)
	VERSITYGW=$(VERSITYGW) scripts/demo.sh

IMAGE_TAG ?= dev

# Without a Docker engine, scripts/images.sh builds with podman and buildah
# (as root) and provides the Dockerfiles' base images itself, from Debian
# packages and this machine's Go; every image is cached by content under
# $(CACHE)/images (docs/images.md). Cold: about 12 minutes on two busy
# cores; with nothing changed, under a second.
.PHONY: images
images: ## Build the mpegflow and mpegflow-encoder images: Docker where it runs, else podman with local base images, cached by content in $(CACHE)/images
	IMAGE_TAG=$(IMAGE_TAG) IMAGES_CACHE=$(CACHE)/images scripts/images.sh build

.PHONY: test-images
test-images: images ## Run the built images: mpegflow as 65532; FFmpeg and mpegflow encode as 10001 on a read-only root
	IMAGE_TAG=$(IMAGE_TAG) IMAGES_CACHE=$(CACHE)/images scripts/images.sh exec \
		$(GO) test -count=1 -tags images -run '^TestImage' -v ./deploy/

.PHONY: clean
clean: ## Remove build outputs (keeps cached tools)
	rm -f $(BIN)/mpegflow
