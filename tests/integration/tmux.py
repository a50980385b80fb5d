"""A real terminal for tests: a detached tmux session of a given size, read back as text.

tmux is installed with apt-get when missing (as tests/vm installs qemu), so a fresh CI
machine runs these tests instead of skipping them.
"""

from __future__ import annotations

import shlex
import subprocess
import time
import uuid
from collections.abc import Callable

from tests.hostpkg import ensure_tool


def ensure_tmux() -> str:
    return ensure_tool("tmux", "tmux")


class Terminal:
    """One tmux server (own socket) with one pane of `columns` x `rows` running `argv`.

    The command runs under bash followed by `echo EXIT=$?`, so the screen shows the exit
    status on the line where the shell prompt would start.
    """

    def __init__(self, argv: list[str], *, columns: int, rows: int = 30, cwd: str = "/") -> None:
        self._tmux = ensure_tmux()
        self._socket = f"lexi-test-{uuid.uuid4().hex[:8]}"
        script = f"{shlex.join(argv)}; echo EXIT=$?; sleep 600"
        self._run(
            "-f", "/dev/null", "new-session", "-d", "-x", str(columns), "-y", str(rows),
            "-s", "t", "-c", cwd, "bash", "--norc", "--noprofile", "-c", script,
        )  # fmt: skip

    def _run(self, *args: str) -> str:
        proc = subprocess.run(
            [self._tmux, "-L", self._socket, *args], capture_output=True, text=True, timeout=30
        )
        if proc.returncode != 0:
            raise AssertionError(f"tmux {' '.join(args)}: {proc.stderr}")
        return proc.stdout

    def screen(self) -> list[str]:
        """The visible rows, as the terminal shows them (trailing blanks removed)."""
        return [row.rstrip() for row in self._run("capture-pane", "-p", "-t", "t").split("\n")]

    def wait_for(self, condition: Callable[[list[str]], bool], timeout: float = 120) -> list[str]:
        deadline = time.monotonic() + timeout
        while True:
            rows = self.screen()
            if condition(rows):
                return rows
            if time.monotonic() > deadline:
                raise AssertionError("timed out; the screen shows:\n" + "\n".join(rows))
            time.sleep(0.1)

    def keys(self, *keys: str) -> None:
        self._run("send-keys", "-t", "t", *keys)

    def resize(self, columns: int, rows: int = 30) -> None:
        self._run("resize-window", "-t", "t", "-x", str(columns), "-y", str(rows))

    def close(self) -> None:
        subprocess.run([self._tmux, "-L", self._socket, "kill-server"], capture_output=True)


def text(rows: list[str]) -> str:
    return "\n".join(rows)
