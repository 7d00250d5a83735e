#!/usr/bin/env bash
# Create .venv and install ecomrisk with its dev tools; reinstall only when pyproject.toml changed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

VENV=.venv
STAMP="$VENV/.ecomrisk-pyproject.sha256"

find_python() {
  local candidate
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
      echo "$candidate"
      return 0
    fi
  done
  echo "bootstrap: Python 3.11 or newer is needed (python3.11 or python3 on PATH)" >&2
  return 1
}

if [ ! -x "$VENV/bin/python" ]; then
  python=$(find_python)
  echo "bootstrap: creating $VENV with $(command -v "$python")"
  "$python" -m venv "$VENV" || {
    echo "bootstrap: 'python -m venv' failed; on Debian/Ubuntu install python3-venv" >&2
    exit 1
  }
fi

wanted=$("$VENV/bin/python" -c \
  'import hashlib; print(hashlib.sha256(open("pyproject.toml", "rb").read()).hexdigest())')
if [ -x "$VENV/bin/ecomrisk" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$wanted" ]; then
  exit 0
fi

echo "bootstrap: installing ecomrisk and its dev tools into $VENV"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet -e '.[dev]'
echo "$wanted" >"$STAMP"
echo "bootstrap: done"
