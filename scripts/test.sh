#!/usr/bin/env bash
# Run the whole test suite on this machine: install what is missing, start the services, run pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
bash scripts/services.sh
.venv/bin/python -m pytest "$@"
