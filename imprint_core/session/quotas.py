"""Limits on the app's entry points and on a session's life (stated in docs/app.md).

The per-image and per-project limits of intake live in ``limits.py``; these bound what one
request or one session may ask for on top of them.
"""

from __future__ import annotations

import os

MAX_PREDICT_FILES = 20  # "Classify several images": files in one request
MAX_PILE_IMAGES = 2000  # "Sort images": images in one pile (files, or a zip's members)
PILE_UNSURE = 6  # "Sort images": the least-sure images offered for correction
MAX_HEAD_MB = 20  # a head file to load (a 20-class, 50-proxy, 1,280-d head is ~5 MB)
SESSION_TTL_S = 4 * 3600  # a project (and its stored images) is dropped after 4 idle hours
UPLOAD_CACHE_AGE_S = 3600  # Gradio's upload cache: files older than this are swept (build.py)
WORKDIR_PREFIX = "imprint-project-"  # a session's folder of stored images in the temp folder
# A session's downloads are written in a folder of Gradio's upload cache, which Gradio serves
# without making a copy of each (a copy per download piled up until the hourly sweep); one file
# of each kind, a new one replacing the last (session/downloads.py).
DOWNLOADS_PREFIX = "imprint-downloads-"
# Disk: a session's files against config.session_disk_mb(), Gradio's upload cache against
# config.upload_cache_mb() (session/disk.py). Past the cache's cap an upload first deletes the
# cache's oldest files older than UPLOAD_CACHE_GRACE_S (an upload is read by its event within
# seconds) and is refused when that does not make room; an admitted upload counts for
# UPLOAD_RESERVE_S before the scan of the folder sees it (uploads sent at once all count).
UPLOAD_CACHE_GRACE_S = 60
UPLOAD_RESERVE_S = 10
# The folder is scanned again only when the last scan is older than UPLOAD_RESCAN_S or it plus
# the uploads admitted since leaves no room: a scan before every upload made one cost 32.7 ms
# after a few sessions (5.1 ms without), over 1 s of a 40-file /imprint. (< UPLOAD_RESERVE_S:
# every upload admitted since the scan still counts.)
UPLOAD_RESCAN_S = 2
# Heavy work runs in turns of one fair queue (scheduler.py): two turns at a time (2 cores; a
# 40-megapixel PNG decodes on one of them), at most one per session, handed to the waiting session
# that used the least heavy time lately (seconds of turns, halved every USAGE_HALF_LIFE_S). A turn
# starts beside another session's only if its session used at most SHARE_RATIO times as much plus
# SHARE_FLOOR_S: a light session's turn (a few images, a prediction) gets the cores to itself.
# A turn is short: the images of one embedding batch, the images decoded in SLICE_S (or one
# large one), one (gen, k) of the accuracy-vs-k curve.
HEAVY_WORKERS = 2
USAGE_HALF_LIFE_S = 10.0
SHARE_RATIO = 4.0
SHARE_FLOOR_S = 1.0
# A session counts as running for SHARE_GRACE_S after its turn ends: the next turn of the same
# request (embedding after decoding, the fit after embedding) follows within milliseconds, and a
# heavy turn started in that gap would run beside it all along.
SHARE_GRACE_S = 0.15
# Inside its turn, an upload decodes this many images at a time (Pillow releases the GIL while
# decoding; a 12-megapixel JPEG takes ~40 ms on one core, most of an image's intake).
INTAKE_THREADS = max(1, min(2, os.cpu_count() or 1))
SLICE_IMAGES = 8  # images embedded per turn (one EMBED_BATCH: 0.2-0.6 s on 2 cores)
SLICE_S = 0.25  # images are decoded in one turn until it lasted this long
# Gradio's queue groups of heavy events: wide enough that requests wait in the fair queue
# (least-used session first) rather than in Gradio's (first come, first served); 64 events may
# wait in all.
HEAVY_CONCURRENCY = {"embed": 16, "predict": 16}
# The live camera: a frame is a webcam picture, small by nature. Checked from its header before
# decoding; each session's stream is answered at most LIVE_MAX_FPS times a second and for at
# most LIVE_MAX_STREAM_S seconds (a pause of LIVE_GAP_S seconds starts a new stream).
LIVE_MAX_FRAME_PIXELS = 4_000_000  # 2,560 x 1,440 is 3.7 megapixels
LIVE_MAX_FRAME_BYTES = 4 * 2**20  # the frame's data URL
LIVE_MAX_FPS = 4.0
LIVE_MAX_STREAM_S = 600
LIVE_GAP_S = 3.0
