"""Limits on the app's entry points and on a session's life (stated in docs/app.md).

The per-image and per-project limits of intake live in ``limits.py``; these bound what one
request or one session may ask for on top of them.
"""

from __future__ import annotations

MAX_PREDICT_FILES = 20  # "Classify several images": files in one request
MAX_HEAD_MB = 20  # a head file to load (a 20-class, 50-proxy, 1,280-d head is ~5 MB)
SESSION_TTL_S = 4 * 3600  # a project (and its stored images) is dropped after 4 idle hours
WORKDIR_PREFIX = "imprint-project-"  # a session's folder of stored images in the temp folder
# Heavy events share one queue slot per group, so one session's long request cannot take every
# worker: embedding (imprint, backbone change, the API's /imprint) and the per-image work
# (predictions, maps, the k-curve).
HEAVY_CONCURRENCY = {"embed": 1, "predict": 2}
