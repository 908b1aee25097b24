"""pconv.weights: reading checkpoints and rebuilding the network."""

import pytest

from pconv.weights import CheckpointError, load_network


def test_load_network_errors_name_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.ckpt"):
        load_network(tmp_path / "missing.ckpt")
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.ckpt"):
        load_network(junk)
