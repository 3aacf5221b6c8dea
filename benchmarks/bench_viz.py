"""IrEne-viz: cold and cached `/api/energy` on loopback, and a 48-layer model's first view.

Starts `irene serve` in its own process on a free loopback port with an empty cache, then measures:
- the cold first answer for bert-base-uncased 8×128 (the page's first view): start → URL (`irene serve`
  prints its URL once the server answers and that view is ready: it imports the tracer and the predictor,
  traces and predicts while starting), URL → first answer (target ≤ 3 s) and start → first answer;
- a cold answer for another input size (trace on the meta device + predict);
- cached answers under load: 50 concurrent keep-alive clients asking with ``Accept-Encoding: gzip`` as
  browsers do (the load generator runs in this process, on the same 2 cores as the server) —
  requests/s and latency percentiles (target p99 ≤ 50 ms);
- the first view of a 48-layer model (a local config.json) in Debian's chromium at 1280×800: tree
  rows on screen (target ≤ 40, every top-level module among them).
The server is stopped at the end (and killed after a time limit).
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from results import Section, update

CLIENTS = 50
REQUESTS_PER_CLIENT = 60
MODEL = "bert-base-uncased"
START_TIMEOUT = 120.0
CHROMIUM = Path("/usr/bin/chromium")
DEEP = "deep-48"
DEEP_CONFIG = {"model_type": "bert", "architectures": ["BertModel"], "hidden_size": 64, "num_hidden_layers": 48,
               "num_attention_heads": 2, "intermediate_size": 256, "vocab_size": 1000,
               "max_position_embeddings": 128, "type_vocab_size": 2}


async def _get(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, target: str) -> int:
    """One keep-alive GET accepting gzip; returns the body size on the wire (raises on a non-200 answer)."""
    writer.write(f"GET {target} HTTP/1.1\r\nHost: {host}\r\nAccept: application/json\r\n"
                 "Accept-Encoding: gzip\r\n\r\n".encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = next(
        int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")
    )
    body = await reader.readexactly(length)
    if status != 200:
        raise RuntimeError(f"GET {target}: HTTP {status}: {body[:200]!r}")
    return length


async def _timed_get(url: str, target: str, timeout: float = 600.0) -> tuple[float, int]:
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        t0 = time.perf_counter()
        size = await asyncio.wait_for(_get(reader, writer, parts.netloc, target), timeout)
        return time.perf_counter() - t0, size
    finally:
        writer.close()


async def _load(url: str, target: str) -> tuple[list[float], float]:
    parts = urlsplit(url)

    async def client() -> list[float]:
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        out = []
        try:
            for _ in range(REQUESTS_PER_CLIENT):
                t0 = time.perf_counter()
                await _get(reader, writer, parts.netloc, target)
                out.append(time.perf_counter() - t0)
        finally:
            writer.close()
        return out

    t0 = time.perf_counter()
    results = await asyncio.gather(*(client() for _ in range(CLIENTS)))
    return [x for r in results for x in r], time.perf_counter() - t0


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def _start(tmp: Path) -> tuple[subprocess.Popen[str], str, float, float]:
    """The server's process, its URL, and the moments (perf_counter) it was started and printed its URL."""
    irene = Path(sys.executable).with_name("irene")
    cmd = [str(irene), "serve", "--host", "127.0.0.1", "--port", "0", "--data-dir", str(tmp),
           "--cache", str(tmp / "cache.sqlite")]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    while proc.stdout and time.perf_counter() - started < START_TIMEOUT:
        lines.append(proc.stdout.readline())  # the progress line, then the URL
        if lines[-1].startswith("IrEne-viz at http://") or not lines[-1]:
            break
    if not lines or not lines[-1].startswith("IrEne-viz at http://"):
        proc.kill()
        raise RuntimeError(f"irene serve did not start: {' | '.join(line.strip() for line in lines)}")
    return proc, lines[-1].split()[2], started, time.perf_counter()


