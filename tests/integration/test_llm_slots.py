"""The job-wide call limit across real processes, and what a SIGKILL does to it."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVarTuple

import pytest

from lexi_maint.llm.slots import FileSlots

pytestmark = pytest.mark.integration


def hold_slots(directory: Path, count: int, calls: int, log: Path) -> None:
    """In a child: make `calls` concurrent 'calls' of 20 ms each, logging start/end times."""

    async def one(slots: FileSlots) -> None:
        async with slots.slot():
            started = time.monotonic()
            await asyncio.sleep(0.02)
            with log.open("a") as out:
                out.write(f"{started} {time.monotonic()}\n")

    async def main() -> None:
        slots = FileSlots(directory, count)
        await asyncio.gather(*(one(slots) for _ in range(calls)))
        slots.close()

    asyncio.run(main())


Ts = TypeVarTuple("Ts")


def fork(target: Callable[[*Ts], object], *args: *Ts) -> int:
    pid = os.fork()
    if pid == 0:
        try:
            target(*args)
        finally:
            os._exit(0)
    return pid


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    events = sorted([(a, 1) for a, _ in intervals] + [(b, -1) for _, b in intervals])
    current = best = 0
    for _, step in events:
        current += step
        best = max(best, current)
    return best


def test_calls_from_all_processes_stay_within_the_limit_and_overlap(tmp_path: Path) -> None:
    slots_dir = tmp_path / "slots"
    logs = [tmp_path / f"log{i}" for i in range(4)]
    pids = [fork(hold_slots, slots_dir, 3, 15, log) for log in logs]
    for pid in pids:
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    intervals = [
        (float(a), float(b))
        for log in logs
        for a, b in (line.split() for line in log.read_text().splitlines())
    ]
    assert len(intervals) == 60
    assert max_overlap(intervals) <= 3  # 4 processes x 15 concurrent calls, limit 3
    assert max_overlap(intervals) >= 2  # ... and they do run concurrently


def test_a_killed_holder_leaks_no_slot(tmp_path: Path) -> None:
    slots_dir = tmp_path / "slots"
    ready = tmp_path / "ready"

    def hold_forever() -> None:
        async def main() -> None:
            slots = FileSlots(slots_dir, 2)
            async with slots.slot(), slots.slot():
                ready.write_text("holding")
                await asyncio.sleep(3600)

        asyncio.run(main())

    pid = fork(hold_forever)
    while not ready.exists():
        time.sleep(0.01)

    async def try_one() -> bool:
        slots = FileSlots(slots_dir, 2)
        try:
            async with asyncio.timeout(0.2), slots.slot():
                return True
        except TimeoutError:
            return False
        finally:
            slots.close()

    assert asyncio.run(try_one()) is False  # both slots are held by the child
    os.kill(pid, signal.SIGKILL)  # as the OOM killer would
    os.waitpid(pid, 0)

    async def take_both() -> None:
        slots = FileSlots(slots_dir, 2)
        async with asyncio.timeout(5), slots.slot(), slots.slot():
            pass
        slots.close()

    asyncio.run(take_both())  # the kernel dropped the dead process's locks


def test_a_freed_slot_wakes_a_waiter_in_another_process_without_polling(tmp_path: Path) -> None:
    slots_dir = tmp_path / "slots"
    ready = tmp_path / "ready"

    def hold_a_while() -> None:
        async def main() -> None:
            slots = FileSlots(slots_dir, 1)
            async with slots.slot():
                ready.write_text("holding")
                await asyncio.sleep(0.5)
            slots.close()

        asyncio.run(main())

    pid = fork(hold_a_while)
    while not ready.exists():
        time.sleep(0.01)

    async def wait_for_it() -> int:
        slots = FileSlots(slots_dir, 1)
        async with asyncio.timeout(5), slots.slot():
            pass
        slots.close()
        return slots.polls

    looks = asyncio.run(wait_for_it())
    os.waitpid(pid, 0)
    # one look before waiting, then the kernel's wake-up when the child lets go (a poll
    # every 2-50 ms would have looked 10-250 times in 0.5 s)
    assert 1 <= looks <= 2


def test_a_freed_slot_wakes_one_waiting_process_not_all_of_them(tmp_path: Path) -> None:
    """Six processes wait for the one slot another holds: each release wakes the process in
    the waiting room only. Waking all of them would make each look once per release
    (6 + 5 + ... + 1 = 21 looks at least); here each looks once or twice."""
    slots_dir = tmp_path / "slots"
    ready = tmp_path / "ready"
    waiters = 6

    def hold_a_while() -> None:
        async def main() -> None:
            slots = FileSlots(slots_dir, 1)
            async with slots.slot():
                ready.write_text("holding")
                await asyncio.sleep(0.5)  # long enough for every waiter to queue up
            slots.close()

        asyncio.run(main())

    def wait_and_hold(report: Path) -> None:
        async def main() -> None:
            slots = FileSlots(slots_dir, 1)
            async with asyncio.timeout(30), slots.slot():
                await asyncio.sleep(0.02)
            slots.close()
            report.write_text(str(slots.polls))

        asyncio.run(main())

    holder = fork(hold_a_while)
    while not ready.exists():
        time.sleep(0.01)
    reports = [tmp_path / f"polls{i}" for i in range(waiters)]
    pids = [fork(wait_and_hold, report) for report in reports]
    for pid in [holder, *pids]:
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    looks = [int(report.read_text()) for report in reports]
    assert all(1 <= n <= 2 for n in looks), looks


def test_a_waiter_cancelled_before_the_room_is_its_leaves_it_free(tmp_path: Path) -> None:
    """A task cancelled (a document's timeout) while its thread still waits for the waiting
    room must not keep the room once the thread gets it: the next waiter gets a slot."""
    slots_dir = tmp_path / "slots"

    async def main() -> None:
        holder, in_room, cancelled, later = (FileSlots(slots_dir, 1) for _ in range(4))
        got_it, done = asyncio.Event(), asyncio.Event()

        async def wait_in_room() -> None:
            async with in_room.slot():
                got_it.set()
                await done.wait()

        try:
            async with holder.slot():
                first = asyncio.create_task(wait_in_room())
                await asyncio.sleep(0.1)  # `in_room` holds the room, waiting for the slot
                with pytest.raises(TimeoutError):
                    async with asyncio.timeout(0.1), cancelled.slot():
                        pass  # never: its thread waits for the room
            async with asyncio.timeout(5):
                await got_it.wait()  # the release went to the process in the room

            async def take_later() -> None:
                async with asyncio.timeout(5), later.slot():
                    pass  # the cancelled waiter's thread got the room and gave it back

            second = asyncio.create_task(take_later())
            await asyncio.sleep(0.1)  # `later` finds the slot taken: it needs the room
            done.set()
            await first
            await second
        finally:  # closing drops the locks: a stuck room cannot hang the test
            for slots in (holder, in_room, cancelled, later):
                slots.close()

    asyncio.run(main())


def test_a_process_keeps_the_room_until_each_of_its_waiting_tasks_has_a_slot(
    tmp_path: Path,
) -> None:
    """A document that needs several calls at once gets consecutive releases (one visit to
    the waiting room), not one release per visit between other processes' turns."""
    slots_dir = tmp_path / "slots"
    order: list[str] = []

    async def main() -> None:
        holder, busy, other = (FileSlots(slots_dir, 1) for _ in range(3))

        async def call(slots: FileSlots, name: str) -> None:
            async with asyncio.timeout(10), slots.slot():
                order.append(name)
                await asyncio.sleep(0.05)

        try:
            async with holder.slot():
                tasks = [asyncio.create_task(call(busy, "busy")) for _ in range(3)]
                await asyncio.sleep(0.2)  # `busy` is in the room, two more tasks queued
                tasks.append(asyncio.create_task(call(other, "other")))
                await asyncio.sleep(0.2)  # `other` waits to enter the room
            await asyncio.gather(*tasks)
        finally:
            for slots in (holder, busy, other):
                slots.close()

    asyncio.run(main())
    assert order == ["busy", "busy", "busy", "other"]


def test_a_cancelled_task_hands_the_room_to_the_next_task_of_its_process(tmp_path: Path) -> None:
    """The thread taking the room outlives a task cancelled while it waits: the next task
    of the same process takes the room with it, gets the slot, and lets the room go."""
    slots_dir = tmp_path / "slots"

    async def take(slots: FileSlots) -> None:
        async with asyncio.timeout(5), slots.slot():
            await asyncio.sleep(0.02)

    async def main() -> None:
        holder, first, waiter, later = (FileSlots(slots_dir, 1) for _ in range(4))
        try:
            async with holder.slot():
                in_room = asyncio.create_task(take(first))
                await asyncio.sleep(0.1)  # `first` holds the room
                with pytest.raises(TimeoutError):
                    async with asyncio.timeout(0.1), waiter.slot():
                        pass  # never: `waiter`'s thread waits for the room
                second = asyncio.create_task(take(waiter))
                await asyncio.sleep(0.1)
            await in_room
            await second  # the room came to `waiter` through the cancelled task's thread
            await take(later)  # and `waiter` let it go
        finally:  # closing drops the locks: a stuck room cannot hang the test
            for slots in (holder, first, waiter, later):
                slots.close()

    asyncio.run(main())
