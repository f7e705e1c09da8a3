"""The Gradio app: the only package (with ``app.py``) that imports gradio.

``build_app()`` assembles one module per tab (teach, method, result, try_it, geometry, export)
and the fixed API endpoints (api); ``launch`` holds the launch options and the process's life;
``errors`` turns a user's mistake into the page's message in one place; ``views`` shows every
view of the session after every event.
"""

from .build import build_app
from .launch import launch_options, main

__all__ = ["build_app", "launch_options", "main"]
