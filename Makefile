# berth: build, test and release. `make help` lists the targets.
# Settable: VERSION, TEST_TIMEOUT, FUZZTIME, SERVE_FLAGS (extra flags for `make run`),
# DIST and PLATFORMS (where and for what `make release` builds).

VERSION      ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
TEST_TIMEOUT ?= 30m
FUZZTIME     ?= 30s
SERVE_FLAGS  ?=
DIST         ?= dist
PLATFORMS    ?= linux/amd64 linux/arm64 linux/arm/v7

# Static, reproducible binaries: no cgo, no local paths, no symbol tables.
# -buildvcs=auto overrides a GOFLAGS=-buildvcs=false so `berth version` can
# report the commit (debug.ReadBuildInfo, vcs.revision).
GOBUILD := CGO_ENABLED=0 go build -trimpath -buildvcs=auto -ldflags "-s -w -X main.version=$(VERSION)"

.DEFAULT_GOAL := build
.PHONY: help build run test test-race lint bench bench-compare fuzz release fixtures clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

build: ## build bin/berth, static
	$(GOBUILD) -o bin/berth .

run: build ## build, then serve on :5000 with data in ./data (more flags: SERVE_FLAGS=...)
	bin/berth serve --data ./data $(SERVE_FLAGS)

test: ## vet, then every test: unit, integration, conformance, fuzz seeds
	bash .ci/deps
	go vet ./...
	go test -timeout $(TEST_TIMEOUT) ./...

# The race detector needs cgo, hence a C compiler.
test-race: ## every test under the race detector (needs a C compiler)
	@command -v cc >/dev/null || { echo "test-race needs a C compiler: apt-get install gcc" >&2; exit 1; }
	bash .ci/deps
	CGO_ENABLED=1 go test -race -timeout $(TEST_TIMEOUT) ./...

lint: ## gofmt, go vet, and staticcheck when installed
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	go vet ./...
	@if command -v staticcheck >/dev/null; then staticcheck ./...; else echo "staticcheck not installed, skipped"; fi

bench: ## every benchmark, with allocations
	go test -run '^$$' -bench . -benchmem ./...

# The same workloads against berth and distribution's registry (built by
# .ci/deps), side by side in one run; BERTH_COMPARE_LARGE_MIB sets the
# large blob's size (default 1024). docs/performance.md keeps the table.
bench-compare: ## berth against distribution's registry v3.1.2: each figure, the ratio, RSS (a few minutes)
	bash .ci/deps
	CI=true BERTH_BENCH_COMPARE=1 go test ./integration -run '^TestBenchCompare$$' -count=1 -v -timeout 60m

# Go fuzzes one target per run, so each is run in turn for FUZZTIME.
fuzz: ## each fuzz target for FUZZTIME (default 30s), one at a time
	@for pkg in $$(go list ./...); do \
		list=$$(go test -list '^Fuzz' $$pkg) || exit 1; \
		for target in $$(echo "$$list" | grep '^Fuzz'); do \
			echo "== $$pkg $$target"; \
			go test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
		done; \
	done

# Each platform os/arch[/variant] becomes DIST/berth-os-arch[variant]:
# linux/arm/v7 is GOARCH=arm GOARM=7 in berth-linux-armv7.
release: ## static linux/amd64, arm64 and arm/v7 binaries in dist/, with SHA256SUMS and sizes
	rm -rf $(DIST) && mkdir -p $(DIST)
	@set -e; for p in $(PLATFORMS); do \
		os=$${p%%/*}; rest=$${p#*/}; arch=$${rest%%/*}; variant=$${rest#$$arch}; variant=$${variant#/}; \
		echo "building $(DIST)/berth-$$os-$$arch$$variant ($$p, version $(VERSION))"; \
		GOOS=$$os GOARCH=$$arch GOARM=$${variant#v} $(GOBUILD) -o $(DIST)/berth-$$os-$$arch$$variant .; \
	done
	cd $(DIST) && sha256sum berth-* > SHA256SUMS
	@cd $(DIST) && ls -l berth-* | awk '{ printf "%-22s %6.1f MiB\n", $$9, $$5 / 1048576 }'

fixtures: ## regenerate the OCI layouts in fixtures/testdata
	go generate ./fixtures

# ./data is left alone: it is the registry's state, not a build product.
clean: ## remove bin/ and dist/
	rm -rf bin dist
