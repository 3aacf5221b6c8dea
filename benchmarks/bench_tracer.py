"""Speed of the torch tracer: trace + model features of bert-base, and meta mode on a 1B model.

Each case runs in a fresh process (so imports and peak RSS are its own), on all cores torch sees;
"import" is torch + transformers' modeling code (paid once per process), "first trace" adds the
model family's lazy imports, "second trace" is the steady state:
- ``bert``: bert-base-uncased at batch 8, seq 128 on the CPU (random weights, one forward pass
  with every node's inputs captured), then one replay of every node (what ``irene run`` does per
  node, minus the measuring window).
- ``meta``: a Llama-style 1.03B-parameter config (TinyLlama's shape) on the meta device at batch
  8, seq 512: trace times and peak RSS of the process.
- ``decode_8b``, ``decode_70b``, ``decode_mixtral``, ``decode_qwen3_moe``: the ``llama-3.1-8b`` /
  ``llama-3.1-70b`` presets and the mixtures of experts ``mixtral-8x7b`` / ``qwen3-30b-a3b`` on the meta
  device in decode (batch 8, context 4096, bf16): trace time, peak RSS, nodes and classes (nodes with
  the same type, flops and mem_bytes, the paper's measurement cache key), flops per token (twice the
  parameters a token runs through) and the share of them in the experts' grouped products.
- ``decode_run``: ``irene run --model llama-3.2-1b --phase decode --context 1024 -b 8 --dtype bfloat16``
  on the CPU without a meter, end to end (a fresh ``irene`` process), and its per-token figures.
The machine's load average is printed too: on shared cores the wall times scale with it.
Targets (issue 4): bert-base trace + features < 10 s on 2 cores; meta 1B < 10 s and < 2 GiB RSS.
Targets (issue 15): meta decode traces of 8B and 70B ≤ 10 s and < 1 GiB each; the 1B decode run ≤ 60 s.

    python benchmarks/bench_tracer.py
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from results import Section, update

ONE_B_CONFIG = {
    "model_type": "llama",
    "hidden_size": 2048,
    "intermediate_size": 5632,
    "num_hidden_layers": 22,
    "num_attention_heads": 32,
    "num_key_value_heads": 4,
    "vocab_size": 32000,
    "max_position_embeddings": 2048,
}


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _import_stack() -> None:
    import torch  # noqa: F401
    import transformers.modeling_utils  # noqa: F401

    import irene_framework_torch.framework  # noqa: F401


def case_bert() -> dict[str, float | int]:
    import torch

    start = time.perf_counter()
    _import_stack()
    from irene_framework_torch.framework import TorchFramework

    imported = time.perf_counter()
    framework = TorchFramework()
    framework.trace("bert-base-uncased", 8, 128)  # dropped at once: one trace alive at a time
    first = time.perf_counter()
    traced = framework.trace("bert-base-uncased", 8, 128)
    second = time.perf_counter()
    nodes = list(traced.record.nodes())
    for node in nodes:
        traced.replay(node.id, calls=1)
    replayed = time.perf_counter()
    return {
        "threads": torch.get_num_threads(),
        "import_s": imported - start,
        "first_trace_s": first - imported,
        "second_trace_s": second - first,
        "nodes": len(nodes),
        "replay_every_node_once_s": replayed - second,
        "peak_rss_mib": _peak_rss_mib(),
    }


def case_meta() -> dict[str, float | int]:
    start = time.perf_counter()
    _import_stack()
    from irene_framework_torch.framework import TorchFramework

    imported = time.perf_counter()
    with tempfile.TemporaryDirectory() as directory:
        (Path(directory) / "config.json").write_text(json.dumps(ONE_B_CONFIG))
        TorchFramework().trace(directory, 8, 512, meta=True)
        first = time.perf_counter()
        traced = TorchFramework().trace(directory, 8, 512, meta=True)
    second = time.perf_counter()
    root = traced.record.root.features
    return {
        "import_s": imported - start,
        "first_trace_s": first - imported,
        "second_trace_s": second - first,
        "parameters": int(root["num_parameters"]),
        "nodes": sum(1 for _ in traced.record.nodes()),
        "tflops": root["flops"] / 1e6,
        "peak_rss_mib": _peak_rss_mib(),
    }


def _decode_meta(name: str) -> dict[str, float | int]:
    start = time.perf_counter()
    _import_stack()
    from irene_framework_torch.framework import TorchFramework

    imported = time.perf_counter()
    record = TorchFramework().trace(name, 8, 1, meta=True, phase="decode", context_len=4096).record
    traced = time.perf_counter()
    nodes = list(record.nodes())
    classes = {(n.type, n.features["flops"], n.features["mem_bytes"]) for n in nodes}
    flops = record.root.features["flops"]
    return {
        "gflops_per_token": flops / 1e3 / 8,
        "experts_share": sum(n.features["flops"] for n in nodes if n.type == "GroupedMatMul") / flops,
        "import_s": imported - start,
        "trace_s": traced - imported,
        "parameters": int(record.root.features["num_parameters"]),
        "nodes": len(nodes),
        "classes": len(classes),
        "kv_cache_gib": record.meta["kv_cache_bytes"] / 2**30,
        "peak_rss_mib": _peak_rss_mib(),
    }


def case_decode_8b() -> dict[str, float | int]:
    return _decode_meta("llama-3.1-8b")


def case_decode_70b() -> dict[str, float | int]:
    return _decode_meta("llama-3.1-70b")


def case_decode_mixtral() -> dict[str, float | int]:
    return _decode_meta("mixtral-8x7b")


def case_decode_qwen3_moe() -> dict[str, float | int]:
    return _decode_meta("qwen3-30b-a3b")


DECODE_RUN = ["--model", "llama-3.2-1b", "--phase", "decode", "--context", "1024", "-b", "8", "--dtype", "bfloat16"]


def case_decode_run() -> dict[str, float | int | str]:
    irene = Path(sys.executable).with_name("irene")
    with tempfile.TemporaryDirectory() as directory:
        start = time.perf_counter()
        proc = subprocess.run([str(irene), "run", *DECODE_RUN, "--json", "-o", str(Path(directory) / "run.jsonl")],
                              capture_output=True, text=True, check=True)
        wall = time.perf_counter() - start
    figures = json.loads(proc.stdout.strip().splitlines()[-1])["per_token"]
    return {"wall_s": wall, **{k: v for k, v in figures.items() if v is not None}}


CASES = {"bert": case_bert, "meta": case_meta, "decode_8b": case_decode_8b, "decode_70b": case_decode_70b,
         "decode_mixtral": case_decode_mixtral, "decode_qwen3_moe": case_decode_qwen3_moe,
         "decode_run": case_decode_run}


def run_case(name: str) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, __file__, "--case", name], capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def section(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=sorted(CASES), help="run one case in this process and print JSON")
    args = parser.parse_args(argv)
    if args.case:
        print(json.dumps(CASES[args.case]()))
        return ""
    out = Section("Tracer", "Trace + model features in a fresh process per case (imports and peak RSS its own).")
    out.print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    _bert_and_meta(out)
    _llm(out)
    return out.markdown()


def _llm(out: Section) -> None:
    for case, name in (("decode_8b", "llama-3.1-8b"), ("decode_70b", "llama-3.1-70b"),
                       ("decode_mixtral", "mixtral-8x7b"), ("decode_qwen3_moe", "qwen3-30b-a3b")):
        r = run_case(case)
        out.print(f"{name} ({r['parameters'] / 1e9:.2f}B) decode on the meta device, b8, context 4096, bf16:")
        out.print(f"  trace + features                      {r['trace_s']:6.2f} s   (target ≤ 10 s; import "
                  f"{r['import_s']:.2f} s before)")
        out.print(f"  peak RSS of the process               {r['peak_rss_mib']:6.0f} MiB (target < 1024 MiB)")
        out.print(f"  nodes / classes (type, flops, bytes)  {r['nodes']:6d} / {r['classes']}")
        out.print(f"  KV cache it stands for                {r['kv_cache_gib']:6.2f} GiB")
        out.print(f"  GFLOPs per token                      {r['gflops_per_token']:6.2f}   "
                  f"(experts' grouped products {100 * r['experts_share']:.1f} %)")
    r = run_case("decode_run")
    out.print(f"irene run {' '.join(DECODE_RUN)} (CPU, no meter), end to end:")
    out.print(f"  wall time                             {r['wall_s']:6.1f} s   (target ≤ 60 s)")
    out.print(f"  latency per token                     {1e3 * r['latency_s_per_token']:6.1f} ms "
              f"({r['tokens_per_s']:.2f} tokens/s, {r['tokens_per_call']} tokens per call)")
    if "energy_j_per_token" in r:
        out.print(f"  energy per token ({r['energy_source']})          {r['energy_j_per_token']:6.3f} J")
    out.print(f"  KV cache                              {r['kv_cache_mib']:6.1f} MiB ({r['kv_cache_dtype']})")


def _bert_and_meta(out: Section) -> None:
    bert = run_case("bert")
    out.print(f"bert-base-uncased b8 s128 on the CPU ({bert['threads']} threads, {bert['nodes']} nodes):")
    out.print(f"  import torch + transformers           {bert['import_s']:6.2f} s")
    out.print(f"  first trace + features                {bert['first_trace_s']:6.2f} s   (target < 10 s)")
    out.print(f"  second trace + features               {bert['second_trace_s']:6.2f} s")
    out.print(f"  replay every node once                {bert['replay_every_node_once_s']:6.2f} s")
    out.print(f"  peak RSS                              {bert['peak_rss_mib']:6.0f} MiB")
    meta = run_case("meta")
    out.print(f"Llama-style {meta['parameters'] / 1e9:.2f}B-parameter config on the meta device, b8 s512 "
          f"({meta['nodes']} nodes, {meta['tflops']:.1f} TFLOPs):")
    out.print(f"  import torch + transformers           {meta['import_s']:6.2f} s")
    out.print(f"  first trace + features                {meta['first_trace_s']:6.2f} s   (target < 10 s)")
    out.print(f"  second trace + features               {meta['second_trace_s']:6.2f} s")
    out.print(f"  peak RSS of the process               {meta['peak_rss_mib']:6.0f} MiB (target < 2048 MiB)")


if __name__ == "__main__":
    text = section(sys.argv[1:])
    if text:
        update({"bench_tracer": text})
