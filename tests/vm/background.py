"""VM boots that start with the session and run while the other tests do.

A boot of many minutes (the bare-install acceptance: 10-25) would add all of them to
`make test` if it waited for its turn. A test module marks itself with
``pytest.mark.background_boot(start=FUNCTION)``; right after collection, conftest.py calls
FUNCTION, which starts its boots here, each on a thread of its own, so they overlap the
unit, integration and other VM tests. The fixture that needs a boot's result waits for it
(``wait``); by then most of the boot is over. When the session ends first (``-x``, Ctrl-C,
a failure elsewhere), ``cancel_all`` kills the qemu processes that still run.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

from .runner import VmResult

# run(cancel) -> the boot's result; it must stop (raise) soon after `cancel` is set
BootFunction = Callable[[threading.Event], VmResult]


class BackgroundBoot:
    """One boot on its own thread; `wait` returns its result or raises its error."""

    def __init__(self, label: str, run: BootFunction, workdir: Path) -> None:
        self.label = label
        self.workdir = workdir  # removed after a session without failures
        self._run = run
        self._cancel = threading.Event()
        self._result: VmResult | None = None
        self._error: BaseException | None = None
        self.started = time.monotonic()
        self.waited_s: float | None = None  # how long the test session waited for it
        self._thread = threading.Thread(target=self._main, name=f"vm-boot {label}", daemon=True)

    def _main(self) -> None:
        try:
            self._result = self._run(self._cancel)
        except BaseException as exc:  # handed to the waiting fixture, re-raised there
            self._error = exc

    def start(self) -> None:
        self._thread.start()

    def wait(self) -> VmResult:
        waiting = time.monotonic()
        self._thread.join()
        self.waited_s = time.monotonic() - waiting
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result

    def cancel(self) -> None:
        self._cancel.set()
        self._thread.join(timeout=60)


_BOOTS: dict[str, BackgroundBoot] = {}


def start(label: str, run: BootFunction, workdir: Path) -> BackgroundBoot:
    """Start the boot `label` unless it already runs (one start per session)."""
    if label not in _BOOTS:
        _BOOTS[label] = BackgroundBoot(label, run, workdir)
        _BOOTS[label].start()
    return _BOOTS[label]


def get(label: str) -> BackgroundBoot | None:
    return _BOOTS.get(label)


def finish(session_failed: bool) -> list[BackgroundBoot]:
    """Cancel the boots that still run; remove the work directories of a clean session."""
    boots = list(_BOOTS.values())
    for boot in boots:
        boot.cancel()
        if not session_failed:
            shutil.rmtree(boot.workdir, ignore_errors=True)
    return boots
