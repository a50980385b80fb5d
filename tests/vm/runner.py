"""Boot the cached VM image under qemu (TCG) and run ``<share>/entry.sh`` in it.

The guest unit ``lexi-vmtest.service`` mounts ``share`` over 9p at /mnt/host,
runs ``/bin/bash /mnt/host/entry.sh`` as root with cwd /mnt/host (stdout and
stderr to ``out/output.log``), writes ``out/exit_code`` and the boot's journal
(``out/journal.log``, ``out/journal.json``), then powers the VM off.  The disk
is attached with ``snapshot=on``, so every boot starts from the pristine image.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from . import image as vm_image

KERNEL_APPEND = (
    "root=/dev/vda rw console=ttyS0 panic=1 systemd.unified_cgroup_hierarchy=1 mitigations=off"
)
QEMU = "qemu-system-x86_64"


class VmRun(Protocol):
    """Type of the ``vm_run`` pytest fixture (conftest.py)."""

    def __call__(
        self, share: Path, timeout_s: float, memory_mb: int = 2048, cpus: int = 2
    ) -> VmResult: ...


@dataclass(frozen=True)
class PortForward:
    """A TCP port of the guest reachable from the host at 127.0.0.1:``host_port``.

    Only for a benchmark that must reach the guest from outside: it gives the guest one
    virtio NIC on qemu's user-mode network with ``restrict=on`` (the guest cannot reach the
    host or the outside; only this forward comes in).  Without it the guest has no NIC at all.
    The guest must bring the NIC up itself with slirp's default guest address, 10.0.2.15/24
    (the forward's target), and serve on it (tests/vm/guest/bench_availability.py).
    """

    host_port: int
    guest_port: int

    def qemu_args(self) -> list[str]:
        hostfwd = f"tcp:127.0.0.1:{self.host_port}-:{self.guest_port}"
        return ["-netdev", f"user,id=n0,restrict=on,hostfwd={hostfwd}",
                "-device", "virtio-net-pci,netdev=n0"]  # fmt: skip


class VmCancelled(RuntimeError):
    """A background boot was stopped because the session ended before it did."""


class VmRunError(RuntimeError):
    """Raised by :meth:`VmResult.check` when the guest did not finish with exit code 0."""


@dataclass(frozen=True)
class VmResult:
    """What one boot produced.  ``exit_code`` is None when entry.sh never finished
    (timeout, kernel panic, 9p mount failure...): see ``describe()``."""

    exit_code: int | None
    output: str
    journal: str
    journal_json_path: Path
    console: str
    boot_seconds: float | None  # qemu start -> entry.sh start, host clock
    total_seconds: float  # qemu start -> qemu exit
    timed_out: bool
    out_dir: Path
    guest_uptime_at_entry: float | None  # guest kernel start -> entry.sh start
    qemu_returncode: int | None
    qemu_log: str

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out

    def console_tail(self, lines: int = 40) -> str:
        return "\n".join(self.console.splitlines()[-lines:])

    def journal_entries(self) -> list[dict[str, Any]]:
        """The boot's journal as parsed ``journalctl -o json`` records."""
        if not self.journal_json_path.is_file():
            return []
        text = self.journal_json_path.read_text(errors="replace")
        return [json.loads(line) for line in text.splitlines() if line.startswith("{")]

    def describe(self) -> str:
        """A summary fit for an assertion message."""
        if self.timed_out:
            head = f"VM TIMED OUT after {self.total_seconds:.0f} s and was killed"
        elif self.exit_code is None:
            head = (
                f"VM stopped (qemu rc={self.qemu_returncode}) without entry.sh "
                f"finishing; boot_seconds={self.boot_seconds}"
            )
        else:
            head = f"entry.sh exited with {self.exit_code}"
        return (
            f"{head} (results in {self.out_dir})\n--- output.log (tail) ---\n"
            f"{_tail(self.output, 40)}\n--- qemu log ---\n{_tail(self.qemu_log, 10)}\n"
            f"--- last console lines ---\n{self.console_tail()}"
        )

    def check(self) -> VmResult:
        """Return self if entry.sh exited 0, else raise VmRunError with describe()."""
        if not self.ok:
            raise VmRunError(self.describe())
        return self


def _tail(text: str, lines: int) -> str:
    return "\n".join(text.splitlines()[-lines:])


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _read_float(path: Path) -> float | None:
    try:
        return float(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def prepare_share(share: Path, entry_script: str, trees: Mapping[str, Path] | None = None) -> Path:
    """Create ``share`` with ``entry.sh`` and copies of ``trees`` (name in share ->
    host directory).  Trees are copied with symlinks dereferenced: 9p does not
    carry symlinks that point to host paths."""
    share.mkdir(parents=True, exist_ok=True)
    (share / "entry.sh").write_text(entry_script)
    for name, source in (trees or {}).items():
        shutil.copytree(
            source,
            share / name,
            symlinks=False,
            dirs_exist_ok=True,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".venv", ".git"),
        )
    return share


def qemu_command(
    image: vm_image.VmImage,
    share: Path,
    console_log: Path,
    memory_mb: int,
    cpus: int,
    disk: Path | None = None,
    forward: PortForward | None = None,
) -> list[str]:
    # snapshot=on keeps the cached image pristine; a `disk` (see writable_disk) persists
    # across boots instead, for tests that reboot the guest
    drive = f"file={disk},if=virtio,format=raw" if disk else (
        f"file={image.rootfs},if=virtio,format=raw,snapshot=on")  # fmt: skip
    return [
        QEMU,
        "-nodefaults",
        "-no-user-config",
        "-machine",
        "q35",
        "-accel",
        "tcg,thread=multi",
        "-cpu",
        "Nehalem",
        "-smp",
        str(cpus),
        "-m",
        str(memory_mb),
        "-display",
        "none",
        "-no-reboot",
        "-kernel",
        str(image.kernel),
        "-initrd",
        str(image.initrd),
        "-append",
        KERNEL_APPEND,
        "-drive",
        drive,
        "-virtfs",
        f"local,path={share},mount_tag=hostshare,security_model=none,id=hostshare",
        "-device",
        "virtio-rng-pci",
        "-serial",
        f"file:{console_log}",
        *(forward.qemu_args() if forward else []),
    ]


def _boot(
    cmd: list[str], qemu_log: Path, timeout_s: float, cancel: threading.Event | None = None
) -> tuple[int | None, bool]:
    """Run qemu to completion; kill it after timeout_s, or once `cancel` is set (a boot on a
    background thread whose session ends first).  Returns (rc, timed_out)."""
    if shutil.which(QEMU) is None:
        raise vm_image.VmSetupError(f"{QEMU} not found: run `python -m tests.vm.image prereqs`")
    deadline = time.monotonic() + timeout_s
    with qemu_log.open("w") as log:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        try:
            while True:
                try:
                    return proc.wait(timeout=min(1.0, max(deadline - time.monotonic(), 0))), False
                except subprocess.TimeoutExpired:
                    if time.monotonic() >= deadline:
                        proc.kill()
                        proc.wait()
                        return None, True
                    if cancel is not None and cancel.is_set():
                        raise VmCancelled(f"boot cancelled: {cmd[-1]}") from None
        except BaseException:
            proc.kill()
            proc.wait()
            raise


def _fresh_out_dir(share: Path) -> Path:
    if not (share / "entry.sh").is_file():
        raise FileNotFoundError(f"{share / 'entry.sh'} is missing")
    out = share / vm_image.OUT_DIR
    if out.exists():
        shutil.rmtree(out)
    out.mkdir()
    return out


def run_in_vm(
    share: Path,
    timeout_s: float,
    memory_mb: int = 2048,
    cpus: int = 2,
    *,
    image: vm_image.VmImage | None = None,
    disk: Path | None = None,
    cancel: threading.Event | None = None,
    forward: PortForward | None = None,
) -> VmResult:
    """Boot the image (default: the cached one, built if missing), run
    ``share/entry.sh`` inside, wait for power-off (or kill qemu after
    ``timeout_s``; raise VmCancelled once ``cancel`` is set) and collect the results from
    ``share/out``.  ``forward``: a guest port reachable from the host (see PortForward)."""
    share = share.resolve()
    out = _fresh_out_dir(share)
    img = image if image is not None else vm_image.ensure_image()
    console_log, qemu_log = out / "console.log", out / "qemu.log"
    cmd = qemu_command(img, share, console_log, memory_mb, cpus, disk, forward)
    started = time.time()
    returncode, timed_out = _boot(cmd, qemu_log, timeout_s, cancel)
    total = time.time() - started
    entry_marker = out / vm_image.ENTRY_STARTED
    exit_text = _read(out / vm_image.EXIT_CODE).strip()
    return VmResult(
        exit_code=int(exit_text) if exit_text.lstrip("-").isdigit() else None,
        output=_read(out / vm_image.OUTPUT_LOG),
        journal=_read(out / vm_image.JOURNAL_LOG),
        journal_json_path=out / vm_image.JOURNAL_JSON,
        console=_read(console_log),
        boot_seconds=entry_marker.stat().st_mtime - started if entry_marker.exists() else None,
        total_seconds=total,
        timed_out=timed_out,
        out_dir=out,
        guest_uptime_at_entry=_read_float(out / vm_image.ENTRY_UPTIME),
        qemu_returncode=returncode,
        qemu_log=_read(qemu_log),
    )


def writable_disk(image: vm_image.VmImage, dest: Path) -> Path:
    """A sparse copy of the image's root filesystem that keeps what the guest writes."""
    subprocess.run(["cp", "--sparse=always", str(image.rootfs), str(dest)], check=True)
    return dest
