"""What a viz server is allowed to do: where its data and cache live, and the bounds on a request."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def default_cache_path() -> Path:
    """``$XDG_CACHE_HOME/irene/viz-cache.sqlite`` (``~/.cache`` when unset)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "irene" / "viz-cache.sqlite"


def physical_memory() -> int:
    """This machine's memory in bytes (16 GiB where the OS does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 16 * 2**30


@dataclass(frozen=True)
class Limits:
    """Bounds on one request; anything outside is answered with 422 and says which bound."""

    max_batch_size: int = 256
    max_seq_len: int = 4096
    max_context_len: int = 131_072
    max_tree_nodes: int = 20_000
    #: A local model whose weights and activations (estimated from its config.json) exceed this is not traced.
    max_model_bytes: int = field(default_factory=physical_memory)


@dataclass(frozen=True)
class ServeConfig:
    """Settings of one viz app: ``data_dir`` is the only directory whose files it reads."""

    data_dir: Path | None = None
    cache_path: Path = field(default_factory=default_cache_path)
    framework: str = "torch"
    limits: Limits = field(default_factory=Limits)
    #: Host headers accepted (DNS-rebinding guard); ``("*",)`` accepts any.
    allowed_hosts: tuple[str, ...] = LOOPBACK_HOSTS
    #: Import the tracer and predictor in the background at startup, so the first request is fast.
    warm_up: bool = False
