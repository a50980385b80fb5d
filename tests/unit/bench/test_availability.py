"""`make bench-availability`'s host side: the guest's markers cut the host prober's samples
into runs, and only that benchmark's VM gets a network (a port forward, guest restricted)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from bench.availability import join, read_marks
from tests.vm.guest.prober import Probe, Prober
from tests.vm.image import VmImage
from tests.vm.runner import PortForward, qemu_command

GUEST_BEHIND = 0.7  # the guest's clock, as measured: about 0.7 s behind the host's


def write_marks(directory: Path, run: int, started: float, ended: float, settled: float) -> None:
    for event, host_at in (("started", started), ("ended", ended), ("settled", settled)):
        path = directory / f"{run}-{event}"
        path.write_text(f"{host_at - GUEST_BEHIND:.6f}\n")
        os.utime(path, (host_at, host_at))  # what the host's clock set on the 9p write


def probes(start: float, seconds: float, down: tuple[float, float], latency: float) -> list[Probe]:
    """One probe every 100 ms; those sent within `down` fail."""
    sent = [start + i / 10 for i in range(int(seconds * 10))]
    return [Probe(at, not down[0] <= at < down[1], latency, "") for at in sent]


def test_each_run_gets_the_probes_between_its_markers(tmp_path: Path) -> None:
    write_marks(tmp_path, 0, started=1000.0, ended=1100.0, settled=1120.0)  # stop
    write_marks(tmp_path, 1, started=2000.0, ended=2110.0, settled=2112.0)  # shrink
    prober = Prober(port=1, clock=time.time)  # never started: its samples are given
    prober.probes = (
        probes(900.0, 300.0, down=(1005.0, 1115.0), latency=0.01)  # down 1005-1115 in run 0
        + probes(1900.0, 300.0, down=(1950.0, 1960.0), latency=0.02)  # before run 1: not counted
    )
    guest = {"runs": [{"run": 0, "mode": "stop"}, {"run": 1, "mode": "shrink"}]}

    data = join(guest, read_marks(tmp_path), prober)

    stop, shrink = data["runs"]
    assert (stop["requests"], stop["failed"], stop["downtime_s"]) == (1201, 1100, 110.0)
    assert (shrink["requests"], shrink["failed"], shrink["downtime_s"]) == (1121, 0, 0.0)
    assert shrink["p99_ms"] == 20.0 and stop["p99_ms"] == 10.0  # the batch's window only
    assert data["clock_offset_s"] == [GUEST_BEHIND, GUEST_BEHIND]
    assert data["host_prober"]["requests"] == 6000


def test_only_a_forward_gives_the_guest_a_nic_and_it_stays_restricted(tmp_path: Path) -> None:
    image = VmImage(tmp_path, "key")
    console = tmp_path / "console.log"
    plain = qemu_command(image, tmp_path, console, 2048, 2)
    forwarded = qemu_command(image, tmp_path, console, 2048, 2, forward=PortForward(40123, 8000))

    assert "-netdev" not in plain and "-nodefaults" in plain  # no NIC at all
    assert forwarded[: len(plain)] == plain
    assert forwarded[len(plain) :] == [
        "-netdev",
        "user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:40123-:8000",
        "-device",
        "virtio-net-pci,netdev=n0",
    ]
