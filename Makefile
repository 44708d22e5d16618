# `make demo` runs the course's three-peer chain and maps it (target/demo/map.svg);
# `make demo-hosts` runs it on three namespace hosts (as root); `make test` runs every
# check CI runs. The workspace: the peer is the root package; cptp/ is the toolbox
# (probe, check, map) with the harness every test runs peers through; tools/ (package
# peer-tools) holds the bench, soak, floor and map-bench programs.

CARGO ?= cargo
PEER := target/release/peer

.PHONY: all build test lint unit examples demo demo-hosts fuzz soak bench map-bench mutants clean

all: build

build:
	$(CARGO) build --release

# What CI runs (.ci/run): formatting, lints, every test over the whole workspace, then the
# two teaching examples, which must run to the end.
test: lint unit examples

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

unit:
	$(CARGO) test --workspace --all-targets

# examples/welcome.rs (the wire format by hand) and examples/two_nodes.rs (two peers in one
# process): each runs for a second or two and exits 0.
examples:
	$(CARGO) run --quiet --example welcome
	$(CARGO) run --quiet --example two_nodes

# examples/demo.rs starts the three peers through peer-tools' harness.
demo:
	$(CARGO) build --release --bin peer --example demo
	$(CARGO) build --release -p cptp
	target/release/examples/demo $(PEER) 3

# The same chain on three machines made of network namespaces (198.18.0.1-3); needs root.
demo-hosts:
	$(CARGO) build --release --bin peer --example demo_hosts
	target/release/examples/demo_hosts $(PEER) 3

# One million cases of each decoder property, in release; each prints its count.
fuzz:
	PEER_FUZZ_CASES=1000000 $(CARGO) test --release --test fuzz -- --nocapture --test-threads 2

# 60 s of floods, churn and bad replies against one peer (tools/src/bin/soak.rs).
soak:
	$(CARGO) build --release --bin peer
	$(CARGO) build --release -p peer-tools --bin soak
	target/release/soak $(PEER) 60

# Peer against the floor server, side by side (tools/src/bin/bench.rs and floor.rs);
# table printed and written to target/bench/.
bench:
	$(CARGO) build --release --bin peer
	$(CARGO) build --release -p peer-tools --bin floor --bin bench
	target/release/bench $(PEER) target/release/floor

# Mutation testing of the core modules listed in .cargo/mutants.toml (about an hour on
# 2 cores). Runs the test binaries that exercise those modules; installs cargo-mutants
# first if it is missing. Not part of `make test`.
mutants:
	command -v cargo-mutants >/dev/null || $(CARGO) install --locked cargo-mutants
	$(CARGO) mutants -p peer -- --lib --test library --test fuzz --test cli --test chain --test server --test faults

# cptp map on 1,000 real peers (tables of 3) joined into one overlay on 127.0.0.1: the time.
map-bench:
	$(CARGO) build --release --bin peer
	$(CARGO) build --release -p cptp
	$(CARGO) build --release -p peer-tools --bin map_bench
	target/release/map_bench $(PEER) target/release/cptp 1000 64,32,16,64,32,16

clean:
	$(CARGO) clean
