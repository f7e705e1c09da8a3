"""Baselines that the benchmarks run beside the heads (the fixed-C logistic-regression probe is
built in ``protocol``): SimpleShot (Wang et al. 2019), logistic regression with C tuned by an
inner cross-validation, scikit-learn's shrinkage LDA and a ridge classifier.

Each is a plain fit/predict model on embeddings; ``BASELINES`` maps a ``Method.kind`` to a
factory and ``BASELINE_NAMES`` to the row name the tables show.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..normalisation import l2 as _l2

LOGREG_CS = (0.001, 0.01, 0.1, 1.0, 10.0, 100.0)  # the inner CV's grid of C
LOGREG_CV_MIN_SHOTS = 5  # below this many images per class, no inner CV: C = 1
LOGREG_MAX_ITER = 1000
RIDGE_ALPHAS = (0.01, 0.1, 1.0, 10.0, 100.0, 1000.0)  # chosen by efficient leave-one-out


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


class TunedLogistic:
    """Standardised features, then logistic regression whose C is chosen by a stratified inner
    cross-validation (``min(5, images per class)`` folds over ``LOGREG_CS``) when every class has
    at least ``LOGREG_CV_MIN_SHOTS`` images; with fewer, C = 1 (folds of 1-4 images per class
    cannot rank the Cs). ``C_`` is the value used."""

    def fit(self, X: np.ndarray, y: np.ndarray) -> TunedLogistic:
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import GridSearchCV, StratifiedKFold
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=LOGREG_MAX_ITER))
        fewest = int(np.unique(y, return_counts=True)[1].min())
        if fewest >= LOGREG_CV_MIN_SHOTS:
            folds = StratifiedKFold(min(5, fewest), shuffle=True, random_state=0)
            grid = {"logisticregression__C": list(LOGREG_CS)}
            search = GridSearchCV(model, grid, cv=folds).fit(X, y)
            self.model_, self.C_ = search.best_estimator_, search.best_params_[next(iter(grid))]
        else:
            self.model_, self.C_ = model.fit(X, y), 1.0
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.model_.predict(X)


def shrinkage_lda():
    """scikit-learn's LDA with Ledoit-Wolf shrinkage (``solver="lsqr", shrinkage="auto"``), as
    is: it refuses one image per class (no within-class covariance)."""
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    return LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto")


def ridge():
    """Standardised features, then a ridge classifier (one-vs-all least squares on +-1 targets)
    whose penalty is chosen by efficient leave-one-out over ``RIDGE_ALPHAS``."""
    from sklearn.linear_model import RidgeClassifierCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), RidgeClassifierCV(alphas=RIDGE_ALPHAS))


# Method.kind -> (row name, a fresh unfitted model)
BASELINES: dict[str, tuple[str, Callable[[], object]]] = {
    "simpleshot": ("SimpleShot", SimpleShot),
    "logreg_cv": ("logistic regression (CV)", TunedLogistic),
    "lda": ("shrinkage LDA", shrinkage_lda),
    "ridge": ("ridge", ridge),
}
