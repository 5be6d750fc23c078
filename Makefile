# Quire: `make run` builds everything and serves the editor; `make test` installs
# what the tests need and runs every test.

GO      ?= go
LISTEN  ?= 127.0.0.1:8080
DB      ?= ./data/quire.db
BIN     := bin/quire
GOFILES := $(shell find . -name '*.go' -not -path './node_modules/*' 2>/dev/null)
# Each fuzz target's budget in `make fuzz`: a count of executions, not a
# duration. Go 1.26's coordinator can report a bare "context deadline
# exceeded" failure when a duration runs out while a worker is mid-input
# (golang/go#75804, fixed in Go 1.27); a count has no deadline to race.
# 300,000 executions take 2.5-18 s per target here.
FUZZTIME ?= 300000x
# How the quire binary is linked (scripts/go-ldflags, shared with the e2e
# tests and scripts/bench-server.sh): Go's default GODEBUG gets
# schedtrace=2147483647 (a trace line every 24.8 days). Its use is a side
# effect: with it set, the runtime's sysmon thread never enters its deep
# sleep, so it stays at its 10 ms tick instead of being woken by the first
# system call or cgo call (a SQLite commit) after every idle moment and
# then polling every 20 us until the processes are idle again. A server
# that wakes for each keystroke paid that on every one: 28% of its CPU with
# 1,000 rooms and 11% in the hot room (../shared/bench W2 and W1). The
# environment's GODEBUG=schedtrace=0 restores Go's behaviour.
GOLDFLAGS := $(shell cat scripts/go-ldflags)

.PHONY: all build run test test-go vet fmt-check deps deps-npm deps-chromium \
        editor editor-check fuzz oracle bench bench-compare bench-server e2e clean

all: build

build: $(BIN)

$(BIN): $(GOFILES) go.mod go.sum scripts/go-ldflags $(shell find editor/dist -type f 2>/dev/null)
	@mkdir -p bin
	$(GO) build -ldflags '$(GOLDFLAGS)' -o $(BIN) .

run: build
	@mkdir -p $(dir $(DB))
	./$(BIN) serve --listen $(LISTEN) --db $(DB)

# --- dependencies the tests need -------------------------------------------

deps: deps-npm deps-chromium

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

deps-npm: node_modules/.installed

# Debian's chromium, for the Playwright editor tests.
deps-chromium:
	@if [ ! -x /usr/bin/chromium ]; then \
		echo "installing Debian's chromium"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; \
	fi

# --- checks ----------------------------------------------------------------

fmt-check:
	@out=$$(gofmt -l $(GOFILES)); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

test: deps fmt-check vet editor-check test-go oracle fuzz
	@echo "make test: all passed"

test-go:
	$(GO) test -race -count=1 -timeout 30m ./...
	# The server again with a reader goroutine per connection (--read-loops -1).
	QUIRE_TEST_READ_LOOPS=-1 $(GO) test -race -count=1 -timeout 10m ./server/

# Fresh random seeds against real Yjs (the committed seeds run in test-go).
oracle: deps-npm
	bash crdt/oracle/live.sh

# A short run of every fuzz target.
fuzz:
	@log=$$(mktemp); trap 'rm -f "$$log"' EXIT; \
	for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
			echo "fuzz $$pkg $$f"; \
			$(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg >"$$log" 2>&1 || { cat "$$log"; exit 1; }; \
		done; \
	done

# --- editor bundle -----------------------------------------------------------

editor: deps-npm
	node editor/build.mjs

# Fails when the committed bundle is not what the sources build.
editor-check: deps-npm
	@if [ -f editor/build.mjs ]; then node editor/build.mjs --check; fi

# --- benchmarks ------------------------------------------------------------

bench:
	$(GO) test -run '^$$' -bench 'Replay|Load' -benchmem ./crdt

bench-compare: deps-npm
	bash scripts/bench-compare.sh

bench-server: build
	bash scripts/bench-server.sh

clean:
	rm -rf bin
