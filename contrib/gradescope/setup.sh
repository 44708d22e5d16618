#!/usr/bin/env bash
# Gradescope runs this once to build the autograder image (Ubuntu): it installs Rust
# with rustup, builds `cptp` from this repository (uploaded with the autograder zip as
# /autograder/source) and installs Node.js for submissions written in JavaScript.
#
# Zip for Gradescope: the workspace (Cargo.toml, Cargo.lock, src/, cptp/, tools/, docs/;
# cargo reads the whole workspace to build one package of it) with setup.sh,
# run_autograder and points.txt at the top of the zip, e.g.
#   cp contrib/gradescope/{setup.sh,run_autograder,points.txt} . && zip -r autograder.zip \
#      setup.sh run_autograder points.txt Cargo.toml Cargo.lock src cptp tools docs
set -euo pipefail

SOURCE="${CPTP_SOURCE:-/autograder/source}"

apt-get update
# bubblewrap is the sandbox every submission runs in (cptp check --sandbox auto): where the
# container lets it make namespaces; where not, the report's header says so.
apt-get install -y --no-install-recommends curl ca-certificates build-essential nodejs bubblewrap

if ! command -v cargo >/dev/null 2>&1; then
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
fi
# shellcheck disable=SC1091
source "$HOME/.cargo/env"

cargo install --locked --path "$SOURCE/cptp" --bin cptp --root /usr/local
cptp check --list >/dev/null
