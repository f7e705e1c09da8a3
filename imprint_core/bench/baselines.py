"""Baselines that the benchmarks run beside the heads (the logistic-regression probe is built in
``protocol``): SimpleShot (Wang et al. 2019)."""

from __future__ import annotations

import numpy as np

from ..normalisation import l2 as _l2


class SimpleShot:
    """Nearest class mean after centring on the support mean and L2 (Wang et al. 2019, CL2N)."""

    def fit(self, X: np.ndarray, y: np.ndarray) -> SimpleShot:
        X = np.asarray(X, dtype=np.float64)
        self.mean_ = X.mean(axis=0)
        Z = _l2(X - self.mean_)
        self.classes_, y_idx = np.unique(y, return_inverse=True)
        self.centroids_ = np.stack([Z[y_idx == c].mean(axis=0) for c in range(len(self.classes_))])
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        Z = _l2(np.asarray(X, dtype=np.float64) - self.mean_)
        # ||z - c||^2 up to the constant ||z||^2 = 1
        d = (self.centroids_**2).sum(axis=1)[None, :] - 2.0 * Z @ self.centroids_.T
        return self.classes_[np.argmin(d, axis=1)]
