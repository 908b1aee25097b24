"""pconv: image inpainting with partial convolutions (Liu et al., ECCV 2018)."""

import os

# albumentations checks PyPI for updates on import unless told not to; never do that.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

__version__ = "0.1.0"
