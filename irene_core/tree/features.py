"""The feature-extractor contract (kind ``features``)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from irene_core.tree.schema import TreeRecord


class FeatureExtractor(ABC):
    """Contributes features to tree nodes."""

    kind: ClassVar[str] = "features"
    name: ClassVar[str]
    description: ClassVar[str] = ""
    #: The feature names this extractor produces.
    feature_names: ClassVar[tuple[str, ...]] = ()


class ModelFeatureExtractor(FeatureExtractor):
    """Model features known from the tree alone (no run)."""

    @abstractmethod
    def annotate(self, record: TreeRecord) -> None:
        """Add this extractor's features to every node of ``record`` in place."""
