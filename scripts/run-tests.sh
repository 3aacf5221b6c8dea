#!/usr/bin/env bash
# Run every test of core and plugins; fail when pytest collected nothing (its exit 5).
set -uo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python -m pytest -q "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "run-tests: pytest collected no tests" >&2
fi
exit "$rc"
