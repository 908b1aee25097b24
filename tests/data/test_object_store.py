"""``pconv prepare -o s3://…`` against a loopback S3 server (moto): shards land in the bucket
and stream back; a missing bucket, refused credentials, an unreachable endpoint or existing
shards are refused in one line (exit 2) before any object is written."""

from __future__ import annotations

import pytest
from conftest import write_rgb
from refusals import assert_refused, bucket_digests, digests

from pconv.data.prepare import main
from pconv.data.shards import ShardImageSource

WORKERS = ["--workers", "1"]


@pytest.fixture
def imagenet(tmp_path, photos):
    root = tmp_path / "imagenet"
    for split, names in (("train", list(photos)[:3]), ("val", list(photos)[3:])):
        for name in names:
            write_rgb(root / split / "c0" / f"{name}.png", photos[name])
    return root


def test_prepare_writes_shards_to_a_bucket_that_stream_back(imagenet, s3_bucket, photos):
    url = f"s3://{s3_bucket}/imagenet"
    assert main(["imagefolder", str(imagenet), "-o", url, *WORKERS]) == 0
    keys = set(bucket_digests(s3_bucket))
    assert {"imagenet/train/index.json", "imagenet/val/index.json"} <= keys
    train = ShardImageSource(url, "train")
    assert len(train) == 3
    assert sorted(train.name(i) for i in range(3)) == sorted(
        str(imagenet / "train" / "c0" / f"{name}.png") for name in list(photos)[:3]
    )
    for i in range(3):  # lossless PNG in, JPEG q95 shards out (mean error ~3 levels)
        name = train.name(i).rsplit("/", 1)[-1][:-4]
        assert abs(train.load(i).astype(int) - photos[name]).mean() < 4


def test_existing_shards_in_a_bucket_need_overwrite(imagenet, s3_bucket, capsys):
    url = f"s3://{s3_bucket}/imagenet"
    assert main(["imagefolder", str(imagenet), "-o", url, *WORKERS]) == 0
    before = bucket_digests(s3_bucket)
    assert_refused(
        main, ["imagefolder", imagenet, "-o", url, *WORKERS],
        f"{url}/train already holds shards; pass --overwrite", capsys, imagenet,
    )  # fmt: skip
    assert bucket_digests(s3_bucket) == before


def test_missing_bucket_is_one_line(imagenet, s3_bucket, capsys):
    before = bucket_digests(s3_bucket)
    line = assert_refused(
        main, ["imagefolder", imagenet, "-o", "s3://no-such-bucket/x", *WORKERS],
        "bucket 'no-such-bucket' does not exist at http://127.0.0.1:", capsys, imagenet,
    )  # fmt: skip
    assert line.startswith("pconv prepare: s3://no-such-bucket/x/train: ")
    assert bucket_digests(s3_bucket) == before


def test_refused_credentials_are_one_line(imagenet, s3_bucket, s3_wrong_keys, capsys):
    assert_refused(
        main, ["imagefolder", imagenet, "-o", f"s3://{s3_bucket}/x", *WORKERS],
        "refused the credentials (403); set AWS_ACCESS_KEY_ID", capsys, imagenet,
    )  # fmt: skip


def test_unreachable_endpoint_is_one_line(imagenet, tmp_path, s3_unreachable, capsys):
    before = digests(tmp_path)
    assert_refused(
        main, ["imagefolder", imagenet, "-o", "s3://bucket/x", *WORKERS],
        f"s3://bucket/x/train: cannot reach {s3_unreachable}; check AWS_ENDPOINT_URL", capsys,
        tmp_path,
    )  # fmt: skip
    assert digests(tmp_path) == before
