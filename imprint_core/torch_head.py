"""A fitted imprinted head as a ``torch.nn.Module``, to put on top of one's own backbone."""

from __future__ import annotations

import torch
from torch import nn

from .aggregation import MAHALANOBIS_RIDGE, VOTE_EPS


class ImprintHead(nn.Module):
    """Maps embeddings (n, d) to class scores (n, C), exactly as ``class_scores`` does.

    ``forward(x).argmax(1)`` indexes ``classes``. Buffers move with ``.to(device)``.
    """

    def __init__(
        self,
        proxies: torch.Tensor,
        proxy_class: torch.Tensor,
        classes: list,
        *,
        norm_inf: str = "l2",
        agg: str = "max",
        distance: str = "inner_product",
        m: int = 1,
        weighting: str = "uniform",
        temperature: float = 0.05,
        whitener=None,
    ):
        super().__init__()
        if whitener is not None:
            self.register_buffer("w_mean", torch.as_tensor(whitener.mean, dtype=torch.float32))
            self.register_buffer("w_matrix", torch.as_tensor(whitener.matrix, dtype=torch.float32))
        self.register_buffer("proxies", proxies.float())
        self.register_buffer("proxy_class", proxy_class.long())
        self.classes = list(classes)
        self.norm_inf, self.agg, self.distance = norm_inf, agg, distance
        self.m, self.weighting, self.temperature = int(m), weighting, float(temperature)
        if distance == "mahalanobis":
            W = self.proxies.double()
            cov = torch.cov(W.T)
            cov += MAHALANOBIS_RIDGE * torch.eye(cov.shape[0], dtype=cov.dtype)
            # kept in float64: with fewer proxies than dimensions VI is very ill-conditioned
            self.register_buffer("vi", torch.linalg.inv(cov))

    @classmethod
    def from_classifier(cls, clf) -> ImprintHead:
        return cls(
            torch.from_numpy(clf.proxies_.copy()),
            torch.from_numpy(clf.proxy_class_index_),
            [c.item() if hasattr(c, "item") else c for c in clf.classes_],
            norm_inf=clf.norm_inf,
            agg=clf.agg,
            distance=clf.distance,
            m=clf.m,
            weighting=clf.weighting,
            temperature=clf.temperature,
            whitener=getattr(clf, "whitener_", None),
        )

    def _distances(self, z: torch.Tensor) -> torch.Tensor:
        W = self.proxies.to(z.dtype)
        if self.distance == "inner_product":
            return -(z @ W.T)
        if self.distance == "cosine":
            return 1 - nn.functional.normalize(z, dim=1) @ nn.functional.normalize(W, dim=1).T
        if self.distance == "euclidean":
            return torch.cdist(z, W)
        if self.distance == "manhattan":
            return torch.cdist(z, W, p=1)
        diff = z.double()[:, None, :] - self.proxies.double()[None, :, :]
        d2 = torch.einsum("npd,de,npe->np", diff, self.vi, diff)
        return d2.clamp_min(0).sqrt().to(z.dtype)

    def _per_class_best(self, values: torch.Tensor) -> torch.Tensor:
        C = len(self.classes)
        idx = self.proxy_class.expand(values.shape[0], -1)
        out = torch.full((values.shape[0], C), -torch.inf, dtype=values.dtype, device=values.device)
        return out.scatter_reduce(1, idx, values, reduce="amax", include_self=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.norm_inf == "whiten":
            z = nn.functional.normalize(x, dim=1, eps=1e-12) - self.w_mean.to(x.dtype)
            z = nn.functional.normalize(z @ self.w_matrix.to(x.dtype), dim=1, eps=1e-12)
        else:
            z = nn.functional.normalize(x, dim=1, eps=1e-12) if self.norm_inf == "l2" else x
        if self.agg == "max" and self.distance == "inner_product":
            return self._per_class_best(z @ self.proxies.to(z.dtype).T)
        D = self._distances(z)
        m = 1 if self.agg == "max" else min(self.m, D.shape[1])
        if m == 1:
            return self._per_class_best(-D)
        d_near, nearest = torch.topk(D, m, dim=1, largest=False, sorted=True)
        if self.weighting == "distance":
            if self.distance == "inner_product":
                d_near = d_near - D.min(dim=1, keepdim=True).values
            w = 1.0 / (d_near + VOTE_EPS)
        else:
            w = torch.ones_like(d_near)
        votes = torch.zeros(D.shape[0], len(self.classes), dtype=w.dtype, device=w.device)
        votes.scatter_add_(1, self.proxy_class[nearest], w)
        return votes / votes.sum(dim=1, keepdim=True)

    @torch.no_grad()
    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.forward(x).double() / self.temperature, dim=1)
