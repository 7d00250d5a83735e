#!/usr/bin/env bash
# The test suite as CI runs it: lint (ruff, format check, strict mypy), then pytest; arguments go to pytest.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/lint.sh
status=0
.venv/bin/python -m pytest "$@" || status=$?
if [ "$status" -eq 5 ]; then
  echo "test.sh: pytest collected no tests, which counts as a failure" >&2
  exit 1
fi
exit "$status"
