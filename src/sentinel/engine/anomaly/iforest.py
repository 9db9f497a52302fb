"""Isolation forest: trained by scikit-learn, stored and scored as plain node arrays.

scikit-learn grows the trees; we then copy each tree's node table (children, split feature, threshold, and the
expected path length of a row that ends in each leaf) into flat numpy arrays. That is what the model file holds,
so loading a model never unpickles anything, and scoring walks every tree for every row at once, one tree level
per step (a few dozen array operations per batch, not a loop per row). The result equals scikit-learn's
``-score_samples``: 2^(-mean path length / c(max_samples)), near 1 for rows isolated quickly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast

import numpy as np
import numpy.typing as npt
from sklearn.ensemble import IsolationForest

from sentinel.engine.anomaly.detector import (
    FloatArray,
    Scalar,
    column_count_check,
    require_array,
    require_parameter,
)
from sentinel.errors import DatasetError, ModelError

IntArray = npt.NDArray[np.int64]


def average_path_length(n: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """c(n): the mean depth of an unsuccessful search in a binary search tree of n keys (as scikit-learn)."""
    n = np.asarray(n, dtype=np.float64)
    safe = np.maximum(n, 3.0)
    general = 2.0 * (np.log(safe - 1.0) + np.euler_gamma) - 2.0 * (safe - 1.0) / safe
    result: npt.NDArray[np.float64] = np.where(n <= 1, 0.0, np.where(n == 2, 1.0, general))
    return result


@dataclass(frozen=True, eq=False)
class IsolationForestDetector:
    """All trees' nodes in shared arrays; ``roots[t]`` is the index of tree t's root node."""

    left: IntArray
    right: IntArray
    feature: IntArray
    threshold: FloatArray
    leaf_path: FloatArray
    roots: IntArray
    max_depth: int
    max_samples: int
    features: int
    kind: str = "iforest"

    @property
    def n_features(self) -> int:
        return self.features

    @property
    def history_rows(self) -> int:
        return 0

    def statistic(self, history: FloatArray, rows: FloatArray) -> FloatArray:
        column_count_check(self.kind, self.n_features, rows)
        # scikit-learn compares float32 inputs with float64 thresholds; do the same so splits agree exactly.
        values = rows.astype(np.float32).astype(np.float64)
        row_index = np.arange(len(values))[:, None]
        node = np.broadcast_to(self.roots, (len(values), len(self.roots))).copy()
        for _ in range(self.max_depth + 1):
            is_leaf = self.left[node] < 0
            if is_leaf.all():
                break
            split = np.where(is_leaf, 0, self.feature[node])
            go_left = values[row_index, split] <= self.threshold[node]
            node = np.where(is_leaf, node, np.where(go_left, self.left[node], self.right[node]))
        mean_path = self.leaf_path[node].mean(axis=1)
        scale = float(average_path_length(np.array([self.max_samples], dtype=np.float64))[0])
        result: FloatArray = np.power(2.0, -mean_path / scale) if scale > 0 else np.ones(len(values))
        return result

    def parameters(self) -> dict[str, Scalar]:
        return {
            "trees": len(self.roots),
            "max_depth": self.max_depth,
            "max_samples": self.max_samples,
            "features": self.features,
        }

    def arrays(self) -> dict[str, npt.NDArray[np.generic]]:
        return {
            "left": self.left,
            "right": self.right,
            "feature": self.feature,
            "threshold": self.threshold,
            "leaf_path": self.leaf_path,
            "roots": self.roots,
        }

    @classmethod
    def restore(
        cls, parameters: Mapping[str, object], arrays: Mapping[str, npt.NDArray[np.generic]]
    ) -> IsolationForestDetector:
        """Rebuild from a model file, checking that every node reference stays inside the arrays."""
        left = cast(IntArray, require_array(arrays, "left", "iforest", 1, "i"))
        right = cast(IntArray, require_array(arrays, "right", "iforest", 1, "i"))
        feature = cast(IntArray, require_array(arrays, "feature", "iforest", 1, "i"))
        threshold = cast(FloatArray, require_array(arrays, "threshold", "iforest", 1))
        leaf_path = cast(FloatArray, require_array(arrays, "leaf_path", "iforest", 1))
        roots = cast(IntArray, require_array(arrays, "roots", "iforest", 1, "i"))
        nodes = len(left)
        if not (len(right) == len(feature) == len(threshold) == len(leaf_path) == nodes) or nodes == 0:
            raise ModelError("iforest model node arrays have different lengths")
        features = int(cast(int, require_parameter(parameters, "features", "iforest", int)))
        max_depth = int(cast(int, require_parameter(parameters, "max_depth", "iforest", int)))
        max_samples = int(cast(int, require_parameter(parameters, "max_samples", "iforest", int)))
        inner = left >= 0
        if (
            len(roots) == 0
            or np.any((roots < 0) | (roots >= nodes))
            or np.any(inner & ((left >= nodes) | (right < 0) | (right >= nodes)))
            or np.any(inner & ((feature < 0) | (feature >= features)))
            or not 0 <= max_depth <= 64
            or max_samples < 1
        ):
            raise ModelError("iforest model nodes point outside the node table or the feature list")
        return cls(
            left.astype(np.int64),
            right.astype(np.int64),
            feature.astype(np.int64),
            threshold,
            leaf_path,
            roots.astype(np.int64),
            max_depth,
            max_samples,
            features,
        )


def fit_isolation_forest(
    train: FloatArray, trees: int = 100, max_samples: int = 256, seed: int = 0
) -> IsolationForestDetector:
    """Grow ``trees`` isolation trees on normal rows with scikit-learn and flatten them."""
    if len(train) < 2:
        raise DatasetError(f"an isolation forest needs at least 2 training rows, got {len(train)}")
    # max_features=1.0 offers every column to every tree, so split features index the input columns directly.
    forest = IsolationForest(
        n_estimators=trees, max_samples=min(max_samples, len(train)), max_features=1.0, random_state=seed
    )
    forest.fit(train.astype(np.float64))
    lefts, rights, splits, thresholds, paths, roots = [], [], [], [], [], []
    offset = 0
    for estimator in forest.estimators_:
        tree = estimator.tree_
        left = np.asarray(tree.children_left, dtype=np.int64)
        right = np.asarray(tree.children_right, dtype=np.int64)
        split = np.asarray(tree.feature, dtype=np.int64)
        # Depth of each node counted in edges from the root, plus c(samples left in the node).
        depth = np.asarray(tree.compute_node_depths(), dtype=np.float64) - 1.0
        samples = np.asarray(tree.n_node_samples, dtype=np.float64)
        lefts.append(np.where(left >= 0, left + offset, -1))
        rights.append(np.where(right >= 0, right + offset, -1))
        splits.append(np.where(left >= 0, split, -1))
        thresholds.append(np.where(left >= 0, np.asarray(tree.threshold, dtype=np.float64), 0.0))
        paths.append(depth + average_path_length(samples))
        roots.append(offset)
        offset += len(left)
    return IsolationForestDetector(
        np.concatenate(lefts),
        np.concatenate(rights),
        np.concatenate(splits),
        np.concatenate(thresholds),
        np.concatenate(paths),
        np.asarray(roots, dtype=np.int64),
        int(max(forest.estimators_[i].tree_.max_depth for i in range(len(roots)))),
        int(forest.max_samples_),
        int(train.shape[1]),
    )
