"""The app tier's server: the real app in this process, one per test module, on a free port."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    os.environ["GRADIO_TEMP_DIR"] = str(tmp_path_factory.mktemp("gradio-tmp"))
    import app

    demo = app.build_app()
    options = {**app.launch_options(), "server_name": "127.0.0.1", "server_port": None}
    _, local_url, _ = demo.queue(default_concurrency_limit=2).launch(
        prevent_thread_lock=True, quiet=True, **options
    )
    yield local_url
    demo.close()
