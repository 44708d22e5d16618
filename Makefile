# `make demo` runs the course's three-peer chain and maps it (target/demo/map.svg); `make test` runs every check CI runs.

CARGO ?= cargo
PEER := target/release/peer

.PHONY: all build test lint unit demo probe fuzz soak bench map-bench clean

all: build

build:
	$(CARGO) build --release

# What CI runs (.ci/run): formatting, lints, then every test.
test: lint unit

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

unit:
	$(CARGO) test --all-targets

demo:
	$(CARGO) build --release --bin peer --bin cptp --example demo
	target/release/examples/demo $(PEER) 3

# One million cases of each decoder property, in release; each prints its count.
fuzz:
	PEER_FUZZ_CASES=1000000 $(CARGO) test --release --test fuzz -- --nocapture --test-threads 2

# 60 s of floods, churn and bad replies against one peer; prints what it saw.
soak:
	$(CARGO) build --release --bin peer --example soak
	target/release/examples/soak $(PEER) 60

# Peer against the floor server, side by side; table printed and written to target/bench/.
bench:
	$(CARGO) build --release --bin peer --example floor --example bench
	target/release/examples/bench $(PEER) target/release/examples/floor

# cptp map on 1,000 real peers (tables of 3) joined into one overlay on 127.0.0.1: the time.
map-bench:
	$(CARGO) build --release --bin peer --bin cptp --example map_bench
	target/release/examples/map_bench $(PEER) target/release/cptp 1000 64,32,16,64,32,16

clean:
	$(CARGO) clean
