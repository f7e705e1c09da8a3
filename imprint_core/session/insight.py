"""What a session's head says about images: predictions with evidence, the embedding map,
neural-collapse readings, proxies advice and the accuracy-vs-k curve (a part of ``Project``)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..normalisation import NORM_INF_SPACE, l2
from .intake import check_request, prepare_image
from .limits import PREDICT_MIN_SIDE, ProjectError
from .memo import same
from .quotas import MAX_PREDICT_FILES
from .scheduler import pause, turn
from .thumbnails import thumbnail

# The spaces the Geometry map is drawn in: key -> (what the radio button says, the map from
# embeddings into it). "head" is the default: where the head compares images with its proxies.
MAP_SPACES: dict[str, tuple[str, Any]] = {
    "head": ("the head's space", lambda head, X: head.transform(X)),
    "l2": ("L2-normalised (the paper's)", lambda head, X: l2(np.asarray(X, dtype=np.float64))),
    "raw": ("raw embeddings", lambda head, X: np.asarray(X, dtype=np.float64)),
}
_SPACE_NAMES = {"l2": "L2-normalised embeddings", "raw": "raw embeddings"}
MAP_SPACE_DEFAULT = "head"
_NORM_INF_OF = {"l2": "l2", "raw": "none"}  # the head's NORMinf that makes a space its own


def map_space_choices() -> list[tuple[str, str]]:
    """(label, key) of every map space, the default first (for the Geometry tab's radio)."""
    return [(label, key) for key, (label, _) in MAP_SPACES.items()]


def _is_head_space(space: str, head) -> bool:
    return space == "head" or _NORM_INF_OF.get(space) == head.norm_inf


def map_title(space: str, head, method: str) -> str:
    """The map's title: the space it is drawn in, named (and whether it is the head's)."""
    how = "UMAP" if method == "umap" else "PCA"
    if _is_head_space(space, head):
        named = NORM_INF_SPACE[head.norm_inf]
        return f"{how} of the head's space ({named}): where images meet proxies"
    return f"{how} of {_SPACE_NAMES[space]} (not the head's space: no proxies)"


def _space_note(space: str, head) -> str:
    if not _is_head_space(space, head):
        return (
            f"This map shows {_SPACE_NAMES[space]}, as the paper's figures do; "
            f"the head compares images with its proxies in its own space "
            f"({NORM_INF_SPACE[head.norm_inf]}), so its proxies are drawn only there."
        )
    if head.norm_post == "l2" and head.norm_inf in ("l2", "whiten"):
        return (
            "Every image and every proxy has length 1 in this space; a class mean (the cross) is "
            "shorter, so a proxy made from it lies further out than the cross, past its cloud."
        )
    return ""


def _file_identity(image, name: str, backbone: str) -> tuple | None:
    """What tells one tried file from another without reading it: its path, size and time of
    change, its name and the backbone (None for anything but a file path)."""
    if not isinstance(image, (str, os.PathLike)):
        return None
    try:
        st = os.stat(image)
    except OSError:
        return None  # the embedding says what is wrong with it
    return (os.fspath(image), st.st_size, st.st_mtime_ns, name, backbone)


class Insight:
    """Prediction, evidence and geometry of the current head (mixed into ``Project``)."""

    def predict(self, backbone, image, name: str = "image", n_neighbors: int = 6) -> dict[str, Any]:
        """Classify one image file: confidences, nearest proxy per class, nearest training images.
        It becomes the image Try it explains (and the Geometry map's star)."""
        with self.transaction():
            seen = _file_identity(image, name, backbone.name)
            tried = self._tried
            if seen is None or tried is None or tried[1] is not self.last_test or tried[0] != seen:
                z = self._embed_test(backbone, image, name)
                self.last_test = (z, name, backbone.name)
                self._tried = (seen, self.last_test)
            else:  # the file it shows already (a page may send one image twice): same answer
                self._check_classifier(backbone)
            return dict(self._explain_last(n_neighbors))

    def predict_many(self, backbone, files: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
        """Classify ``(path, name)`` files (at most MAX_PREDICT_FILES). Read-only: the image Try
        it explains stays the one it shows."""
        if len(files) > MAX_PREDICT_FILES:
            raise ProjectError(
                f"{len(files)} images were sent; classify at most {MAX_PREDICT_FILES} at a time."
            )
        check_request([path for path, _ in files], MAX_PREDICT_FILES, what="images to classify")
        with self.lock:
            return [
                self.explain(self._embed_test(backbone, path, name), n_neighbors=0)
                for path, name in files
            ]

    def _embed_test(self, backbone, image, name: str) -> np.ndarray:
        """The embedding ``(d,)`` of an image to classify with the current head."""
        self._check_classifier(backbone)
        with turn(self):
            picture = prepare_image(image, name, min_side=PREDICT_MIN_SIDE)
            return np.asarray(backbone.embed([picture], cache=False), dtype=np.float32)[0]

    def _check_classifier(self, backbone) -> None:
        """Refuse to classify without a head, or with a backbone that is not the head's."""
        if self.head is None:
            raise ProjectError("There is no classifier yet: add images and press Imprint.")
        if backbone.name != self.backbone_name:
            raise ProjectError(
                f"The classifier was imprinted on '{self.backbone_name}' but the backbone "
                f"in use is '{backbone.name}'."
            )

    def current_prediction(self, n_neighbors: int = 6) -> dict[str, Any] | None:
        """The last image tried, explained by the current head (None if it cannot be)."""
        test = self.last_test
        if self.head is None or test is None or test[2] != self.backbone_name:
            return None
        if test[0].shape[0] != np.asarray(self.head.proxies_).shape[1]:
            return None
        return {**self._explain_last(n_neighbors), "file": test[1]}

    def _explain_last(self, n_neighbors: int) -> dict[str, Any]:
        """``explain`` of the last image tried, memoised on what it reads (the head, the image,
        the training images), so the upload that classified it does not explain it again."""
        with self.lock:
            test = self.last_test
            key = (self.head, self.head_source, test, n_neighbors)
            key += (self._fingerprint(), self.is_embedded())
            if self._explanation is None or not same(self._explanation[0], key):
                self._explanation = (key, self.explain(test[0], n_neighbors=n_neighbors))
            return self._explanation[1]

    def explain(self, z: np.ndarray, n_neighbors: int = 6) -> dict[str, Any]:
        """Prediction and evidence for one embedding ``z (d,)``, in the head's own space.

        Every class row carries the class score the head compares (``class_scores``: ranked as
        the decision, ties to the first class as ``predict``) and its nearest proxy under the
        head's distance; the nearest training images are ranked by the same distance between
        the head's transforms of the image and of the training embeddings.
        """
        from ..threads import one_thread

        # one image against a few hundred vectors: on 2 busy cores, threaded BLAS made this
        # 3-5x slower (232 ms against 50 ms under a load average of 12); never waits for
        # another session's long computation (threads.one_thread)
        with one_thread(wait=False):
            return self._explain(z, n_neighbors)

    def _explain(self, z: np.ndarray, n_neighbors: int) -> dict[str, Any]:
        head = self.head
        Z = z[None, :]
        scores = np.asarray(head.class_scores(Z), dtype=np.float64)[0]
        proba = np.asarray(head.predict_proba(Z))[0]
        label = str(head.predict(Z)[0])
        measure = score_measure(head)
        to_proxies = np.asarray(head.distances(Z), dtype=np.float64)[0]
        owners = head.proxy_class_index_
        per_class = []
        for i in np.argsort(-scores, kind="stable"):  # ties: the first class, as predict
            idx = np.flatnonzero(owners == i)
            best = idx[int(np.argmin(to_proxies[idx]))]
            per_class.append(
                {
                    "class": str(head.classes_[i]),
                    "confidence": float(proba[i]),
                    "nearest_proxy": int(best - idx[0]) + 1,
                    "proxies": int(idx.size),
                    "score": float(scores[i]),
                    "shown": float(measure["sign"] * scores[i]),
                }
            )
        out = {
            "label": label,
            "confidences": {str(c): float(p) for c, p in zip(head.classes_, proba, strict=True)},
            "classes": per_class,
            "measure": measure,
            "neighbours": [],
            "unknown": None,
        }
        if hasattr(head, "unknown_score"):  # "none of these" (imprint_core.unknown)
            score, threshold = float(head.unknown_score(Z)[0]), float(head.unknown_threshold_)
            out["unknown"] = {
                "score": score,
                "threshold": threshold,
                "unknown": score > threshold,
                # the threshold comes from images held out from their class (else from the
                # other classes: one image per class, or an older head file)
                "held_out": bool(head.unknown_held_out_),
            }
        if n_neighbors and self.head_source == "imprinted" and self.is_embedded():
            X, y, items = self.dataset()
            d = np.asarray(head.distances(Z, X), dtype=np.float64)[0]
            sign = -1.0 if head.distance == "inner_product" else 1.0  # show similarity, not -ip
            for i in np.argsort(d, kind="stable")[:n_neighbors]:
                out["neighbours"].append(
                    {
                        "class": str(y[i]),
                        "file": items[i].name,
                        "path": str(items[i].path),
                        "thumb": str(thumbnail(items[i].path, items[i].name)),
                        "distance": float(d[i]),
                        "shown": float(sign * d[i]),
                    }
                )
        return out

    # -- geometry ----------------------------------------------------------------------------------
    def geometry(
        self, method: str = "pca", dim: int = 2, space: str = MAP_SPACE_DEFAULT
    ) -> dict[str, Any]:
        """The map (samples, proxies, class means, the last test image), neural-collapse readings,
        the class-mean cosines beside the ideal simplex, per-class dispersion and a
        proxies-per-class recommendation, for the imprinted head. ``space`` (a key of
        ``MAP_SPACES``) is where everything is drawn and measured: ``head``, the space the head
        compares images with its proxies in (``ImprintClassifier.transform``), or the paper's
        ``l2`` / ``raw`` embeddings, where proxies are drawn only if that is the head's space."""
        if space not in MAP_SPACES:
            raise ProjectError(
                f"Unknown map space {space!r}; choose one of: {', '.join(MAP_SPACES)}."
            )
        with self.transaction():
            if self.head is None or self.head_source != "imprinted":
                raise ProjectError("Imprint a classifier first: the map shows its training images.")
            self.geometry_inputs = (method, int(dim), space)
            return self.current_geometry()

    def current_geometry(self) -> dict[str, Any]:
        """The geometry of the current head with the last asked map options (memoised)."""
        with self.lock:
            if self.geometry_inputs is None:
                raise ProjectError("Open the Geometry tab to draw the map.")
            test = self.last_test
            key = (self.head_serial, self._fingerprint(), self.geometry_inputs, id(test))
            if self._geometry is None or self._geometry[0] != key:
                with turn(self):
                    self._geometry = (key, self._draw_geometry(*self.geometry_inputs))
            return self._geometry[1]

    def _draw_geometry(self, method: str, dim: int, space: str) -> dict[str, Any]:
        # (imprint_core.figures shows user strings as text: class and file names go in as they are)
        from ..collapse import describe_map, describe_metrics, nc_metrics
        from ..figures import cosine_heatmap, dispersion_bars, embedding_map
        from ..modes import advise_proxies
        from ..projections import project

        X, y, items = self.dataset()
        head = self.head
        to_space = MAP_SPACES[space][1]
        # points, means, proxies and the test image in ONE space, so a class mean (an average of
        # its points) lies inside its cloud and a proxy is drawn where the head compares it
        Xs = np.asarray(to_space(head, X), dtype=np.float64)
        means = np.stack([Xs[y == c].mean(axis=0) for c in head.classes_])
        extra = {"means": means}
        with_proxies = _is_head_space(space, head)
        if with_proxies:
            extra["proxies"] = head.proxies_
        test = self.last_test
        if test is not None and (test[2] != self.backbone_name or test[0].shape != X[0].shape):
            test = None
        if test is not None:
            extra["test"] = to_space(head, test[0][None, :])
        p = project(Xs, method, dim=dim, extra=extra, normalize=False, blocking=False)
        figure = embedding_map(
            p.coords,
            y,
            proxies=p.extra.get("proxies"),
            proxy_labels=head.proxy_labels_ if with_proxies else None,
            means=p.extra["means"],
            mean_labels=head.classes_,
            test_points=p.extra.get("test"),
            test_labels=head.predict(test[0][None, :]) if test is not None else None,
            names=[i.name for i in items],
            test_names=[test[1]] if test is not None else None,
            classes=head.classes_,
            title=map_title(space, head, p.method),
            projection=p,
        )
        # the readings measure the space drawn, so what they say is what the map shows
        metrics = nc_metrics(Xs, y, head, normalize=False, head_inputs=X)
        # the advice reads the accuracy-vs-k curve's k-means line under the head's own settings,
        # folds and seed: the curve k_curve draws is the same evidence, so the two agree
        advice = advise_proxies(X, y, self._head_settings(), progress=self._pausing())
        return {
            "figure": figure,
            "space": space,
            "cosines": cosine_heatmap(means, head.classes_),
            "dispersion": dispersion_bars(metrics),
            "map_note": " ".join(filter(None, [p.note, _space_note(space, head)])),
            # what to look for in this map first, then the numbers reliable at this many images
            "readings": [describe_map(p.coords, y, p.extra["means"]), *describe_metrics(metrics)],
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
        with turn(self):
            advice = advise_proxies(X, y, settings, progress=self._pausing())
        return {"gen": advice["settings"]["gen"], "k": int(advice["settings"]["k"])}

    def k_curve(self, progress: Any = None) -> Any:
        """Cross-validated accuracy against the number of proxies on this project's images
        (the paper's Figure 6 on your own data), as a Plotly figure with its description."""
        from ..figures import accuracy_vs_k_figure
        from ..kcurve import accuracy_vs_k

        X, y, settings, fingerprint = self._training_data("the curve")
        with turn(self):  # one (gen, k) of the curve per turn: other sessions go in between
            curve = accuracy_vs_k(X, y, progress=self._pausing(progress), settings=settings)
            figure = accuracy_vs_k_figure(curve)
        with self.transaction():
            self.kcurve = (fingerprint, figure, curve)
        return figure, curve

    def _pausing(self, progress: Any = None):
        """A progress callback that also lets other sessions' waiting work go (scheduler)."""

        def report(fraction: float, message: str = "") -> None:
            if progress is not None:
                progress(fraction, message)
            pause(self)

        return report

    def current_kcurve(self) -> tuple[Any, dict] | str | None:
        """The accuracy-vs-k curve if it is of the current images; a sentence if it is not."""
        if self.kcurve is None:
            return None
        fingerprint, figure, curve = self.kcurve
        if fingerprint != self._fingerprint():
            return "The images or classes changed since the curve was computed: compute it again."
        return figure, curve


def score_measure(head) -> dict[str, Any]:
    """What the evidence shows of a head's comparison: the score column's ``header``, the
    neighbours' caption word (``near``), the ``sign`` that turns a class score into the number
    shown (a distance is shown as itself, smallest wins) and the head's ``space``."""
    space = NORM_INF_SPACE[head.norm_inf]
    unit = head.norm_inf in ("l2", "whiten") and head.norm_post == "l2"
    inner = "cosine" if unit else "inner product"
    near = ("cos" if unit else "inner product") if head.distance == "inner_product" else "dist"
    m = min(int(head.m), len(head.proxies_)) if head.agg == "mnn" else 1
    if m > 1:  # m-NN: the class score is the class's share of the (weighted) votes
        header = f"share of the votes of the {m} nearest proxies"
        return {"header": header, "near": near, "sign": 1.0, "space": space}
    if head.distance == "inner_product":
        return {"header": f"{inner} in the head's space", "near": near, "sign": 1.0, "space": space}
    header = f"{head.distance} distance in the head's space (smallest wins)"
    return {"header": header, "near": near, "sign": -1.0, "space": space}
