"""The detect pool: its own threads and an admission limit (running + waiting), refusing the excess at once."""

from __future__ import annotations

import asyncio
import threading

import pytest

from api.detect_pool import DetectBusy, DetectPool


def test_admission_is_bounded_and_released() -> None:
    pool = DetectPool(workers=1, queue=1, retry_after_s=3)
    with pool.admit(), pool.admit():
        assert pool.admitted == 2
        with pytest.raises(DetectBusy) as info, pool.admit():
            pass
        assert info.value.retry_after_s == 3
    assert pool.admitted == 0
    with pool.admit():
        assert pool.admitted == 1


def test_work_runs_on_the_pools_own_threads() -> None:
    pool = DetectPool(workers=2, queue=0, retry_after_s=1)
    running, release = threading.Semaphore(0), threading.Event()

    def work(n: int) -> str:
        running.release()
        release.wait(5)
        return f"{threading.current_thread().name}:{n}"

    async def main() -> list[str]:
        jobs = [asyncio.create_task(pool.run(work, n)) for n in range(3)]
        for _ in range(2):  # two run at once; the third waits for a thread
            await asyncio.to_thread(running.acquire, True, 5)
        assert not running.acquire(timeout=0.2)
        release.set()
        return list(await asyncio.gather(*jobs))

    try:
        names = asyncio.run(main())
    finally:
        pool.shutdown()
    assert [n.split(":")[1] for n in names] == ["0", "1", "2"]
    assert all(n.startswith("safewatch-detect") for n in names)
