"""Fixtures for the VM test tier (``-m vm``): a real systemd under qemu TCG.

The image is built (or taken from the cache) once, right after collection and
only when a ``vm`` test is selected, so its cold build (about 2 minutes) does not
count against any single test's timeout.  The tier is required: when the host
cannot run it (no qemu and apt fails, image build fails), the tests fail with
the reason; they never skip.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from .image import VmImage, VmSetupError, ensure_image
from .runner import VmResult, VmRun, run_in_vm

_BOOTS: list[tuple[str, VmResult]] = []


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
    if any(item.get_closest_marker("vm") for item in session.items):
        _prepare_image(session.config.pluginmanager.get_plugin("terminalreporter"))


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
