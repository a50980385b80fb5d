"""Unit-test hygiene shared by every module."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def keep_the_umask() -> Iterator[None]:
    """`cli.main` sets umask 077 for the process; tests that call it in-process must not
    change the file modes later tests see."""
    umask = os.umask(0o022)
    os.umask(umask)
    yield
    os.umask(umask)
