#!/usr/bin/env bash
# Run every test of core and plugins on two pytest-xdist workers (CI's two cores; IRENE_TEST_WORKERS=0
# runs them in one process, as on a machine whose cores others are using), each test file on one worker
# so that its module fixtures are built once.  Fail when pytest collected nothing (its exit 5).
set -uo pipefail
cd "$(dirname "$0")/.."
if [ "${IRENE_TEST_WORKERS:-2}" != 0 ]; then
  # one BLAS/OpenMP thread per worker: two workers with a thread per core each wait on each other
  # (tests/: 482 s → 393 s on two cores)
  export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
fi
.venv/bin/python -m pytest -q -n "${IRENE_TEST_WORKERS:-2}" --dist loadfile "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "run-tests: pytest collected no tests" >&2
fi
exit "$rc"
