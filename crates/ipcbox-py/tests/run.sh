#!/usr/bin/env bash
# Builds the ipcbox Python package into a virtualenv under target/ (venv.sh) and runs its
# pytest suite; arguments go to pytest. `cargo test --workspace` runs this through
# tests/pytest.rs.
set -euo pipefail
tests="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="$("$tests/venv.sh")"
# The Rust peer of the interoperability tests, beside the extension's build.
root="$(cd "$tests/../../.." && pwd)"
peer_target="${CARGO_TARGET_DIR:-$root/target}/ipcbox-py/cargo"
cargo build --release --quiet -p ipcbox-py-peer --manifest-path "$root/Cargo.toml" \
    --target-dir "$peer_target" >&2
export IPCBOX_PY_PEER="$peer_target/release/ipcbox-py-peer"
cd "$tests/python"
exec "$python" -m pytest -p no:cacheprovider "$@"
