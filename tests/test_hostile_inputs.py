"""Hostile inputs and failing writes at every entry point: one line naming the file, exit 1, nothing half-written.

Each case runs ``irene`` through the console script's entry point in process (``cli_main``); a full
disk is a file-size limit (``RLIMIT_FSIZE``, with SIGXFSZ ignored so a write fails with EFBIG instead
of killing), so those cases run the installed console script in a subprocess.
"""

from __future__ import annotations

import errno
import json
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from irene_core.cli.app import one_line
from irene_core.errors import IreneError
from irene_core.tree import jsonl
from irene_core.tree.paper_csv import REQUIRED_COLUMNS

IRENE = Path(sys.executable).with_name("irene")
GOOD = {
    "schema_version": 2, "model_name": "m", "batch_size": 1, "seq_len": 4,
    "root": {"id": ":M", "scope": "", "type": "M", "level": "model", "features": {"flops": 2.0},
             "ground_truth_energy": 1.0, "children": [
                 {"id": "l:Linear", "scope": "l", "type": "Linear", "level": "ml", "features": {"flops": 1.5},
                  "ground_truth_energy": 0.5, "children": []}]},
}
GOOD_LINE = json.dumps(GOOD).encode() + b"\n"

#: name → the bytes of a hostile dataset, and what its one-line error says (after ``FILE:LINE: ``).
DATASETS = {
    "non-utf8": (GOOD_LINE.replace(b'"m"', b'"\xff"'), "1: not UTF-8 (byte 0xff"),
    "deep": (b"[" * 600 + b"]" * 600 + b"\n", "1: JSON nested deeper than 512 levels"),
    "nan": (GOOD_LINE.replace(b"1.5", b"NaN"), "1: NaN is not allowed"),
    "inf": (GOOD_LINE.replace(b"1.5", b"1e999"), "1: 1e999 is out of range"),
    "non-numeric": (GOOD_LINE.replace(b"1.5", b'"fast"'), "1: root.children.0.features.flops: Input should be"),
    "truncated": (GOOD_LINE + GOOD_LINE[:40], "2: the last line is truncated (an interrupted write?)"),
    "tall": (json.dumps({**GOOD, "root": {**GOOD["root"], "children": [json.loads(
        '{"id":"x","scope":"x","type":"T","level":"module","features":{},"children":[' * 130
        + "]}" * 130)]}}).encode() + b"\n", "1: the tree is more than 128 levels deep"),
}


def _full_disk() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (100, 100))


def _irene_on_a_full_disk(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(IRENE), *map(str, args)], capture_output=True, text=True, timeout=120,
                          preexec_fn=_full_disk)


def _assert_one_line(proc: subprocess.CompletedProcess, expected: str) -> None:
    lines = [line for line in proc.stderr.strip().splitlines() if not line.startswith("warning: ")]
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ") and expected in lines[0], lines[0]
    assert "Traceback" not in proc.stdout + proc.stderr


def _csv_dir(root: Path, model_row: str) -> Path:
    """A CSV release of one (empty) level per file, the model level holding ``model_row``."""
    directory = root / "csv"
    directory.mkdir()
    header = ",".join(REQUIRED_COLUMNS)
    for level in ("model", "module", "ml1", "ml2"):
        rows = [header, model_row] if level == "model" else [header]
        (directory / f"{level}_level_features.csv").write_text("\n".join(rows) + "\n", encoding="latin-1")
    return directory


CSV_ROW = ",".join(["1", "4"] + ["1.0"] * 10 + ["ENERGY", "BertModel", "bert"])


# (command with DATA for the hostile dataset and OUT for an output path, the dataset)
READ_CASES = [
    (("evaluate", "DATA", "DATA"), "non-utf8"),
    (("evaluate", "DATA", "DATA"), "truncated"),
    (("evaluate", "DATA", "DATA"), "tall"),
    (("predict", "DATA", "-o", "OUT"), "nan"),
    (("evaluate", "DATA", "DATA"), "non-numeric"),
    (("export", "DATA", "-o", "OUT", "--format", "irene"), "inf"),
    (("export", "DATA", "-o", "OUT", "--format", "irene"), "deep"),
    (("export", "DATA", "-o", "OUT", "--format", "v2"), "truncated"),
    (("report", "DATA", "--html", "OUT"), "deep"),
    (("report", "DATA", "--html", "OUT"), "non-utf8"),
]


@pytest.mark.parametrize("command, dataset", READ_CASES, ids=[f"{c[0]}-{d}" for c, d in READ_CASES])
def test_a_bad_dataset_is_one_line_naming_file_and_line(cli_main, tmp_path, command, dataset):
    data, out = tmp_path / f"{dataset}.jsonl", tmp_path / "out"
    content, expected = DATASETS[dataset]
    data.write_bytes(content)
    proc = cli_main(*(str(data) if a == "DATA" else str(out) if a == "OUT" else a for a in command), check=False)
    _assert_one_line(proc, f"{data}:{expected}")
    assert sorted(p.name for p in tmp_path.iterdir()) == [data.name]


