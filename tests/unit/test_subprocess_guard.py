"""conftest's `disable_subprocess_usage`: a unit test starts only the programs it declares."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from tests.unit.conftest import program


def test_an_undeclared_program_fails_the_test_and_is_named() -> None:
    with pytest.raises(AssertionError, match=r"undeclared subprocess \['true'\].*\"true\""):
        subprocess.run(["true"], check=True)


def test_a_shell_string_and_asyncio_are_caught_too() -> None:
    with pytest.raises(AssertionError, match=r"undeclared subprocess 'echo hi'"):
        subprocess.run("echo hi", shell=True, check=True)

    async def spawn() -> None:
        await asyncio.create_subprocess_exec("true")

    with pytest.raises(AssertionError, match=r"undeclared subprocess"):
        asyncio.run(spawn())


@pytest.mark.allow_subprocess("make")
def test_declaring_one_program_does_not_allow_another() -> None:
    with pytest.raises(AssertionError, match=r"\['true'\]"):
        subprocess.run(["true"], check=True)


@pytest.mark.allow_subprocess("true", sys.executable)
def test_a_declared_program_runs_by_name_or_by_path() -> None:
    assert subprocess.run(["/bin/true"], check=True).returncode == 0
    done = subprocess.run([sys.executable, "-c", "print(6 * 7)"], capture_output=True, text=True)
    assert done.stdout == "42\n"


@pytest.mark.allow_subprocess()
def test_the_bare_marker_allows_any_program() -> None:
    assert subprocess.run(["true"], check=True).returncode == 0


def test_the_program_is_argv0() -> None:
    assert program(["/usr/bin/groff", "-k"]) == "/usr/bin/groff"
    assert program("make -s install") == "make"
    assert program(b"bash -c true") == "bash"
    assert program([]) == "[]"
