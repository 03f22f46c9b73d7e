#!/usr/bin/env bash
# Builds the ipcbox Python package into a virtualenv under target/ (venv.sh) and runs its
# pytest suite; arguments go to pytest. `cargo test --workspace` runs this through
# tests/pytest.rs.
set -euo pipefail
tests="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="$("$tests/venv.sh")"
cd "$tests/python"
exec "$python" -m pytest -p no:cacheprovider "$@"
