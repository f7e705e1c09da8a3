"""What a session's head says about images: predictions with evidence, the embedding map,
neural-collapse readings, proxies advice and the accuracy-vs-k curve (a part of ``Project``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..normalisation import l2
from .intake import prepare_image
from .limits import ProjectError
from .quotas import MAX_PREDICT_FILES


class Insight:
    """Prediction, evidence and geometry of the current head (mixed into ``Project``)."""

    def predict(self, backbone, image, name: str = "image", n_neighbors: int = 6) -> dict[str, Any]:
        """Classify one image file: confidences, nearest proxy per class, nearest training images.
        It becomes the image Try it explains (and the Geometry map's star)."""
        with self.transaction():
            z = self._embed_test(backbone, image, name)
            self.last_test = (z, name, backbone.name)
            return self.explain(z, n_neighbors=n_neighbors)

    def predict_many(self, backbone, files: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
        """Classify ``(path, name)`` files (at most MAX_PREDICT_FILES). Read-only: the image Try
        it explains stays the one it shows."""
        if len(files) > MAX_PREDICT_FILES:
            raise ProjectError(
                f"{len(files)} images were sent; classify at most {MAX_PREDICT_FILES} at a time."
            )
        with self.lock:
            return [
                self.explain(self._embed_test(backbone, path, name), n_neighbors=0)
                for path, name in files
            ]

    def _embed_test(self, backbone, image, name: str) -> np.ndarray:
        """The embedding ``(d,)`` of an image to classify with the current head."""
        if self.head is None:
            raise ProjectError("There is no classifier yet: add images and press Imprint.")
        if backbone.name != self.backbone_name:
            raise ProjectError(
                f"The classifier was imprinted on '{self.backbone_name}' but the backbone "
                f"in use is '{backbone.name}'."
            )
        picture = prepare_image(image, name)
        return np.asarray(backbone.embed([picture], cache=False), dtype=np.float32)[0]

    def current_prediction(self, n_neighbors: int = 6) -> dict[str, Any] | None:
        """The last image tried, explained by the current head (None if it cannot be)."""
        test = self.last_test
        if self.head is None or test is None or test[2] != self.backbone_name:
            return None
        if test[0].shape[0] != np.asarray(self.head.proxies_).shape[1]:
            return None
        result = self.explain(test[0], n_neighbors=n_neighbors)
        result["file"] = test[1]
        return result

    def explain(self, z: np.ndarray, n_neighbors: int = 6) -> dict[str, Any]:
        """Prediction and evidence for one embedding ``z (d,)``."""
        head = self.head
        Z = z[None, :]
        proba = np.asarray(head.predict_proba(Z))[0]
        classes = [str(c) for c in head.classes_]
        confidences = {c: float(p) for c, p in zip(classes, proba, strict=True)}
        label = str(head.predict(Z)[0])
        unit = _unit(Z)[0]
        sims = _unit(np.asarray(head.proxies_, dtype=np.float32)) @ unit
        owners = np.asarray([str(c) for c in head.proxy_labels_])
        per_class = []
        for c in classes:
            idx = np.flatnonzero(owners == c)
            best = idx[int(np.argmax(sims[idx]))]
            per_class.append(
                {
                    "class": c,
                    "confidence": confidences[c],
                    "nearest_proxy": int(best - idx[0]) + 1,
                    "proxies": int(idx.size),
                    "similarity": float(sims[best]),
                }
            )
        out = {
            "label": label,
            "confidences": confidences,
            "classes": per_class,
            "neighbours": [],
            "unknown": None,
        }
        if hasattr(head, "unknown_score"):  # "none of these" (imprint_core.unknown)
            score, threshold = float(head.unknown_score(Z)[0]), float(head.unknown_threshold_)
            calibration = getattr(head, "unknown_calibration_", None)
            out["unknown"] = {
                "score": score,
                "threshold": threshold,
                "unknown": score > threshold,
                # the threshold comes from held-out training images (else from the classes'
                # separation: one image per class, or a head file without class means)
                "held_out": calibration is not None and len(calibration) > 0,
            }
        if n_neighbors and self.head_source == "imprinted" and self.is_embedded():
            X, y, items = self.dataset()
            s = _unit(X) @ unit
            for i in np.argsort(-s, kind="stable")[:n_neighbors]:
                out["neighbours"].append(
                    {
                        "class": str(y[i]),
                        "file": items[i].name,
                        "path": str(items[i].path),
                        "similarity": float(s[i]),
                    }
                )
        return out

    # -- geometry ----------------------------------------------------------------------------------
    def geometry(self, method: str = "pca", dim: int = 2, normalize: bool = True) -> dict[str, Any]:
        """The map (samples, proxies, class means, the last test image), neural-collapse readings,
        the class-mean cosines beside the ideal simplex, per-class dispersion and a
        proxies-per-class recommendation, for the imprinted head. `normalize` maps L2-normalised
        embeddings (what the head sees with L2 options) or raw ones."""
        with self.transaction():
            if self.head is None or self.head_source != "imprinted":
                raise ProjectError("Imprint a classifier first: the map shows its training images.")
            self.geometry_inputs = (method, int(dim), bool(normalize))
            return self.current_geometry()

    def current_geometry(self) -> dict[str, Any]:
        """The geometry of the current head with the last asked map options (memoised)."""
        with self.lock:
            if self.geometry_inputs is None:
                raise ProjectError("Open the Geometry tab to draw the map.")
            test = self.last_test
            key = (self.head_serial, self._fingerprint(), self.geometry_inputs, id(test))
            if self._geometry is None or self._geometry[0] != key:
                self._geometry = (key, self._draw_geometry(*self.geometry_inputs))
            return self._geometry[1]

    def _draw_geometry(self, method: str, dim: int, normalize: bool) -> dict[str, Any]:
        # (imprint_core.figures shows user strings as text: class and file names go in as they are)
        from ..collapse import describe_metrics, nc_metrics
        from ..figures import cosine_heatmap, dispersion_bars, embedding_map
        from ..modes import advise_proxies
        from ..projections import project

        X, y, items = self.dataset()
        head = self.head
        means = np.stack([X[y == c].mean(axis=0) for c in head.classes_])
        extra = {"proxies": head.proxies_, "means": means}
        test = self.last_test
        if test is not None and (test[2] != self.backbone_name or test[0].shape != X[0].shape):
            test = None
        if test is not None:
            extra["test"] = test[0][None, :]
        p = project(X, method, dim=dim, extra=extra, normalize=normalize, blocking=False)
        figure = embedding_map(
            p.coords,
            y,
            proxies=p.extra["proxies"],
            proxy_labels=head.proxy_labels_,
            means=p.extra["means"],
            mean_labels=head.classes_,
            test_points=p.extra.get("test"),
            test_labels=head.predict(test[0][None, :]) if test is not None else None,
            names=[i.name for i in items],
            test_names=[test[1]] if test is not None else None,
            classes=head.classes_,
            projection=p,
        )
        metrics = nc_metrics(X, y, head)
        # the advice reads the accuracy-vs-k curve's k-means line under the head's own settings,
        # folds and seed: the curve k_curve draws is the same evidence, so the two agree
        advice = advise_proxies(X, y, self._head_settings())
        return {
            "figure": figure,
            "cosines": cosine_heatmap(means, head.classes_),
            "dispersion": dispersion_bars(metrics),
            "map_note": p.note,
            "readings": describe_metrics(metrics),
            "advice": {str(c): reason for c, reason in advice["reasons"].items()},
            "advice_summary": advice["summary"],
            "recommended_k": {str(c): int(k) for c, k in advice["k"].items()},
            "advice_raw": advice,
        }

    def _training_data(self, what: str) -> tuple[np.ndarray, np.ndarray, dict, tuple]:
        """(X, y, the head's settings, the data fingerprint), read together under the lock;
        ``what`` names the view that needs them in the refusal."""
        with self.lock:
            if self.head is None or self.head_source != "imprinted":
                raise ProjectError(f"Imprint a classifier first: {what} uses its training images.")
            X, y, _ = self.dataset()
            return X, y, self._head_settings(), self._fingerprint()

    def advised_settings(self) -> dict[str, Any]:
        """gen and k of the Geometry tab's advice for the current head: what "Apply" sets (the
        advice is cached, so this is the one the tab shows)."""
        from ..modes import advise_proxies

        X, y, settings, _ = self._training_data("the advice")
        advice = advise_proxies(X, y, settings)
        return {"gen": advice["settings"]["gen"], "k": int(advice["settings"]["k"])}

    def k_curve(self, progress: Any = None) -> Any:
        """Cross-validated accuracy against the number of proxies on this project's images
        (the paper's Figure 6 on your own data), as a Plotly figure with its description."""
        from ..figures import accuracy_vs_k_figure
        from ..kcurve import accuracy_vs_k

        X, y, settings, fingerprint = self._training_data("the curve")
        curve = accuracy_vs_k(X, y, progress=progress, settings=settings)
        figure = accuracy_vs_k_figure(curve)
        with self.transaction():
            self.kcurve = (fingerprint, figure, curve)
        return figure, curve

    def current_kcurve(self) -> tuple[Any, dict] | str | None:
        """The accuracy-vs-k curve if it is of the current images; a sentence if it is not."""
        if self.kcurve is None:
            return None
        fingerprint, figure, curve = self.kcurve
        if fingerprint != self._fingerprint():
            return "The images or classes changed since the curve was computed: compute it again."
        return figure, curve


def _unit(X: np.ndarray) -> np.ndarray:
    return l2(np.asarray(X, dtype=np.float32))
