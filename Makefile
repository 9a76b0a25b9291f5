# MpegFlow — `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

GO        ?= go
BIN       := bin
TOOLS_BIN := $(BIN)/tools
VERSITYGW_VERSION := $(shell awk '$$1=="github.com/versity/versitygw"{print $$2}' tools/go.mod)
VERSITYGW := $(TOOLS_BIN)/versitygw-$(VERSITYGW_VERSION)

.PHONY: help
help: ## List the targets
	@awk 'BEGIN{FS=":.*## "} /^[a-zA-Z0-9_.-]+:.*## /{printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: deps
deps: ## Install system packages the tests and demo need (postgresql, redis, ffmpeg)
	@scripts/deps.sh

.PHONY: build
build: ## Build the mpegflow binary into bin/
	$(GO) build -o $(BIN)/mpegflow ./cmd/mpegflow

# Tool binaries are built from the tools module and cached by version.
$(VERSITYGW): tools/go.mod tools/go.sum
	@mkdir -p $(TOOLS_BIN)
	cd tools && GOBIN=$(CURDIR)/$(TOOLS_BIN)/.build $(GO) install github.com/versity/versitygw/cmd/versitygw
	mv $(TOOLS_BIN)/.build/versitygw $@
	ln -sf versitygw-$(VERSITYGW_VERSION) $(TOOLS_BIN)/versitygw

.PHONY: tools
tools: $(VERSITYGW) ## Build the test tools (versitygw S3 server) into bin/tools, cached by version

.PHONY: test
test: deps tools ## Run every test with -race against private Postgres, Redis and S3
	VERSITYGW=$(CURDIR)/$(VERSITYGW) scripts/with-services.sh $(GO) test -race -count=1 ./...

.PHONY: lint
lint: ## gofmt and go vet
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet ./...

.PHONY: generate
generate: ## Regenerate generated code (none yet: protobuf arrives with the coordinator)
	$(GO) generate ./...

.PHONY: verify
verify: lint generate ## Fail when generated code is stale or the tree is unformatted
	@git diff --exit-code --stat || { echo "generated code is stale: run make generate and commit"; exit 1; }

.PHONY: demo
demo: ## Run a real video through the real pipeline on this machine (needs `mpegflow dev`, not built yet)
	@echo "make demo: not available yet. It runs 'mpegflow dev' (the single-machine stack), which is"
	@echo "tracked in the issue '\`mpegflow dev\` and \`make demo\`'. Today you can run the API with"
	@echo "'mpegflow serve' against your own Postgres, Redis and S3 (see README)."
	@exit 1

.PHONY: images
images: ## Build container images (needs a Docker engine; Dockerfiles arrive with the chart issue)
	@echo "make images: no Dockerfiles yet (tracked in the Helm chart issue)"; exit 1

.PHONY: clean
clean: ## Remove build outputs (keeps cached tools)
	rm -f $(BIN)/mpegflow
