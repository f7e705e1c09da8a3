"""Launch options and the process's life: start-up sweep, clean stop on SIGTERM."""

from __future__ import annotations

import logging

from imprint_core import session as pj

log = logging.getLogger("imprint.app")

CSS = """
.class-card {border: 1px solid var(--border-color-primary); border-radius: 10px; padding: 6px;}
.drop-zone {min-height: 90px;}
#status {min-height: 1.5em;}
.thumbs button[aria-label='Clear'] {display: none;}  /* no event to learn of it: the card has Clear */
.prediction-panel .headline {font-size: 1.6em; font-weight: 700; margin: 2px 0 4px;}
.prediction-panel .headline.unknown {color: var(--color-red-600, #b91c1c);}
.prediction-panel .nearest {margin-bottom: 6px;}
.prediction-panel .bar {display: grid; grid-template-columns: minmax(5em, 30%) 1fr 5.5em;
  gap: 8px; align-items: center; margin: 3px 0;}
.prediction-panel .name {overflow-wrap: anywhere;}
.prediction-panel .track {background: var(--neutral-200, #e5e7eb); border-radius: 4px; height: 12px;}
.prediction-panel .fill {display: block; height: 100%; border-radius: 4px;
  background: var(--color-accent, #f97316);}
.prediction-panel .value {text-align: right; font-variant-numeric: tabular-nums;}
"""

# Browsers upload a picked folder's files under their bare names; this records each file's path
# inside the folder (the class folders) as the folder is picked, for teach.import_folder.
FOLDER_PATHS_JS = """<script>
document.addEventListener("change", (event) => {
  const input = event.target;
  if (input instanceof HTMLInputElement && input.webkitdirectory && input.files) {
    window.imprintFolderPaths = Array.from(input.files, (f) => f.webkitRelativePath || f.name);
  }
}, true);
</script>"""

STALE_EVENT = (
    "The class cards were being redrawn when you clicked, so the click was lost. "
    "Please do it again."
)


def _stale_event(request, exc: KeyError):
    """Answer an event for a handler that a re-render of the cards replaced.

    Gradio looks the handler up by number and lets the KeyError become a bare 500, which the page
    shows as "Could not parse server response"; a JSON ``detail`` is shown as it is.
    """
    from starlette.responses import JSONResponse, PlainTextResponse

    if request.url.path.rstrip("/").endswith("/queue/join"):
        log.warning("stale event: no handler %s (the cards were re-rendered)", exc)
        return JSONResponse({"detail": STALE_EVENT}, status_code=409)
    log.error("Unhandled error on %s", request.url.path, exc_info=exc)
    return PlainTextResponse("Internal Server Error", status_code=500)


def launch_options() -> dict:
    """launch() arguments shared by ``python app.py`` and the tests."""
    host, port = pj.server_address()
    return {
        "server_name": host,
        "server_port": port,
        "ssr_mode": False,
        "share": False,
        "max_file_size": pj.MAX_UPLOAD_MB * 1024 * 1024,
        "css": CSS,
        "head": FOLDER_PATHS_JS,
        "app_kwargs": {"exception_handlers": {KeyError: _stale_event}},
    }


def main() -> None:
    """``python app.py``: sweep dead runs' session folders, build, serve until SIGTERM."""
    import os
    import signal
    import time

    from .build import build_app

    started = time.time()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    swept = pj.sweep_workdirs()
    if swept:
        log.info("removed %d session folders left by an earlier run", len(swept))
    demo = build_app()

    def stop(signum, frame) -> None:
        # A clean stop deletes every session's stored images and exports, and the uploads and
        # downloads Gradio cached for this app (its own shutdown hook does not run when the
        # process is stopped by a signal); then the process ends at once.
        from gradio.route_utils import delete_files_created_by_app

        n = pj.close_all()
        delete_files_created_by_app(demo, age=None)
        pj.delete_upload_spools(since=started)
        log.info("stopped: deleted the files of %d sessions", n)
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    pj.start_warmup()  # background thread: the first page is served without waiting for it
    demo.queue(default_concurrency_limit=2, max_size=64).launch(**launch_options())
