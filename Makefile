# Pulse: see README.md.
GO ?= go
PKGS := ./...

.PHONY: run demo test test-short bench loadtest lint fmt web build image

# The version pulse version prints: the nearest tag, else the commit.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION) \
	-X main.commit=$(shell git rev-parse HEAD 2>/dev/null) \
	-X main.commitTime=$(shell git log -1 --format=%cI 2>/dev/null) \
	-X main.modified=$(shell git diff --quiet HEAD 2>/dev/null; [ $$? -eq 1 ] && echo true)

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o pulse ./cmd/pulse

# The container image, stamped like make build.
image:
	docker build --build-arg VERSION=$(VERSION) --build-arg LDFLAGS="$(LDFLAGS)" -t pulse .

# Run Pulse with the built-in city simulator; the dashboard is on http://127.0.0.1:8080
run demo:
	$(GO) run ./cmd/pulse run --demo

# The test command CI runs: unit, semantics, fuzz seeds, end-to-end (binary,
# kcat, headless Chromium), all with the race detector.
# PostgreSQL tests run against the server of the PG* variables or, without
# them, a throwaway cluster pg_virtualenv starts (scripts/with-postgres.sh).
test:
	scripts/with-postgres.sh $(GO) test -race -count=1 -timeout 20m $(PKGS)

test-short:
	$(GO) test -count=1 -short $(PKGS)

# Micro-benchmarks of the hot paths (results in docs/benchmarks.md).
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 2s ./internal/event ./internal/ingest ./internal/stream ./internal/loadgen ./internal/broker

# End-to-end load test: pulse run + pulse loadgen on this machine.
loadtest:
	bash scripts/loadtest.sh

lint:
	test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	$(GO) vet $(PKGS)
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 $(PKGS)

fmt:
	gofmt -w $$(git ls-files '*.go')

# Rebuild the dashboard's vendored chart library from npm (web/package.json).
web:
	bash web/build.sh
