"""A folder served over HTTP on 127.0.0.1, quietly (refusal tests read stderr)."""

from __future__ import annotations

import contextlib
import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # stderr is what refusals are checked on
        pass


@contextlib.contextmanager
def serving(folder: str | Path) -> Iterator[str]:
    """Serve ``folder`` while the block runs; yields its base URL (``http://127.0.0.1:PORT``)."""
    handler = functools.partial(QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
