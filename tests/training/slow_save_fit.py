"""``pconv fit`` whose checkpoint writes stop half-way for a while (for the SIGKILL test):
half of the bytes are written and flushed, a line says so on stderr, then it sleeps."""

import io
import sys
import time

import torch

HALF_WRITTEN = "checkpoint half-written"
_save = torch.save


def half_then_sleep(obj, file, *args, **kwargs):
    buffer = io.BytesIO()
    _save(obj, buffer, *args, **kwargs)
    data = buffer.getvalue()
    file.write(data[: len(data) // 2])
    file.flush()
    print(HALF_WRITTEN, file=sys.stderr, flush=True)
    time.sleep(60)
    file.write(data[len(data) // 2 :])


if __name__ == "__main__":
    torch.save = half_then_sleep
    from pconv.cli import main

    sys.exit(main())
