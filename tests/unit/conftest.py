"""Unit-test hygiene shared by every module."""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

_REAL_POPEN_INIT = subprocess.Popen.__init__


@pytest.fixture(autouse=True)
def keep_the_umask() -> Iterator[None]:
    """`cli.main` sets umask 077 for the process; tests that call it in-process must not
    change the file modes later tests see."""
    umask = os.umask(0o022)
    os.umask(umask)
    yield
    os.umask(umask)


def program(args: object) -> str:
    """The program a `Popen(args, ...)` call would start: its argv[0] as given."""
    if isinstance(args, (str, bytes, os.PathLike)):
        first = os.fsdecode(args)
        words = shlex.split(first) if isinstance(args, (str, bytes)) else [first]
    elif isinstance(args, Sequence) and args:
        words = [os.fsdecode(args[0])]
    else:
        words = []
    return words[0] if words else repr(args)


def allowed_programs(request: pytest.FixtureRequest) -> frozenset[str] | None:
    """What the test declares with `@pytest.mark.allow_subprocess(...)`: None if it allows any
    program (the marker without arguments), the empty set if it declares none."""
    names: set[str] = set()
    for marker in request.node.iter_markers("allow_subprocess"):
        if not marker.args:
            return None
        names.update(str(name) for name in marker.args)
    return frozenset(names)


@pytest.fixture(autouse=True)
def disable_subprocess_usage(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fail a unit test that starts a program it did not declare.

    A unit test that runs a real program depends on the machine it runs on; one that does
    so by accident (a fake not wired in, a probe that shells out) is a hidden integration
    test. Every `subprocess.Popen` (hence `run`, `check_output` and asyncio's subprocesses)
    raises an AssertionError naming the command unless the test declares the program:

        @pytest.mark.allow_subprocess("make", sys.executable)  # only these: argv[0] or its name
        @pytest.mark.allow_subprocess()                        # any program

    `multiprocessing` with the fork start method is not a subprocess here: it copies this
    interpreter and runs no other program, so it is neither intercepted nor declared.
    """
    allowed = allowed_programs(request)
    if allowed is None:
        return

    def guarded(self: subprocess.Popen[Any], args: Any, *rest: Any, **options: Any) -> None:
        name = program(args)
        if name not in allowed and Path(name).name not in allowed:
            raise AssertionError(
                f"{request.node.nodeid} started the undeclared subprocess {args!r}; if it is "
                f'meant to run, declare it: @pytest.mark.allow_subprocess("{Path(name).name}")'
            )
        _REAL_POPEN_INIT(self, args, *rest, **options)

    monkeypatch.setattr(subprocess.Popen, "__init__", guarded)
