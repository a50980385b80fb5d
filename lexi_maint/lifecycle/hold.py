"""The durable record "lexi.service is held by run X" (filesystem adapter).

Written (temp file, fsync, rename, fsync of the directory) before the service is stopped
or shrunk and removed only after it is restored, so a daemon that was killed, or a reboot,
leaves the evidence the next daemon start needs to restore the service.

In shrink mode it also says "shrunk by N from MainPID P": rewritten after every worker
removed, so whoever restores grows back exactly as many as were removed, and only while
the same master runs (a restarted service starts with its configured workers again).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class Hold:
    run_id: str
    job: str
    service: str
    since: float
    boot_id: str  # a different boot id means a reboot happened since
    mode: str = "stop"  # the job's quiesce mode: stop, shrink or none
    main_pid: int = 0  # shrink: the gunicorn master the workers were removed from
    shrunk_by: int = 0  # shrink: workers removed so far (signals sent)
    workers: int = 0  # shrink: the master's workers before the run

    def describe(self) -> str:
        if self.mode == "shrink":
            return f"shrunk by {self.shrunk_by} from MainPID {self.main_pid}"
        return "stopped" if self.mode == "stop" else "left running"


def current_boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown"


class HoldStore:
    def __init__(self, directory: Path) -> None:
        self.path = directory / "hold.json"

    def load(self) -> Hold | None:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise OSError(f"cannot read {self.path}: {exc}") from exc
        return Hold(**data)

    def record(
        self,
        run_id: str,
        job: str,
        service: str,
        *,
        mode: str = "stop",
        main_pid: int = 0,
        workers: int = 0,
    ) -> Hold:
        hold = Hold(run_id, job, service, time.time(), current_boot_id(), mode, main_pid, 0,
                    workers)  # fmt: skip
        return self.save(hold)

    def save(self, hold: Hold) -> Hold:
        """Write `hold` durably (also to update a recorded one, e.g. its shrunk_by)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temp = self.path.with_suffix(".tmp")
        with temp.open("w") as handle:
            json.dump(asdict(hold), handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, self.path)
        _fsync_dir(self.path.parent)
        return hold

    def clear(self) -> None:
        try:
            self.path.unlink()
        except FileNotFoundError:
            return
        _fsync_dir(self.path.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
