#!/usr/bin/env bash
# Bootstrap, then run the whole platform in the foreground: `scripts/up.sh --no-producer`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/bootstrap.sh
exec .venv/bin/ecomrisk up "$@"
