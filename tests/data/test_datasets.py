import cv2
import numpy as np
import pytest
import torch
from conftest import edge_has_hole, paper_bucket
from torch.utils.data import DataLoader, DistributedSampler

from pconv.data.datasets import EpochSampler, EvalDataset, TrainDataset
from pconv.data.images import image_folder
from pconv.data.mask_files import MaskFileSource
from pconv.data.masks import GeneratedEvalMasks, make_mask_generator
from pconv.data.samples import sample_source
from pconv.data.transforms import eval_transform, train_transform

SIZE = 64


def collect(dataset, sampler=None, num_workers=0, batch_size=4):
    loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers)
    batches = list(loader)
    tensors = [key for key in batches[0] if key != "skipped"]
    return {key: torch.cat([b[key] for b in batches]) for key in tensors}


def eval_set(length=24, seed=5):
    masks = GeneratedEvalMasks(seed, SIZE, "paper")
    return EvalDataset(sample_source(), eval_transform(SIZE), SIZE, length, masks)


def test_two_ranks_with_workers_split_the_eval_set_disjointly_and_completely():
    dataset = eval_set()
    reference = collect(dataset)
    seen = []
    for rank in range(2):
        sampler = DistributedSampler(dataset, num_replicas=2, rank=rank, shuffle=False)
        part = collect(dataset, sampler, num_workers=2, batch_size=3)
        seen.append(part["index"].tolist())
        # the same item on any rank/worker as in a single process
        for i, index in enumerate(part["index"].tolist()):
            assert torch.equal(part["mask"][i], reference["mask"][index])
            assert torch.equal(part["image"][i], reference["image"][index])
    assert not set(seen[0]) & set(seen[1])
    assert sorted(seen[0] + seen[1]) == list(range(len(dataset)))


def test_eval_items_follow_bucket_and_border_of_their_index():
    items = collect(eval_set())
    for index in range(24):
        mask = items["mask"][index, 0].numpy()
        ratio = float((mask == 0).mean())
        assert paper_bucket(ratio) == index % 6 == items["bucket"][index]
        assert edge_has_hole(mask) == ((index // 6) % 2 == 1) == bool(items["border"][index])
        assert items["hole_ratio"][index] == pytest.approx(ratio, abs=1e-6)


def test_eval_images_cycle_through_the_source():
    items = collect(eval_set(length=12))
    n = len(sample_source())
    assert torch.equal(items["image"][0], items["image"][n])
    assert not torch.equal(items["image"][0], items["image"][1])


def train_samples(seed: int, num_workers: int, rank: int = 0, epoch: int = 0) -> dict:
    dataset = TrainDataset(
        sample_source(), train_transform(SIZE), make_mask_generator("thin"), SIZE, 8, rank, seed
    )
    keys = [epoch * len(dataset) + i for i in range(len(dataset))]
    return collect(dataset, sampler=keys, num_workers=num_workers, batch_size=2)


def test_training_samples_are_a_function_of_seed_epoch_index_and_rank():
    first = train_samples(0, num_workers=2)
    for key in ("image", "mask"):
        # the worker count and the process history do not matter
        assert torch.equal(first[key], train_samples(0, num_workers=0)[key])
        assert not torch.equal(first[key], train_samples(1, num_workers=2)[key])
        assert not torch.equal(first[key], train_samples(0, num_workers=2, rank=1)[key])
        assert not torch.equal(first[key], train_samples(0, num_workers=2, epoch=1)[key])
    assert len({m.numpy().tobytes() for m in first["mask"]}) == len(first["mask"])


def test_epoch_sampler_resumes_at_a_batch_and_splits_ranks():
    batches_done = [0]
    sampler = EpochSampler(10, batch_size=2, seed=3, position=lambda: batches_done[0])
    epochs = [list(sampler) for batches_done[0] in (0, 5)]
    assert sorted(epochs[0]) == list(range(10))  # a permutation of the epoch
    assert sorted(epochs[1]) == list(range(10, 20))  # epoch 1, keyed 10 + index
    assert epochs[0] != [k - 10 for k in epochs[1]]  # reshuffled
    batches_done[0] = 7  # two batches into epoch 1
    assert list(sampler) == epochs[1][4:]
    # Epochs of 3 batches (limit_train_batches) cut the stream of passes of 5 batches: the
    # third epoch (batches 6-8) is batches 1-3 of pass 1.
    limited = EpochSampler(10, 2, 3, position=lambda: batches_done[0], epoch_batches=lambda: 3)
    batches_done[0] = 4  # the last batch of epoch 1: pass 0's batch 4, then pass 1's batch 0
    assert list(limited) == epochs[0][8:] + epochs[1][:2]
    batches_done[0] = 6
    assert list(limited) == epochs[1][2:8]
    ranks = [EpochSampler(10, 2, 3, num_replicas=2, rank=r) for r in range(2)]
    shares = [list(r) for r in ranks]
    assert [len(share) for share in shares] == [4, 4]  # 5 each, cut to whole batches
    assert not set(shares[0]) & set(shares[1])


def test_mask_file_black_is_hole_in_the_batch(tmp_path, photos):
    mask_dir = tmp_path / "masks"
    mask_dir.mkdir()
    file_image = np.full((128, 128), 255, np.uint8)
    file_image[16:48, 64:128] = 0  # black: hole
    cv2.imwrite(str(mask_dir / "m.png"), file_image)
    (tmp_path / "images").mkdir()
    for name, image in photos.items():
        cv2.imwrite(str(tmp_path / "images" / f"{name}.png"), image[:, :, ::-1])
    dataset = TrainDataset(
        image_folder(tmp_path / "images"),
        train_transform(SIZE),
        MaskFileSource(mask_dir, augment=False),
        SIZE,
    )
    batch = collect(dataset)
    expected = torch.ones(SIZE, SIZE)
    expected[8:24, 32:64] = 0
    assert torch.equal(batch["mask"][:, 0], expected.expand(len(photos), SIZE, SIZE))
    assert torch.allclose(batch["hole_ratio"], torch.full((len(photos),), 16 * 32 / SIZE**2))
    assert batch["border"].all()  # the hole reaches the right edge
    assert (batch["bucket"] == 1).all()  # 0.125 is in (0.1, 0.2]
