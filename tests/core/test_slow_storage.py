"""Loads from storage that reads at a known rate: the bar must move with the disk.

The model sits on an ext4 file system on a loop device; a cgroup (v1 blkio) limits reads of
that device to `RATE` bytes/s for the model hosts, which start inside it. The page cache is
dropped first, so every byte really comes through the limit. Needs root, loop devices and the
blkio controller (this project's machines and CI have them); elsewhere the tests skip and say
which is missing.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import statistics
import subprocess
from pathlib import Path

import pytest

from llm_desktop.core.demo import spec_for_size, write_demo_model
from llm_desktop.core.engine import Engine, LoadOptions
from llm_desktop.core.events import ProgressEvent, Stage

pytestmark = pytest.mark.slow

RATE = 40_000_000  # bytes/s
MODEL_MB = 160  # about four seconds at RATE
BLKIO = Path("/sys/fs/cgroup/blkio")
MAX_STILL_S = 1.0


def drop_page_cache() -> None:
    os.sync()
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


def _missing() -> str | None:
    if os.geteuid() != 0:
        return "needs root (loop device, mount, cgroup, dropping the page cache)"
    if not (BLKIO / "blkio.throttle.read_bps_device").exists():
        return "needs the cgroup v1 blkio controller at /sys/fs/cgroup/blkio"
    if not Path("/dev/loop-control").exists():
        return "needs loop devices"
    return None


@pytest.fixture(scope="module")
def slow_disk(tmp_path_factory):
    """A mounted file system whose device reads at RATE inside the yielded cgroup."""
    if reason := _missing():
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("slow-disk")
    image, mount = root / "disk.img", root / "mnt"
    mount.mkdir()
    with open(image, "wb") as handle:
        handle.truncate((MODEL_MB + 120) * 1_000_000)
    device = subprocess.run(
        ["losetup", "--find", "--show", str(image)], check=True, capture_output=True, text=True
    ).stdout.strip()
    group = BLKIO / f"llm-desktop-test-{os.getpid()}"
    try:
        subprocess.run(["mkfs.ext4", "-q", device], check=True)
        subprocess.run(["mount", device, str(mount)], check=True)
        model = write_demo_model(mount / "slow.gguf", spec_for_size(MODEL_MB, seed=11))
        group.mkdir()
        rdev = os.stat(device).st_rdev
        (group / "blkio.throttle.read_bps_device").write_text(
            f"{os.major(rdev)}:{os.minor(rdev)} {RATE}\n"
        )
        yield model, group
    finally:
        subprocess.run(["umount", str(mount)], check=False)
        subprocess.run(["losetup", "--detach", device], check=False)
        with contextlib.suppress(OSError):
            group.rmdir()


@contextlib.contextmanager
def inside(group: Path):
    """Run this process (and so the hosts it starts) in `group`, then return to the root."""
    (group / "cgroup.procs").write_text(f"{os.getpid()}\n")
    try:
        yield
    finally:
        (BLKIO / "cgroup.procs").write_text(f"{os.getpid()}\n")


def load_events(model: Path, group: Path, options: LoadOptions) -> list[ProgressEvent]:
    with inside(group), Engine(warm_hosts=1) as engine:
        model_id = engine.model_id(model)
        with engine.events(model_id) as stream:
            drop_page_cache()
            engine.load(model, options, model=model_id)
            events = list(stream.until_terminal(120))
    assert events[-1].stage is Stage.COMPLETE, events[-1]
    return events


def assert_moves_with_the_disk(events: list[ProgressEvent]) -> None:
    loading = [event for event in events if event.stage is Stage.LOADING]
    assert len(loading) >= 10, f"only {len(loading)} updates while reading"
    # From the first byte to the last, no update is more than a second after the one before.
    span = [event for event in events if event.ts >= loading[0].ts][: len(loading) + 1]
    gaps = [later.ts - earlier.ts for earlier, later in itertools.pairwise(span)]
    assert max(gaps) <= MAX_STILL_S, f"the bar sat still for {max(gaps):.2f} s"
    # The rate shown, once its one-second window is full, is the disk's, within 10%.
    steady = [
        event.rate_bps
        for event in loading
        if event.rate_bps and event.ts - loading[0].ts >= 1.0 and (event.bytes_done or 0) > 0
    ]
    assert steady, "no rate was shown"
    shown = statistics.median(steady)
    assert abs(shown - RATE) <= 0.10 * RATE, f"shown {shown / 1e6:.1f} MB/s, disk {RATE / 1e6}"


def test_a_memory_mapped_load_moves_with_the_disk(slow_disk):
    model, group = slow_disk
    assert_moves_with_the_disk(load_events(model, group, LoadOptions(n_ctx=256)))


def test_a_load_without_mmap_moves_with_the_disk(slow_disk):
    model, group = slow_disk
    events = load_events(model, group, LoadOptions(n_ctx=256, use_mmap=False))
    assert_moves_with_the_disk(events)
