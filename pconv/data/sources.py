"""The image sources a config names: ``data.source`` is one of :data:`SOURCE_KINDS`.

The one registry of source kinds. The sources themselves (:mod:`pconv.data.images`,
:mod:`pconv.data.samples`, :mod:`pconv.data.shards`) do not import it back.
"""

from __future__ import annotations

from pconv.data.images import DataSourceError, ImageSource, file_list, image_folder

#: The source kinds :func:`open_image_source` knows.
SOURCE_KINDS = ("samples", "imagefolder", "folder", "filelist", "shards")


def open_image_source(kind: str, root: str | None = None, split: str | None = None) -> ImageSource:
    """The image source of a config: ``kind`` is one of :data:`SOURCE_KINDS`.

    ``split`` selects the sub-folder of ``imagefolder`` and ``shards`` roots and the photos
    of ``samples`` (:data:`pconv.data.samples.SAMPLE_SPLITS`: training or held-out photos);
    it is ignored by the flat sources (``folder``, ``filelist``).
    """
    if kind not in SOURCE_KINDS:
        raise DataSourceError(f"unknown image source {kind!r}; valid: {', '.join(SOURCE_KINDS)}")
    if kind == "samples":
        # Imported here: skimage is slow to import and only this source needs it.
        from pconv.data.samples import sample_source

        return sample_source(split)
    if root is None:
        raise DataSourceError(
            f"image source {kind!r} needs `root` (a path{' or URL' * (kind == 'shards')})"
        )
    if kind == "shards":
        # Imported here: litdata is only needed for shards.
        from pconv.data.shards import ShardImageSource

        return ShardImageSource(root, split)
    if kind == "filelist":
        return file_list(root)
    return image_folder(root, split if kind == "imagefolder" else None)
