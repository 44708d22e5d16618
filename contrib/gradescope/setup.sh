#!/usr/bin/env bash
# Gradescope runs this once to build the autograder image (Ubuntu): it installs Rust
# with rustup, builds `cptp` from this repository (uploaded with the autograder zip as
# /autograder/source) and installs Node.js for submissions written in JavaScript.
#
# Zip for Gradescope: the repository (or at least Cargo.toml, Cargo.lock, src/, docs/)
# with setup.sh and run_autograder at the top of the zip, e.g.
#   cp contrib/gradescope/{setup.sh,run_autograder} . && zip -r autograder.zip \
#      setup.sh run_autograder Cargo.toml Cargo.lock src docs
set -euo pipefail

SOURCE="${CPTP_SOURCE:-/autograder/source}"

apt-get update
apt-get install -y --no-install-recommends curl ca-certificates build-essential nodejs

if ! command -v cargo >/dev/null 2>&1; then
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
fi
# shellcheck disable=SC1091
source "$HOME/.cargo/env"

cargo install --locked --path "$SOURCE" --bin cptp --root /usr/local
cptp check --list >/dev/null
