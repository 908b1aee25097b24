"""Staging folders and folder locks: a run that is killed leaves nothing that blocks or piles
up, and a run still going is never disturbed."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from pconv.utils.files import atomic_write, check_writable, remove_stale_staging, staging_folder
from pconv.utils.lock import FolderBusyError, folder_lock

HOLD = """
import sys, time
from pconv.utils.lock import try_lock
assert try_lock(sys.argv[1]) is not None
print("held", flush=True)
time.sleep(60)
"""


def hold_in_another_process(folder):
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout.readline() == "held\n"
    return process


def test_a_folder_held_by_a_live_process_is_refused_and_freed_by_its_death(tmp_path):
    process = hold_in_another_process(tmp_path)
    try:
        busy = pytest.raises(FolderBusyError, match=f"{tmp_path} is in use by pconv evaluate")
        with busy, folder_lock(tmp_path, "pconv evaluate"):
            pass
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    with folder_lock(tmp_path):  # SIGKILL released it
        pass


def test_staging_folders_of_live_runs_stay_and_those_of_killed_runs_go(tmp_path):
    destination = tmp_path / "train"
    live = tmp_path / ".train.aaaaaaaa.partial"
    dead = tmp_path / ".train.bbbbbbbb.partial"
    other = tmp_path / ".val.cccccccc.partial"  # another destination's: not ours to judge
    for folder in (live, dead, other):
        folder.mkdir()
        atomic_write(folder / "chunk.bin", b"data")
    process = hold_in_another_process(live)
    killed = hold_in_another_process(dead)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    try:
        assert remove_stale_staging(destination) == [dead]
        with staging_folder(destination) as staging:
            assert staging.name.startswith(".train.") and staging.name.endswith(".partial")
            assert remove_stale_staging(destination) == []  # held by this run
        assert not staging.exists()
        assert sorted(p.name for p in tmp_path.iterdir()) == [live.name, other.name]
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()


def test_check_writable_names_the_folder_and_leaves_nothing(tmp_path):
    check_writable(tmp_path)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(OSError, match="cannot write into /sys/kernel: "):
        check_writable("/sys/kernel")
