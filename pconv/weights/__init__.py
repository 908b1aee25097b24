"""Weights in and out: checkpoints, safetensors, the Hugging Face Hub, URLs, pretrained weights.

One package owns reading and writing network weights, so training, evaluation, inference,
export and the hub share one set of checks and one set of messages:

- :mod:`~pconv.weights.errors`: :class:`CheckpointError`, :class:`WeightsUnavailableError`;
- :mod:`~pconv.weights.checkpoints`: Lightning checkpoints (read, check, newest);
- :mod:`~pconv.weights.architecture`: a file's architecture record, checked against a schema
  and against the file's tensor shapes before anything is imported or built;
- :mod:`~pconv.weights.safetensors_pair`: ``.safetensors`` with its architecture (metadata or
  JSON);
- :mod:`~pconv.weights.download`, :mod:`~pconv.weights.hub`: URLs and hub repos;
- :mod:`~pconv.weights.named`, :mod:`~pconv.weights.mmagic`: published networks by name,
  converted from mmagic's layout;
- :mod:`~pconv.weights.load`: any weights spec to a file and a network;
- :mod:`~pconv.weights.pretrained`: VGG-16, LPIPS and FID weights, ``pconv weights``;
- :mod:`~pconv.weights.export`, :mod:`~pconv.weights.push`: ``pconv export``, ``pconv push``.

A **weights spec** names a trained network in any of these forms (:func:`load_network`):

- ``run/last.ckpt``: a Lightning checkpoint written by ``pconv fit`` (weights-only unpickling);
- ``model.safetensors``: written by ``pconv export --format safetensors``, the weights with
  the architecture in their metadata and in ``model.json`` next to them (or ``config.json``,
  the hub's name; older files need it); a folder holding such a pair works too. Loading it
  never unpickles anything;
- ``mmagic-places2``, ``mmagic-celeba``: published networks, fetched and converted once
  (:mod:`~pconv.weights.named`);
- ``hf://user/name[@revision]``: a repo pushed by ``pconv push``, through the hub's cache;
- ``https://host/file.ckpt[#sha256=HEX]``: downloaded once into the torch cache
  (``$TORCH_HOME/hub/checkpoints``, keyed by a hash of the whole URL) with a progress bar; the
  hash, when given, is checked, and a file that fails the architecture checks is not kept.

Heavy libraries (torch, safetensors, huggingface_hub) are imported on first use, so the
command line's ``--help`` stays quick.
"""

from pconv.weights.checkpoints import newest_checkpoint, read_checkpoint
from pconv.weights.errors import CheckpointError, WeightsUnavailableError
from pconv.weights.load import load_network, load_weights_into, resolve
from pconv.weights.safetensors_pair import save_safetensors

__all__ = [
    "CheckpointError",
    "WeightsUnavailableError",
    "load_network",
    "load_weights_into",
    "newest_checkpoint",
    "read_checkpoint",
    "resolve",
    "save_safetensors",
]
