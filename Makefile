# Pulse: see README.md.
GO ?= go
PKGS := ./...

.PHONY: run demo test test-short bench loadtest lint fmt web build

build:
	$(GO) build -o pulse ./cmd/pulse

# Run Pulse with the built-in city simulator; the dashboard is on http://127.0.0.1:8080
run demo:
	$(GO) run ./cmd/pulse run --demo

# The test command CI runs: unit, semantics, fuzz seeds, end-to-end (binary,
# kcat, headless Chromium), all with the race detector.
test:
	$(GO) test -race -count=1 -timeout 20m $(PKGS)

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
