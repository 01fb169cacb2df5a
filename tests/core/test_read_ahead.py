"""The host's read-ahead of memory-mapped models: bytes in memory, counted and reported."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from llm_desktop.core.host.child import READ_AHEAD_CHUNK, ReadAhead, Residency


def write(path: Path, size: int) -> Path:
    path.write_bytes(os.urandom(1024) * (size // 1024))
    return path


def evict(path: Path) -> None:
    """Drop a file's clean pages from the page cache (no root needed for one's own file)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def resident(path: Path) -> bool:
    fd = os.open(path, os.O_RDONLY)
    try:
        residency = Residency(fd, path.stat().st_size)
        answer = residency.all_in(0, path.stat().st_size)
        residency.close()
        return answer
    finally:
        os.close(fd)


def test_reads_every_part_into_memory_and_reports_as_it_goes(tmp_path):
    parts = [write(tmp_path / f"part{i}", 3 * READ_AHEAD_CHUNK // 2) for i in range(2)]
    for part in parts:
        evict(part)
    assert not any(resident(part) for part in parts)
    reports: list[tuple[int, int]] = []
    reader = ReadAhead([str(part) for part in parts], threading.Event())
    assert reader.run(lambda done, total: reports.append((done, total)))
    assert all(resident(part) for part in parts)
    total = sum(part.stat().st_size for part in parts)
    assert reports[-1] == (total, total)
    assert [done for done, _ in reports] == sorted({done for done, _ in reports})
    assert len(reports) == 4  # a report per chunk: two chunks per part


def test_a_cancel_stops_the_read_at_the_next_chunk(tmp_path):
    model = write(tmp_path / "model", 4 * READ_AHEAD_CHUNK)
    evict(model)
    cancelled = threading.Event()
    reports = []

    def report(done, total):
        reports.append(done)
        cancelled.set()  # a person presses Cancel after the first chunk

    assert ReadAhead([str(model)], cancelled).run(report) is False
    assert reports == [READ_AHEAD_CHUNK]


def test_residency_tells_cached_pages_from_evicted_ones(tmp_path):
    model = write(tmp_path / "model", 2 * READ_AHEAD_CHUNK)
    model.read_bytes()
    assert resident(model)
    evict(model)
    assert not resident(model)
