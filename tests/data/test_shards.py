from pathlib import Path

import numpy as np
import pytest
from conftest import paper_bucket, write_rgb
from litdata import StreamingDataLoader
from litdata.utilities.env import _DistributedEnv

from pconv.data import InpaintingDataModule
from pconv.data.images import DataSourceError, UnreadableImageWarning, image_folder, read_image
from pconv.data.masks import make_mask_generator
from pconv.data.prepare import _encode_item, prepare
from pconv.data.shards import ShardImageSource, item_name, streaming_train_dataset
from pconv.data.transforms import train_transform

N_JPEG = 7  # plus one PNG: 8 readable images


@pytest.fixture(scope="module")
def folder(tmp_path_factory, photos):
    """root/train/<class>/ with 7 JPEGs, 1 PNG and 1 corrupt file."""
    root = tmp_path_factory.mktemp("images")
    names = list(photos)
    for i in range(N_JPEG):
        image = np.roll(photos[names[i % len(names)]], 11 * i, axis=1)  # all different
        write_rgb(root / "train" / f"c{i % 2}" / f"img{i}.jpg", image)
    write_rgb(root / "train" / "c0" / "img7.png", photos["coffee"])
    (root / "train" / "c1" / "broken.jpg").write_bytes(b"\xff\xd8 not really")
    return root


@pytest.fixture(scope="module")
def shards(tmp_path_factory, folder):
    output = tmp_path_factory.mktemp("shards")
    with pytest.warns(UnreadableImageWarning) as record:
        prepare("imagefolder", str(folder), str(output), "train", num_workers=2)
    return output, [str(w.message) for w in record]


def test_prepare_skips_and_counts_unreadable_files(shards, folder):
    _, messages = shards  # per-file warnings come from litdata's worker processes
    assert any("1 of 9 images were unreadable" in m for m in messages)
    source = image_folder(folder, "train")
    broken = [source.name(i) for i in range(len(source))].index(str(folder / "train/c1/broken.jpg"))
    with pytest.warns(UnreadableImageWarning, match="skipping unreadable image .*broken.jpg"):
        assert list(_encode_item(source, None, broken)) == []


def test_shards_hold_original_jpeg_bytes_and_encoded_pngs(shards, folder):
    output, _ = shards
    source = ShardImageSource(str(output), "train")
    assert len(source) == N_JPEG + 1
    names = sorted(source.name(i) for i in range(len(source)))
    expected = sorted(str(p) for p in (folder / "train").rglob("img*"))
    assert names == expected
    for i in range(len(source)):
        item = source.dataset[i]
        path = item_name(item)
        if path.endswith(".jpg"):
            assert bytes(item["image"]) == Path(path).read_bytes()
        else:  # re-encoded as JPEG
            assert bytes(item["image"])[:2] == b"\xff\xd8"
        assert np.abs(source.load(i).astype(int) - read_image(path)).mean() < 4  # 4:2:0 chroma


def name_only(item: dict, epoch: int, index: int) -> str:
    return item_name(item)


def names_of_rank(shard_dir: str, rank: int, world_size: int, num_workers: int) -> list[str]:
    dataset = streaming_train_dataset(
        shard_dir, "train", train_transform(32), make_mask_generator("paper"), 32
    )
    dataset.sample = name_only  # identify items instead of making samples
    dataset.distributed_env = _DistributedEnv(world_size, rank, 1)
    loader = StreamingDataLoader(dataset, batch_size=1, num_workers=num_workers)
    return [name for batch in loader for name in batch]


def test_two_ranks_and_workers_stream_disjoint_and_complete_parts(shards):
    output, _ = shards
    parts = [names_of_rank(str(output), rank, 2, num_workers=2) for rank in range(2)]
    assert len(parts[0]) == len(parts[1]) == (N_JPEG + 1) // 2
    assert not set(parts[0]) & set(parts[1])
    assert len(set(parts[0]) | set(parts[1])) == N_JPEG + 1


def test_resumed_loader_continues_where_it_stopped(shards):
    output, _ = shards

    def loader():
        dataset = streaming_train_dataset(
            str(output), "train", train_transform(32), make_mask_generator("paper"), 32
        )
        dataset.sample = name_only
        return StreamingDataLoader(dataset, batch_size=2, num_workers=0)

    first = loader()
    iterator = iter(first)
    seen = [name for _ in range(2) for name in next(iterator)]
    state = first.state_dict()
    resumed = loader()
    resumed.load_state_dict(state)
    rest = [name for batch in resumed for name in batch]
    assert len(rest) == N_JPEG + 1 - len(seen)
    assert sorted(seen + rest) == sorted(set(seen + rest))


def test_datamodule_streams_shards(shards):
    output, _ = shards
    dm = InpaintingDataModule(
        source="shards", root=str(output), val_split="train", image_size=32, batch_size=4,
        num_workers=0, val_masks_per_bucket=1,
    )  # fmt: skip
    dm.setup("fit")
    loader = dm.train_dataloader()
    assert isinstance(loader, StreamingDataLoader)
    batches = list(loader)
    assert len(batches) == 2
    batch = batches[0]
    assert batch["image"].shape == (4, 3, 32, 32) and batch["mask"].shape == (4, 1, 32, 32)
    ratios = 1 - batch["mask"].mean(dim=(1, 2, 3))
    assert [paper_bucket(r) for r in ratios.tolist()] == batch["bucket"].tolist()
    val = next(iter(dm.val_dataloader()))
    assert val["bucket"].tolist() == [0, 1, 2, 3]


def test_missing_shards_say_what_to_do(tmp_path):
    dm = InpaintingDataModule(source="shards", root=str(tmp_path))
    with pytest.raises(DataSourceError, match=f"no LitData shards at {tmp_path}/train.*prepare"):
        dm.setup("fit")


def test_prepare_command_refuses_to_overwrite_and_names_bad_roots(shards, tmp_path, capsys):
    from pconv.data.prepare import main

    output, _ = shards
    assert main(["samples", "-o", str(output), "--splits", "train"]) == 2
    assert "already holds shards; pass --overwrite" in capsys.readouterr().err
    assert main(["imagefolder", str(tmp_path / "missing"), "-o", str(tmp_path / "s")]) == 2
    assert str(tmp_path / "missing") in capsys.readouterr().err


def names_in_order(shard_dir: str, seed: int) -> list[str]:
    dataset = streaming_train_dataset(
        shard_dir, "train", train_transform(32), make_mask_generator("paper"), 32, seed=seed
    )
    dataset.sample = name_only
    return [name for batch in StreamingDataLoader(dataset, batch_size=1) for name in batch]


def test_the_shuffle_follows_the_run_seed(shards):
    output, _ = shards
    orders = {seed: names_in_order(str(output), seed) for seed in range(4)}
    assert orders[0] == names_in_order(str(output), 0)  # a function of the seed
    assert len({tuple(order) for order in orders.values()}) > 1  # not LitData's fixed 42


def test_a_resume_with_another_worker_count_is_refused_in_one_line(shards):
    from pconv.data.shards import ResumableStreamingLoader

    output, _ = shards
    dataset = streaming_train_dataset(
        str(output), "train", train_transform(32), make_mask_generator("paper"), 32
    )
    loaders = [
        ResumableStreamingLoader(dataset, lambda: 1, batch_size=2, num_workers=workers)
        for workers in (2, 0)
    ]
    state = loaders[0].state_dict()
    with pytest.raises(DataSourceError, match=r"2 loader worker\(s\).*data.num_workers=2$"):
        loaders[1].load_state_dict(state)
    loaders[0].load_state_dict(state)  # the same count resumes
