#!/usr/bin/env bash
# Builds the ipcbox Python package into a virtualenv under target/ and runs its pytest suite
# (arguments go to pytest). `cargo test --workspace` runs this through tests/pytest.rs.
#
# The virtualenv (with the pinned maturin and pytest of requirements.txt) is made once and
# remade when requirements.txt changes; the extension is rebuilt by cargo's own freshness
# checks, in a target directory of its own, since the `cargo test` that runs this script holds
# the lock on the workspace's.
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

if [ ! -x "$venv/bin/python" ] || ! cmp -s "$reqs" "$venv/requirements.txt"; then
    rm -rf "$venv"
    "${IPCBOX_PYTHON:-python3}" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$reqs"
    cp "$reqs" "$venv/requirements.txt"
fi

VIRTUAL_ENV="$venv" CARGO_TARGET_DIR="$work/cargo" \
    "$venv/bin/maturin" develop --release --quiet --manifest-path "$crate/Cargo.toml"

cd "$tests/python"
exec "$venv/bin/python" -m pytest -p no:cacheprovider "$@"
