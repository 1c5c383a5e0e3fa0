#!/usr/bin/env bash
# Sets pydock up with its test tools, checks the code with ruff, and runs the whole test
# suite as root against the real kernel. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash dev/setup.sh --test
.venv/bin/ruff check .
exec .venv/bin/python -m pytest tests "$@"