def _first_view(url: str) -> tuple[int, bool, float] | None:
    """(tree rows on screen, every top-level module among them, seconds to the first view) of the 48-layer
    model at 1280×800, or None without chromium."""
    if not CHROMIUM.is_file():
        return None
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        t0 = time.perf_counter()
        page.goto(f"{url}#m={DEEP}&b=1&s=16")
        page.wait_for_selector("#pane-0[aria-busy=false] .tree [role=treeitem]", timeout=300_000)
        seconds = time.perf_counter() - t0
        rows = page.evaluate("[...document.querySelectorAll('#pane-0 .tree [role=treeitem]')]"
                             ".filter((li) => li.offsetParent !== null).map((li) => li.dataset.id)")
        top = page.evaluate("[...document.querySelectorAll('#pane-0 .tree > li > ul > li')].map((li) => li.dataset.id)")
        browser.close()
    return len(rows), set(top) <= set(rows), seconds


def section(argv: list[str] | None = None) -> str:
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="irene-bench-viz-") as tmp:
        (Path(tmp) / DEEP).mkdir()
        (Path(tmp) / DEEP / "config.json").write_text(json.dumps(DEEP_CONFIG))
        proc, url, started, shown = _start(Path(tmp))
        try:
            target = lambda s: "/api/energy?" + urlencode({"model": MODEL, "batch_size": 8, "seq_len": s})  # noqa: E731
            _, size = asyncio.run(_timed_get(url, target(128)))
            answered = time.perf_counter()
            cold, _ = asyncio.run(_timed_get(url, target(256)))
            latencies, wall = asyncio.run(_load(url, target(128)))
            view = _first_view(url)
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
    n = len(latencies)
    p99 = _percentile(latencies, 99) * 1000
    out = Section("IrEne-viz", "/api/energy on loopback (server in its own process, 2 cores shared with the clients).")
    out.print(f"  load average (1 min) before / after: {load_before:.1f} / {os.getloadavg()[0]:.1f} on "
              f"{os.cpu_count()} cores (timings scale with it)")
    out.print(f"  answer size: {size / 1024:.0f} KiB gzip-compressed ({MODEL}, batch 8, seq 128, all nodes, features)")
    first = answered - shown
    out.print(f"  cold first answer (empty cache): start → URL {shown - started:.2f} s (the URL comes once the "
              f"first view is ready: imports torch/transformers and the predictor, traces, predicts); URL → first "
              f"answer {first:.3f} s (target ≤ 3: {'met' if first <= 3 else 'MISSED'}); start → first answer "
              f"{answered - started:.2f} s")
    out.print(f"  cold request, another input size (trace on the meta device + predict): {cold:.2f} s")
    out.print(f"  cached, {CLIENTS} concurrent clients x {REQUESTS_PER_CLIENT} requests: {n / wall:.0f} requests/s")
    out.print(
        f"  latency ms: p50 {statistics.median(latencies) * 1000:.1f}, p90 {_percentile(latencies, 90) * 1000:.1f}, "
        f"p99 {p99:.1f} (target ≤ 50: {'met' if p99 <= 50 else 'MISSED'}), max {max(latencies) * 1000:.1f}"
    )
    if view is None:
        out.print(f"  48-layer first view: not measured ({CHROMIUM} is missing)")
    else:
        rows, top, seconds = view
        met = rows <= 40 and top
        out.print(f"  48-layer model ({DEEP_CONFIG['num_hidden_layers']} layers, local config.json), first view at "
                  f"1280x800: {rows} tree rows, every top-level module {'shown' if top else 'NOT shown'} "
                  f"(target ≤ 40: {'met' if met else 'MISSED'}); page to tree {seconds:.1f} s (cold trace)")
    return out.markdown()


if __name__ == "__main__":
    update({"bench_viz": section(sys.argv[1:])})