NOT_A_DIRECTORY = "a part of the path is not a directory"
# (command with GOOD for a good dataset and OUT for the output, what OUT is, a full disk?, the message)
WRITE_CASES = [
    (("export", "GOOD", "-o", "OUT", "--format", "v2"), "directory", False, "OUT: is a directory"),
    (("export", "GOOD", "-o", "OUT", "--format", "v2"), "under-a-file", False, f"OUT: {NOT_A_DIRECTORY}"),
    (("report", "GOOD", "--html", "OUT"), "under-a-file", False, f"OUT: {NOT_A_DIRECTORY}"),
    (("export", "GOOD", "-o", "OUT", "--format", "irene"), "old", True, "OUT: file too large"),
    (("train", "GOOD", "-o", "OUT"), "new", True, "file too large"),
    (("import-csv", "CSV", "-o", "OUT"), "old", True, "OUT: file too large"),
]


@pytest.mark.parametrize("command, target, full_disk, expected", WRITE_CASES,
                         ids=[f"{c[0]}-{t}-{'full' if f else 'path'}" for c, t, f, _ in WRITE_CASES])
def test_a_failed_write_is_one_line_and_leaves_the_old_file(cli_main, tmp_path, command, target, full_disk, expected):
    good = tmp_path / "good.jsonl"
    good.write_bytes(GOOD_LINE * 3)
    csv = _csv_dir(tmp_path, CSV_ROW.replace("ENERGY", "2.5"))
    out = tmp_path / "out" / "x" if target == "under-a-file" else tmp_path / "out"
    if target == "directory":
        out.mkdir()
    elif target in ("old", "under-a-file"):
        (tmp_path / "out").write_text("old\n")
    before = sorted(p.name for p in tmp_path.iterdir())
    subs = {"GOOD": good, "CSV": csv, "OUT": out}
    args = [str(subs.get(a, a)) for a in command]
    proc = _irene_on_a_full_disk(*args) if full_disk else cli_main(*args, check=False)
    _assert_one_line(proc, expected.replace("OUT", str(out)))
    new = [p for p in tmp_path.iterdir() if p.name not in before]  # no temp file, lock file or partial output
    assert all(p.is_dir() and not any(p.iterdir()) for p in new), new
    if target in ("old", "under-a-file"):
        assert (tmp_path / "out").read_text() == "old\n"


@pytest.mark.parametrize("row, expected", [
    (CSV_ROW.replace("ENERGY", "nan"), "model_level_features.csv:2: non-finite or negative value in energy_mean"),
    (CSV_ROW.replace("ENERGY", "lots"), "model_level_features.csv:2: not a number"),
    (CSV_ROW.replace("ENERGY", "1.0").replace("bert", "b\xe9rt"), "model_level_features.csv:2: not UTF-8"),
])
def test_a_bad_csv_release_is_one_line_naming_file_and_line(cli_main, tmp_path, row, expected):
    out = tmp_path / "out.jsonl"
    proc = cli_main("import-csv", str(_csv_dir(tmp_path, row)), "-o", str(out), check=False)
    _assert_one_line(proc, f"{tmp_path / 'csv' / expected}")
    assert not out.exists()


def test_a_line_longer_than_the_limit_is_refused_before_parsing(tmp_path, monkeypatch):
    monkeypatch.setattr(jsonl, "MAX_LINE_BYTES", len(GOOD_LINE) + 10)
    path = tmp_path / "d.jsonl"
    path.write_bytes(GOOD_LINE + b" " * 20 + GOOD_LINE + GOOD_LINE)
    with pytest.raises(IreneError, match=f"^{path}:2: line longer than {len(GOOD_LINE) + 10} bytes"):
        jsonl.load_records(path)
    path.write_bytes(GOOD_LINE + GOOD_LINE[:-1] + b" " * 11)  # the last line, at the limit without a newline
    assert len(jsonl.load_records(path)) == 2


@pytest.mark.parametrize("error, expected", [
    (PermissionError(errno.EACCES, "Permission denied", "/ro/out.jsonl"), "/ro/out.jsonl: permission denied"),
    (OSError(errno.EROFS, "Read-only file system", "/mnt/x"), "/mnt/x: read-only file system"),
    (OSError(errno.ENOSPC, "No space left on device"), "no space left on the device"),
    (UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"), "input is not UTF-8 (invalid start byte"),
    (RecursionError("maximum recursion depth exceeded"), "input nested too deeply"),
    (ValueError("a\nb"), "unexpected ValueError: a b (--debug shows the traceback"),
])
def test_the_error_boundary_makes_one_line_of_anything(error, expected):
    assert one_line(error).startswith(expected)
