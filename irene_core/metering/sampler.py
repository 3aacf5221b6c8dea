"""The resource-sampler contract (kind ``features``): resource use sampled in the background while nodes run."""

from __future__ import annotations

from abc import abstractmethod

from irene_core.tree.features import FeatureExtractor

#: The paper's sampling interval, and the shortest one allowed.
DEFAULT_INTERVAL_S = 0.17
MIN_INTERVAL_S = 0.01


class ResourceSampler(FeatureExtractor):
    """Resource features sampled in the background while nodes run.

    The registered object is a template: ``configured(interval_s=..., gpus=...)`` gives a sampler to
    ``start()``; then, for each node, ``window(t_begin, t_end, calls)`` over the node's measurement
    window (``time.monotonic()`` seconds, the meters' clock); ``stop()`` at the end.
    """

    interval_s: float = DEFAULT_INTERVAL_S

    @abstractmethod
    def configured(
        self, interval_s: float = DEFAULT_INTERVAL_S, gpus: tuple[int, ...] | None = None
    ) -> ResourceSampler:
        """A new, stopped sampler taking a sample every ``interval_s`` (at least :data:`MIN_INTERVAL_S`) of
        the GPUs with NVML indices ``gpus`` (None: every GPU; ``irene run`` passes the model's, from
        :func:`irene_core.metering.gpus.nvml_indices_for_device`)."""

    @abstractmethod
    def start(self) -> None:
        """Start sampling in the background."""

    @abstractmethod
    def stop(self) -> None:
        """Stop sampling (the samples taken stay available to :meth:`window`)."""

    @abstractmethod
    def window(self, begin: float, end: float, calls: int = 1) -> dict[str, float]:
        """Time-weighted means over [begin, end]; per-call features (energy) divided by ``calls``."""

    @abstractmethod
    def sample_count(self, begin: float, end: float) -> int:
        """How many samples overlap [begin, end]."""

    def missing_features(self) -> dict[str, str]:
        """Features this sampler cannot produce here, with the reason (e.g. no NVIDIA driver)."""
        return {}

    def __enter__(self) -> ResourceSampler:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
