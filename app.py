"""IMPRINT: teach an image classifier with a few images per class, try it, export it.

The entry point only: ``python app.py`` serves the app (imprint_core.ui) on http://127.0.0.1:7860;
on Hugging Face Spaces GRADIO_SERVER_NAME / GRADIO_SERVER_PORT apply.
"""

from __future__ import annotations

import os

# Quiet offline: set before gradio is imported (gradio reads them at import time).
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from imprint_core.ui import build_app, launch_options, main  # noqa: E402

__all__ = ["build_app", "launch_options", "main"]

if __name__ == "__main__":
    main()
