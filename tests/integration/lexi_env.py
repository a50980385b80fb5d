"""Helpers for tests that run the real `lexi-maint` command in a scratch workspace."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lexi_maint.graph.falkordb import FalkorGraphStore
from lexi_maint.graph.falkorserver import FalkorServer
from lexi_maint.graph.model import GraphStats

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "samples"


@dataclass(frozen=True)
class Workspace:
    """A short-pathed scratch folder (Unix socket paths are limited to 107 bytes)."""

    root: Path

    @property
    def input(self) -> Path:
        return self.root / "in"

    @property
    def state(self) -> Path:
        return self.root / "state"

    @property
    def config(self) -> Path:
        return self.root / "lexi.toml"

    def write_config(self, workers: int | None = 2, extra: str = "") -> Path:
        """`workers=None`: the job does not set them (the configuration's default)."""
        self.config.write_text(
            f'state_dir = "{self.state}"\n\n'
            f"[jobs.cao_import]\n"
            f'input = "{self.input}"\n'
            + (f"workers = {workers}\n" if workers is not None else "")
            + extra
        )
        return self.config

    def cli(
        self, *args: str, honour_file_modes: bool = False, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        prefix = without_dac_override() if honour_file_modes else []
        return subprocess.run(
            [*prefix, *lexi_argv(self.config, *args)],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.root,
        )

    def status(self, job: str = "cao_import") -> dict[str, Any]:
        """`lexi-maint status JOB --json`, which must succeed, parsed."""
        result = self.cli("status", job, "--json")
        assert result.returncode == 0, result.stderr
        return json_object(result.stdout)

    def graph_stats(self) -> GraphStats:
        with FalkorServer(self.state) as server:
            store = FalkorGraphStore(server.socket_path, "lexi")
            try:
                return store.stats()
            finally:
                store.close()

    def graph_query(self, cypher: str) -> list[dict[str, object]]:
        with FalkorServer(self.state) as server:
            store = FalkorGraphStore(server.socket_path, "lexi")
            try:
                return store.query(cypher)
            finally:
                store.close()


def json_object(text: str) -> dict[str, Any]:
    """The JSON object a command printed. Its shape is the command's output format, which the
    test asserts on: typed `Any` here, at the one place the text becomes data."""
    data = json.loads(text)
    assert isinstance(data, dict), text
    return data


def lexi_argv(config: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "lexi_maint", "--config", str(config), *args]


@contextmanager
def workspace() -> Iterator[Workspace]:
    root = Path(tempfile.mkdtemp(prefix="lx", dir="/tmp"))
    os.chmod(root, 0o755)
    ws = Workspace(root)
    ws.input.mkdir()
    try:
        yield ws
    finally:
        shutil.rmtree(root, ignore_errors=True)


def copy_samples(target: Path, copies: int = 1) -> list[Path]:
    sources = sorted(p for p in SAMPLES.iterdir() if p.suffix in (".txt", ".pdf"))
    made = []
    for i in range(copies):
        for source in sources:
            name = source.name if copies == 1 else f"c{i:03d}-{source.name}"
            made.append(Path(shutil.copyfile(source, target / name)))
    return made


def without_dac_override() -> list[str]:
    """A command prefix under which root obeys file modes like anyone else.

    Root reads a mode-000 file through CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH; setpriv
    (util-linux) removes both from the bounding and inheritable sets, so the command runs
    as root without them. For other users file modes apply anyway.
    """
    if os.geteuid() != 0:
        return []
    caps = "-dac_override,-dac_read_search"
    return ["setpriv", f"--inh-caps={caps}", f"--bounding-set={caps}"]
