"""Fixtures for the VM test tier (``-m vm``): a real systemd under qemu TCG.

The image is built (or taken from the cache) once, right after collection and
only when a ``vm`` test is selected, so its cold build (about 2 minutes) does not
count against any single test's timeout.  The tier is required: when the host
cannot run it (no qemu and apt fails, image build fails), the tests fail with
the reason; they never skip.

Then the boots of modules marked ``background_boot(start=FUNCTION)`` start on
threads of their own (background.py), so they run while the other tests do.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from . import background
from .image import VmImage, VmSetupError, ensure_image
from .runner import VmResult, VmRun, run_in_vm

_BOOTS: list[tuple[str, VmResult]] = []
_BACKGROUND: list[str] = []


@dataclass
class _ImageState:
    done: bool = False
    image: VmImage | None = None
    error: str | None = None
    seconds: float | None = None


_IMAGE = _ImageState()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "vm: boots a qemu VM with systemd as PID 1 (slow; the image is cached)"
    )
    config.addinivalue_line(
        "markers",
        "background_boot(start): start() starts the module's boots right after collection "
        "(tests/vm/background.py)",
    )


def _prepare_image(report: pytest.TerminalReporter | None) -> None:
    """Build or reuse the image once; remember the image or the error text."""
    if _IMAGE.done:
        return
    if report is not None:
        report.write_line("vm tier: building or reusing the VM image ...")
    start = time.monotonic()
    try:
        _IMAGE.image = ensure_image()
    except VmSetupError as exc:
        _IMAGE.error = str(exc)
    _IMAGE.seconds = time.monotonic() - start
    _IMAGE.done = True


def pytest_collection_finish(session: pytest.Session) -> None:
    report = session.config.pluginmanager.get_plugin("terminalreporter")
    if any(item.get_closest_marker("vm") for item in session.items):
        _prepare_image(report)
    starts: dict[str, Callable[[], None]] = {}
    for item in [] if session.config.option.collectonly else session.items:
        if (marker := item.get_closest_marker("background_boot")) is not None:
            starts[item.nodeid.split("::")[0]] = marker.kwargs["start"]
    for module, start in starts.items():
        if report is not None:
            report.write_line(f"vm tier: the boots of {module} start in the background")
        start()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    for boot in background.finish(session_failed=exitstatus != 0):
        if boot.waited_s is None:
            _BACKGROUND.append(f"{boot.label}: not waited for (cancelled if it still ran)")
        else:
            _BACKGROUND.append(
                f"{boot.label}: the tests waited {boot.waited_s:.1f} s for it"
                + ("" if exitstatus == 0 else f"; its files: {boot.workdir}")
            )


@pytest.fixture(scope="session")
def vm_image() -> VmImage:
    """The cached VM image (built on first use: about 2 minutes, as root)."""
    _prepare_image(None)
    if _IMAGE.image is None:
        pytest.fail(f"VM test tier unavailable on this host: {_IMAGE.error}", pytrace=False)
    return _IMAGE.image


@pytest.fixture(scope="session")
def vm_run(vm_image: VmImage) -> VmRun:
    """``vm_run(share, timeout_s, memory_mb=2048, cpus=2) -> VmResult`` on the
    session's image (usable from fixtures of any scope); each boot's timings go
    into the terminal summary, labelled with the share directory's name."""

    def run(share: Path, timeout_s: float, memory_mb: int = 2048, cpus: int = 2) -> VmResult:
        result = run_in_vm(share, timeout_s, memory_mb, cpus, image=vm_image)
        _BOOTS.append((share.name, result))
        return result

    return run


def record_boot(label: str, result: VmResult) -> None:
    """Show a boot that did not go through ``vm_run`` (another image) in the timings."""
    _BOOTS.append((label, result))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _IMAGE.done:
        return
    terminalreporter.section("VM tier timings")
    if _IMAGE.seconds is not None:
        terminalreporter.write_line(f"image build-or-reuse: {_IMAGE.seconds:.1f} s")
    for label, result in _BOOTS:
        boot = "n/a" if result.boot_seconds is None else f"{result.boot_seconds:.1f} s"
        terminalreporter.write_line(
            f"{label}: boot-to-entry {boot}, total {result.total_seconds:.1f} s, "
            f"exit_code={result.exit_code}, timed_out={result.timed_out}"
        )
    for line in _BACKGROUND:
        terminalreporter.write_line(f"background boot {line}")
