"""Limits on the app's entry points and on a session's life (stated in docs/app.md).

The per-image and per-project limits of intake live in ``limits.py``; these bound what one
request or one session may ask for on top of them.
"""

from __future__ import annotations

MAX_PREDICT_FILES = 20  # "Classify several images": files in one request
MAX_PILE_IMAGES = 2000  # "Sort images": images in one pile (files, or a zip's members)
PILE_UNSURE = 6  # "Sort images": the least-sure images offered for correction
MAX_HEAD_MB = 20  # a head file to load (a 20-class, 50-proxy, 1,280-d head is ~5 MB)
SESSION_TTL_S = 4 * 3600  # a project (and its stored images) is dropped after 4 idle hours
UPLOAD_CACHE_AGE_S = 3600  # Gradio's upload cache: files older than this are swept (build.py)
WORKDIR_PREFIX = "imprint-project-"  # a session's folder of stored images in the temp folder
# Heavy work runs in turns of one fair queue (scheduler.py): two turns at a time (2 cores; a
# 40-megapixel PNG decodes on one of them), at most one per session, handed round-robin across
# sessions. A turn is short: the images of one embedding batch, the images decoded in SLICE_S
# (or one large one), one (gen, k) of the accuracy-vs-k curve.
HEAVY_WORKERS = 2
SLICE_IMAGES = 8  # images embedded per turn (one EMBED_BATCH: 0.2-0.6 s on 2 cores)
SLICE_S = 0.25  # images are decoded in one turn until it lasted this long
# Gradio's queue groups of heavy events: wide enough that requests wait in the fair queue
# (round-robin) rather than in Gradio's (first come, first served); 64 events may wait in all.
HEAVY_CONCURRENCY = {"embed": 16, "predict": 16}
# The live camera: a frame is a webcam picture, small by nature. Checked from its header before
# decoding; each session's stream is answered at most LIVE_MAX_FPS times a second and for at
# most LIVE_MAX_STREAM_S seconds (a pause of LIVE_GAP_S seconds starts a new stream).
LIVE_MAX_FRAME_PIXELS = 4_000_000  # 2,560 x 1,440 is 3.7 megapixels
LIVE_MAX_FRAME_BYTES = 4 * 2**20  # the frame's data URL
LIVE_MAX_FPS = 4.0
LIVE_MAX_STREAM_S = 600
LIVE_GAP_S = 3.0
