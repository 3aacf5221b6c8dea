"""Crash-safe datasets: whole-line appends, truncated last lines found and repaired, the dataset lock."""

from __future__ import annotations

import json
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from irene_core.errors import IreneError
from irene_core.tree.atomic import DatasetLock, lock_path
from irene_core.tree.jsonl import (
    TRUNCATED_HINT,
    append_record,
    load_records,
    record_to_line,
    repair_tail,
    write_records,
)
from irene_core.tree.schema import Node, TreeRecord


def _record(batch: int) -> TreeRecord:
    leaf = Node(id="l:Linear", scope="l", type="Linear", level="ml", features={"flops": 1.5}, ground_truth_energy=0.5)
    root = Node(id=":M", scope="", type="M", level="model", features={}, ground_truth_energy=1.0, children=[leaf])
    return TreeRecord(model_name="m", batch_size=batch, seq_len=4, root=root)


def _resume(path, grid) -> None:
    """What ``irene run --resume`` does with the file: repair its tail, then append the missing trees."""
    repair_tail(path)
    done = {r.batch_size for r in load_records(path)}
    for batch in grid:
        if batch not in done:
            append_record(path, _record(batch))


@pytest.fixture
def fast_dir(tmp_path):
    """A directory in memory where one exists (fsync costs nothing there), else ``tmp_path``."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path
        return
    with tempfile.TemporaryDirectory(dir=shm) as name:
        yield Path(name)


def test_truncated_at_every_byte_then_resume_loses_and_duplicates_nothing(fast_dir):
    grid = [1, 2, 3]
    head = "".join(record_to_line(_record(b)) + "\n" for b in grid[:2]).encode()
    last = (record_to_line(_record(3)) + "\n").encode()
    path = fast_dir / "d.jsonl"
    for cut in range(len(last) + 1):
        path.write_bytes(head + last[:cut])
        truncated = 0 < cut < len(last) - 1  # the line without only its newline is whole
        if truncated:
            with pytest.raises(IreneError, match=f"^{re.escape(f'{path}:3: {TRUNCATED_HINT}')}$"):
                load_records(path)
        _resume(path, grid)
        assert [r.batch_size for r in load_records(path)] == grid, cut
        assert path.read_bytes().startswith(head)


def test_repair_tail_cuts_only_a_truncated_line(tmp_path):
    path = tmp_path / "d.jsonl"
    write_records(path, [_record(1)])
    whole = path.read_bytes()
    assert repair_tail(path) == 0 and repair_tail(tmp_path / "none.jsonl") == 0
    path.write_bytes(whole + b'{"schema_vers')
    assert repair_tail(path) == len(b'{"schema_vers')
    assert path.read_bytes() == whole


def test_append_refuses_a_truncated_tail_and_completes_a_missing_newline(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(record_to_line(_record(1)))  # whole, but without its newline
    append_record(path, _record(2))
    assert [r.batch_size for r in load_records(path)] == [1, 2]
    before = path.read_bytes() + b'{"trunc'
    path.write_bytes(before)
    with pytest.raises(IreneError, match="the last line is truncated"):
        append_record(path, _record(3))
    assert path.read_bytes() == before


def _limited(size: int):
    def limit() -> None:  # a full disk: writes past `size` bytes fail with EFBIG
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))

    return limit


def test_an_append_that_does_not_fit_leaves_the_file_as_it_was(tmp_path):
    path = tmp_path / "d.jsonl"
    write_records(path, [_record(1)])
    before = path.read_bytes()
    code = textwrap.dedent(f"""
        from irene_core.errors import IreneError
        from irene_core.tree.jsonl import append_record
        from tests.test_crash_safe_datasets import _record
        try:
            append_record({str(path)!r}, _record(2))
        except IreneError as exc:
            print(exc)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=os.getcwd(),
                          preexec_fn=_limited(len(before) + 40), timeout=60)
    assert proc.stdout.strip() == f"{path}: file too large (the disk is full or a file-size limit was reached)"
    assert path.read_bytes() == before
    assert [r.batch_size for r in load_records(path)] == [1]


def test_a_record_a_reader_would_refuse_is_never_written(tmp_path):
    bad = _record(1)
    bad.root.ground_truth_energy = -5.0  # set after validation, as a buggy meter path might
    path = tmp_path / "d.jsonl"
    for write in (lambda: write_records(path, [_record(2), bad]), lambda: append_record(path, bad)):
        with pytest.raises(IreneError, match=r"m b1 s4: cannot be written: .*ground_truth_energy"):
            write()
        assert not path.exists()


_HOLD = textwrap.dedent("""
    import sys, time
    from irene_core.tree.atomic import DatasetLock
    with DatasetLock(sys.argv[1]):
        print("held", flush=True)
        time.sleep(60)
""")


@pytest.fixture
def held(tmp_path):
    """A dataset whose lock another process holds."""
    path = tmp_path / "d.jsonl"
    holder = subprocess.Popen([sys.executable, "-c", _HOLD, str(path)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline() == "held\n"
    yield path, holder.pid
    holder.kill()
    holder.wait()


def test_a_second_writer_is_refused_naming_the_holder(held):
    path, pid = held
    message = f"{path}: another irene process is writing it (pid {pid}); wait for it or use another -o"
    for write in (lambda: write_records(path, [_record(1)]), lambda: append_record(path, _record(1)),
                  lambda: repair_tail(path)):
        path.write_text("")
        with pytest.raises(IreneError) as err:
            write()
        assert str(err.value) == message
        assert path.read_text() == ""


def test_the_lock_is_reentrant_and_leaves_no_file(tmp_path):
    path = tmp_path / "d.jsonl"
    with DatasetLock(path):
        assert lock_path(path).read_text() == f"{os.getpid()}\n"
        write_records(path, [_record(1)])
        append_record(path, _record(2))
        assert lock_path(path).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.jsonl"]
    assert [json.loads(line)["batch_size"] for line in path.read_text().splitlines()] == [1, 2]
