"""Engines: a loaded model's preprocessing and thread-safe batched forward (PyTorch, ONNX Runtime)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from PIL import Image

# Heavy: torch and onnxruntime imported where used, so that importing this module stays cheap.


class Engine:
    """A loaded model: ``preprocess`` (PIL -> CHW array or tensor) and a thread-safe batched
    forward over a float32 ``(n, 3, H, W)`` numpy batch."""

    runtime = "torch"

    def __init__(
        self,
        preprocess: Callable[[Image.Image], Any],
        batch_preprocess: Callable[[Sequence[Image.Image]], np.ndarray] | None = None,
    ) -> None:
        self.preprocess = preprocess
        self.batch_preprocess = batch_preprocess  # one call for the whole batch, when faster
        # One batch at a time per model: the cores are shared anyway, and it bounds peak memory
        # when several users embed at once. Decoding and preprocessing stay outside the lock.
        self._lock = threading.Lock()

    def batch(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Preprocessed RGB images stacked into a float32 ``(n, 3, H, W)`` array."""
        if self.batch_preprocess is not None:
            return self.batch_preprocess(images)
        return np.stack([np.asarray(self.preprocess(im), dtype=np.float32) for im in images])

    def features(self, batch: np.ndarray) -> np.ndarray:
        with self._lock:
            return self._features(batch)

    def logits(self, batch: np.ndarray) -> np.ndarray:
        with self._lock:
            return self._logits(batch)

    def _features(self, batch: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _logits(self, batch: np.ndarray) -> np.ndarray:
        raise NotImplementedError("this backbone has no classifier head")


class TorchEngine(Engine):
    """PyTorch forward of ``features`` (and optionally ``head``) under ``inference_mode``."""

    def __init__(
        self, preprocess, features, device, head=None, channels_last=False, batch_preprocess=None
    ) -> None:
        super().__init__(preprocess, batch_preprocess)
        import torch

        self.device = device
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.model = features.eval().to(device, memory_format=self.memory_format)
        self.head = head.eval().to(device) if head is not None else None
        self.runtime = "torch" + ("+channels_last" if channels_last else "")

    def _run(self, batch: np.ndarray, with_head: bool) -> np.ndarray:
        import torch

        with torch.inference_mode():
            x = torch.as_tensor(batch).to(self.device, memory_format=self.memory_format)
            out = self.model(x)
            if with_head:
                out = self.head(out)
            return out.float().cpu().numpy()

    def _features(self, batch):
        return self._run(batch, with_head=False)

    def _logits(self, batch):
        if self.head is None:
            return super()._logits(batch)
        return self._run(batch, with_head=True)


class OrtEngine(Engine):
    """ONNX Runtime session with outputs ``features`` and ``logits`` (session.run is thread-safe)."""

    runtime = "onnxruntime"

    def __init__(self, preprocess, session, batch_preprocess=None) -> None:
        super().__init__(preprocess, batch_preprocess)
        self.session = session

    def _run(self, batch, output: str) -> np.ndarray:
        x = np.ascontiguousarray(batch, dtype=np.float32)
        return self.session.run([output], {"images": x})[0]

    def _features(self, batch):
        return self._run(batch, "features")

    def _logits(self, batch):
        return self._run(batch, "logits")


def ort_session(model_source: bytes | str, spin: bool = False):
    import onnxruntime as ort
    import torch

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, torch.get_num_threads())
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # No busy-waiting between ops: on a shared CPU spinning threads steal the cores the other
    # thread needs (measured ~1.2x faster with several processes busy) and burn CPU when idle.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    return ort.InferenceSession(model_source, opts, providers=["CPUExecutionProvider"])


def agrees(engine: Engine, reference: Engine) -> bool:
    """Both engines give the same features (cosine >= 0.9999) on a fixed random batch."""
    x = np.random.default_rng(0).uniform(-1, 1, (2, 3, 224, 224)).astype(np.float32)
    a, b = engine.features(x), reference.features(x)
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return bool(np.all(cos >= 0.9999))
