"""Connecting to Ray with safe defaults, and where a plan's measuring actors can live.

Safe defaults: usage statistics off (``RAY_USAGE_STATS_ENABLED=0`` unless set), no dashboard, and a
local cluster (``--cluster local``) bound to 127.0.0.1 with a small object store, offering one unit of
:data:`METER_HOST` (this machine's host meter). An address is probed with a plain TCP connection
first, so an unreachable one fails in seconds instead of after Ray's own minute of retries.

Exclusivity is declared, as Ray's resources are logical: an actor of a ``host``-scoped meter (RAPL,
emonPi) holds the node's one unit of :data:`METER_HOST` for its lifetime, a ``gpu``-scoped one (NVML)
one whole GPU; so no two measurements ever overlap on what one meter sees. A sweep without a meter
runs one actor per node (pinned there, no custom resource).
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass, field
from typing import Any

from irene_core.errors import IreneError
from irene_core.plugins import get_registry

#: The custom resource a machine offers once: its host-scoped meter (``ray start --resources``).
METER_HOST = "irene_meter_host"
#: The object store of a local cluster (trees travel as JSON text of some 100 kB).
LOCAL_OBJECT_STORE_BYTES = 128 * 2**20
#: Seconds to wait for a TCP connection to a cluster's address.
PROBE_TIMEOUT_S = 5.0
#: Ray's default GCS port (an address without a port).
DEFAULT_PORT = 6379


def meter_scope(meter: str | None) -> str | None:
    """What the plan's meter measures: ``host``, ``gpu``, or None without a meter."""
    if meter is None:
        return None
    scope = getattr(get_registry().get("meter", meter), "scope", "host")
    return str(scope)


def import_ray() -> Any:
    """Ray, with usage statistics off unless the user asked for them."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        import ray
    except ImportError:
        raise IreneError("irene sweep needs Ray: pip install 'irene[ray]'") from None
    return ray


def probe(address: str) -> None:
    """IreneError naming ``--cluster ADDRESS`` when nothing accepts a TCP connection there."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        host, port = address, str(DEFAULT_PORT)
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=PROBE_TIMEOUT_S).close()
    except OSError as exc:
        why = exc.strerror or str(exc) or type(exc).__name__
        raise IreneError(f"--cluster {address}: no Ray cluster reachable there ({why})") from None


def connect(cluster: str) -> Any:
    """``ray.init`` for ``local``, ``auto`` or an address (``host:port``); returns the ray module."""
    ray = import_ray()
    quiet: dict[str, Any] = {"logging_level": logging.ERROR, "log_to_driver": False, "configure_logging": True}
    if cluster == "local":
        ray.init(address="local", include_dashboard=False, _node_ip_address="127.0.0.1",
                 object_store_memory=LOCAL_OBJECT_STORE_BYTES, resources={METER_HOST: 1}, **quiet)
        return ray
    if cluster != "auto":
        probe(cluster)
    try:
        ray.init(address=cluster, **quiet)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise IreneError(f"--cluster {cluster}: cannot connect ({first})") from None
    return ray


@dataclass(frozen=True)
class Slot:
    """Where one measuring actor lives: a node and, for GPU-scoped meters, one of its GPUs."""

    node_id: str
    index: int
    host: str
    options: dict[str, Any] = field(default_factory=dict, compare=False)  # Ray actor options

    @property
    def name(self) -> str:
        return f"{self.host}:{self.node_id[:8]}" + (f"/gpu{self.index}" if self.index else "")


def requirement(scope: str | None) -> tuple[str, str] | None:
    """The resource a plan of this scope needs on a node, and why; None when any node will do."""
    if scope == "host":
        return METER_HOST, (f"a host-scoped meter measures the whole machine: offer it once per machine with "
                            f"ray start --resources='{{\"{METER_HOST}\": 1}}'")
    if scope == "gpu":
        return "GPU", "a GPU-scoped meter measures one GPU: start nodes with GPUs"
    return None


def check_offered(ray: Any, scope: str | None) -> None:
    """Refuse (one line) a plan that no node of the cluster can run, before anything is submitted."""
    need = requirement(scope)
    if need is not None and ray.cluster_resources().get(need[0], 0) < 1:
        raise IreneError(f"no node of the cluster offers {need[0]} ({need[1]})")


def slots(node: dict[str, Any], scope: str | None) -> list[Slot]:
    """The actors a live node of ``ray.nodes()`` takes for a plan of ``scope``, each holding its share of
    the node's CPUs (so torch's threads have cores), pinned to the node."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    offered = node.get("Resources", {})
    if not node.get("Alive"):
        return []
    count = 1
    extra: dict[str, Any] = {}
    if scope == "host":
        if offered.get(METER_HOST, 0) < 1:
            return []
        extra["resources"] = {METER_HOST: 1}
    elif scope == "gpu":
        count = int(offered.get("GPU", 0))
        extra["num_gpus"] = 1
    cpus = int(offered.get("CPU", 0)) // count if count else 0
    node_id = str(node["NodeID"])
    pinned = NodeAffinitySchedulingStrategy(node_id=node_id, soft=False)
    host = str(node.get("NodeManagerHostname") or node.get("NodeManagerAddress") or "?")
    return [Slot(node_id, i, host, {"num_cpus": cpus, "scheduling_strategy": pinned, "max_restarts": 0, **extra})
            for i in range(count)]
