"""Evaluation: the paper-style per-bucket report, classical baselines and the fixed mask set.

- :mod:`~pconv.evaluation.cli`: ``pconv evaluate``;
- :mod:`~pconv.evaluation.loop`: :func:`~pconv.evaluation.loop.evaluate`, every method on a track;
- :mod:`~pconv.evaluation.report`: the report's rows, tables, charts and files;
- :mod:`~pconv.evaluation.tracks`: the paper (bucket × border) and LaMa (thin/medium/thick)
  tracks and their fixed masks;
- :mod:`~pconv.evaluation.baselines`: OpenCV Telea and Navier–Stokes, mean fill;
- :mod:`~pconv.evaluation.optional_metrics`: LPIPS and FID when their weights are cached;
- :mod:`~pconv.evaluation.mask_export`: ``pconv masks export``;
- :mod:`~pconv.evaluation.plots`: charts and image grids drawn with Pillow.
"""
