"""Names a user types on the command line, defined once for their heavy owners and the parsers.

The torch-free argument parsers (:mod:`pconv.utils.tool_args`) and the modules that own each
name (tracks, baselines, metrics, mask files) import them from here, so a parser never offers
a name that its owner lacks.
"""

#: Mask file values: black and white.
BLACK, WHITE = 0, 255
#: Mask file values that can mean hole (:mod:`pconv.data.nvidia_masks`, ``pconv inpaint``).
HOLE_VALUES = (BLACK, WHITE)
#: Evaluation tracks (:mod:`pconv.evaluation.tracks`).
TRACK_NAMES = ("paper", "lama")
#: Classical baselines (:mod:`pconv.evaluation.baselines`), in the order reports show them.
BASELINE_NAMES = ("telea", "ns", "mean")
#: LPIPS and FID (:mod:`pconv.evaluation.optional_metrics`).
OPTIONAL_METRICS = ("lpips", "fid")
