#!/usr/bin/env bash
# The test suite as CI runs it: lint, then pytest; arguments go to pytest.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/bootstrap.sh
.venv/bin/ruff check .
status=0
.venv/bin/python -m pytest "$@" || status=$?
if [ "$status" -eq 5 ]; then
  echo "test.sh: pytest collected no tests, which counts as a failure" >&2
  exit 1
fi
exit "$status"
