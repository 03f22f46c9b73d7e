#!/usr/bin/env bash
# Makes (once) a virtualenv under target/ with the pinned maturin and pytest of
# requirements.txt, builds the ipcbox Python package into it (cargo's freshness checks decide
# what is rebuilt) and prints the path of its python on stdout; everything else goes to stderr.
# Used by run.sh (the pytest suite) and by ipcbox-bench (the Python rows).
#
# The extension is built in a cargo target directory of its own: a `cargo test` running this
# holds the lock on the workspace's.
set -euo pipefail
tests="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
crate="$(dirname "$tests")"
root="$(cd "$crate/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
work="$target/ipcbox-py"
venv="$work/venv"
reqs="$tests/requirements.txt"
mkdir -p "$work"

exec 9>"$work/lock"
flock 9

{
    if [ ! -x "$venv/bin/python" ] || ! cmp -s "$reqs" "$venv/requirements.txt"; then
        rm -rf "$venv"
        "${IPCBOX_PYTHON:-python3}" -m venv "$venv"
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$reqs"
        cp "$reqs" "$venv/requirements.txt"
    fi
    VIRTUAL_ENV="$venv" CARGO_TARGET_DIR="$work/cargo" \
        "$venv/bin/maturin" develop --release --quiet --manifest-path "$crate/Cargo.toml"
} >&2

echo "$venv/bin/python"
