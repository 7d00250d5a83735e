#!/usr/bin/env bash
# Lint, formatting and type checks, configured in pyproject.toml.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/bootstrap.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy config contract producer workers dash_app store cli harness bench api
