"""Worker processes for the predictor's independent fits: cross-validation's folds
(``irene crossvalidate --jobs``).

Each job is a module-level function and its arguments, pickled to a worker started afresh (never
forked from a process whose threads may hold locks) with one BLAS thread, as the workers share the
cores between them; results come back in the jobs' order, so a run with workers computes what a run
without computes, job for job.  A job pays for pickling its arguments: a table of 155 of device_1's
trees takes 0.16 s to pickle and 0.6 s to unpickle, worth it for a cross-validation fold (a whole
training) and not for training's 19 interval folds, which were measured slower in workers on 2
cores (13.8 → 18.3 s for device_1, all features).
"""

from __future__ import annotations

import contextlib
import multiprocessing
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from typing import Any, TypeVar

from threadpoolctl import threadpool_limits

__all__ = ["fold_workers", "in_order"]

Result = TypeVar("Result")


def _one_thread() -> None:
    threadpool_limits(1)


@contextlib.contextmanager
def fold_workers(jobs: int) -> Iterator[ProcessPoolExecutor]:
    """``jobs`` worker processes, each with one BLAS thread; on leaving, the jobs not yet started are
    cancelled (after an error, only the running ones are waited for).  As with any pool of spawned
    processes, a script that starts one runs it under ``if __name__ == "__main__":`` (each worker
    imports the script)."""
    workers = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"), initializer=_one_thread)
    try:
        yield workers
    finally:
        workers.shutdown(cancel_futures=True)


def in_order(
    function: Callable[..., Result], jobs: Iterable[tuple[Any, ...]], executor: Executor | None = None
) -> Iterator[Result]:
    """``function(*job)`` for each of ``jobs``, in their order: one after the other as they are asked
    for, or, with an ``executor``, every job submitted at once."""
    if executor is None:
        return (function(*job) for job in jobs)
    futures = [executor.submit(function, *job) for job in jobs]
    return (future.result() for future in futures)
