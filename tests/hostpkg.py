"""Host tools the tests need, installed with apt-get when missing (as tests/vm does for qemu),
so a fresh CI machine runs those tests instead of skipping them."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess

import pytest


def ensure_tool(tool: str, package: str) -> str:
    """The path of `tool`, after `apt-get install package` if it was missing."""
    found = shutil.which(tool)
    if found:
        return found
    if os.geteuid() != 0:
        pytest.fail(f"{tool} is missing and only root can install it: apt-get install {package}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (
        ["apt-get", "update"],
        ["apt-get", "install", "-y", "--no-install-recommends", package],
    ):
        proc = subprocess.run(
            cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True
        )
        if proc.returncode != 0:
            pytest.fail(f"`{shlex.join(cmd)}` failed: {proc.stderr[-2000:]}")
    found = shutil.which(tool)
    assert found, f"{tool} still missing after apt-get install {package}"
    return found
