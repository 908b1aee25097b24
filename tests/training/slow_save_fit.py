"""``pconv fit`` on a slow disk (for the SIGKILL test): every checkpoint write to a file
stops half-way, with that half flushed, says so on stderr, and sleeps there.

Both ways a checkpoint reaches a file are slowed: ``torch.save`` straight into a file, and a
finished byte string written through fsspec (Lightning's own ``TorchCheckpointIO``).
"""

import io
import sys
import time

import torch
from fsspec.implementations.local import LocalFileOpener

HALF_WRITTEN = "checkpoint half-written"
_save, _write = torch.save, LocalFileOpener.write


def half_then_sleep(write, file, data: bytes) -> None:
    write(file, data[: len(data) // 2])
    file.flush()
    print(HALF_WRITTEN, file=sys.stderr, flush=True)
    time.sleep(60)
    write(file, data[len(data) // 2 :])


def slow_save(obj, file, *args, **kwargs):
    if isinstance(file, io.BytesIO):
        return _save(obj, file, *args, **kwargs)
    buffer = io.BytesIO()
    _save(obj, buffer, *args, **kwargs)
    half_then_sleep(type(file).write, file, buffer.getvalue())


def slow_write(self, data):
    if len(data) < 1000:  # not a checkpoint
        return _write(self, data)
    half_then_sleep(_write, self, bytes(data))
    return len(data)


if __name__ == "__main__":
    torch.save = slow_save
    LocalFileOpener.write = slow_write
    from pconv.cli import main

    sys.exit(main())
