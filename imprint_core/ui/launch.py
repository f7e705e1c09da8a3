"""Launch options and the process's life: start-up sweep, clean stop on SIGTERM."""

from __future__ import annotations

import logging

from imprint_core import session as pj

log = logging.getLogger("imprint.app")

# Contrast of at least 4.5:1 (WCAG AA) for every text: the default theme's softer grey (help
# text, footer) is 1.9:1 on white, white on its orange buttons 2.8:1 and on its red ones 3.8:1.
# The variables are set on body, below the theme's :root, so they win without !important.
CSS = """
body {
  --body-text-color-subdued: #5f5f69; --block-info-text-color: #5f5f69;
  --button-primary-background-fill: #c2410c; --button-primary-background-fill-hover: #9a3412;
  --button-cancel-background-fill: #b91c1c; --button-cancel-background-fill-hover: #991b1b;
  --color-accent: #c2410c;
}
.dark {--body-text-color-subdued: #b4b4bd; --block-info-text-color: #b4b4bd;}
/* the code boxes' syntax colours (2.8:1 and 4.0:1 on white): plain text colour instead */
.cm-content span {color: var(--body-text-color) !important;}
.burst-note {margin: 4px 6px; font-size: var(--text-sm);}
.class-card {border: 1px solid var(--border-color-primary); border-radius: 10px; padding: 6px;}
.drop-zone {min-height: 90px;}
#status {min-height: 1.5em;}
@media (max-width: 480px) {#evidence table * {font-size: 11px !important;}}  /* 4 columns on a phone */
.thumbs button[aria-label='Clear'] {display: none;}  /* no event to learn of it: the card has Clear */
/* a button inside a button (Gradio's), unusable by keyboard: the card's drop zone adds images */
.thumbs button[aria-label='Click to Upload'] {display: none;}
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
// Accessibility of Gradio's own parts, patched as they appear: an empty file / plot / gallery box
// carries an aria-label without a role (an image placeholder: role img), and a scrolled text
// text box must be reachable by keyboard (tabindex 0); an upload zone is named by the words it shows
// ("Drop File Here - or - Click to Upload"), not by a different aria-label.
// Run once per frame, not at every mutation: each run reads layout (scrollHeight, innerText), and
// one Try it answer makes dozens of mutations.
let imprintPatchQueued = false;
const imprintPatch = () => {
  imprintPatchQueued = false;
  document.querySelectorAll(".empty[aria-label]:not([role])").forEach(
    (el) => el.setAttribute("role", "img"));
  document.querySelectorAll("[id$='-text']:not([tabindex]), [id$='-note']:not([tabindex])")
    .forEach((el) => {
      if (el.scrollHeight > el.clientHeight + 1) el.setAttribute("tabindex", "0");
    });
  document.querySelectorAll(".cm-scroller:not([tabindex='0'])").forEach(
    (el) => el.setAttribute("tabindex", "0"));  // a code box (CodeMirror says -1) scrolls
  document.querySelectorAll("[aria-dropeffect][aria-label]").forEach((el) => {
    if (el.innerText.trim()) el.removeAttribute("aria-label");
  });
};
new MutationObserver(() => {
  if (!imprintPatchQueued) {
    imprintPatchQueued = true;
    requestAnimationFrame(imprintPatch);
  }
}).observe(document.documentElement, {childList: true, subtree: true});
// Keyboard focus stays in a class card when Gradio redraws the control that had it (a drop zone
// showing the files it uploads, then empty again; the webcam opening or taking a picture):
// otherwise focus falls to the page's body and a keyboard user starts again from the top. The
// control's replacement in the same box gets the focus (the drop target first), else the card.
// An element has lost :focus-visible by its focusout, so the keyboard's last target is noted here.
let imprintKeyboard = null;
let imprintKeep = null;  // the element this handler focused: its own redraw is followed too
document.addEventListener("focusin", (event) => {
  imprintKeyboard = event.target.matches?.(":focus-visible") ? event.target : null;
}, true);
document.addEventListener("focusout", (event) => {
  const gone = event.target;
  const box = gone.closest?.(".class-card [id^='drop-'], .class-card [id^='cam-']");
  if (event.relatedTarget || !box || (gone !== imprintKeyboard && gone !== imprintKeep)) return;
  const card = box.closest(".class-card");
  const started = performance.now();
  const shown = (el) => el.checkVisibility();
  const settle = () => {
    const now = document.activeElement;
    if (now && now !== document.body) return;  // still focused (window blur), or moved on
    if (gone.isConnected && shown(gone)) return;  // not redrawn: the user left it (a click)
    const next = [...box.querySelectorAll("[aria-dropeffect]")].find(shown)
      || [...box.querySelectorAll("button")].find(shown);
    if (next) {
      imprintKeep = next;
      next.focus({preventScroll: true});
    } else if (performance.now() - started < 5000 && box.isConnected) {
      requestAnimationFrame(settle);
    } else if (card?.isConnected) {
      card.setAttribute("tabindex", "-1");
      card.focus({preventScroll: true});
    }
  };
  requestAnimationFrame(settle);
}, true);
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


class UploadCap:
    """ASGI middleware in front of Gradio's ``/gradio_api/upload``: an upload is admitted only
    if Gradio's upload cache has room for it (``session.UploadCacheGuard``: anonymous uploads
    together may hold ``IMPRINT_UPLOAD_CACHE_MB``; Gradio caps only each file). A refusal (507,
    or 411 without a Content-Length) is sent before the body is read, so it leaves no file."""

    def __init__(self, app, guard=None) -> None:
        self.app = app
        self.guard = guard or pj.UploadCacheGuard()

    async def __call__(self, scope, receive, send) -> None:
        is_upload = (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"].rstrip("/").endswith("/gradio_api/upload")
        )
        if is_upload:
            refusal = await self._refusal(dict(scope["headers"]).get(b"content-length"))
            if refusal is not None:
                from starlette.responses import PlainTextResponse

                log.warning("upload refused: %s", refusal[1])
                await PlainTextResponse(refusal[1], status_code=refusal[0])(scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _refusal(self, length: bytes | None) -> tuple[int, str] | None:
        import asyncio

        if length is None or not length.isdigit():
            return 411, "An upload must say its size (a Content-Length header)."
        if self.guard.admit_known(int(length)):  # a recent scan says there is room
            return None
        # the cache is scanned on disk: off the event loop
        sentence = await asyncio.to_thread(self.guard.admit, int(length))
        return None if sentence is None else (507, sentence)


def launch_options() -> dict:
    """launch() arguments shared by ``python app.py`` and the tests."""
    from starlette.middleware import Middleware

    host, port = pj.server_address()
    return {
        "server_name": host,
        "server_port": port,
        "ssr_mode": False,
        "share": False,
        "max_file_size": pj.MAX_UPLOAD_MB * 1024 * 1024,
        "css": CSS,
        "head": FOLDER_PATHS_JS,
        "app_kwargs": {
            "exception_handlers": {KeyError: _stale_event},
            "middleware": [Middleware(UploadCap)],
        },
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
    cached = pj.sweep_upload_cache()
    if cached:
        log.info("removed %d upload-cache files left by an earlier run", cached)
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
