#!/usr/bin/env bash
# Sets pydock up with its test tools, checks the code with ruff, and runs the whole test
# suite as root against the real kernel. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash dev/setup.sh --test
.venv/bin/ruff check .
# the pytest script, not "python -m pytest": that would put the checkout first on sys.path,
# where pydock/ holds only the top package and not the installed subpackages
exec .venv/bin/pytest tests "$@"
