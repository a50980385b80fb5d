"""How the start of the embedded server reads a PING: a server still replaying its
append-only file (LOADING, or silent on a connection it took) is alive and waited for longer
than one that is not listening or refuses."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from lexi_maint.graph.falkordb import _ping


class Client:
    def __init__(self, answer: bool | Exception) -> None:
        self._answer = answer

    def ping(self) -> bool:
        if isinstance(self._answer, Exception):
            raise self._answer
        return self._answer


@pytest.mark.parametrize(
    ("answer", "state"),
    [
        (True, "ready"),
        (redis.BusyLoadingError("Redis is loading the dataset in memory"), "loading"),
        (redis.ConnectionError("Connection refused"), "down"),
        # took the connection, silent: busy replaying (or starved), alive
        (redis.TimeoutError("Timeout reading from socket"), "loading"),
        (redis.ResponseError("ERR unknown"), "down"),
    ],
)
def test_ping_tells_loading_from_down(tmp_path: Path, answer: bool | Exception, state: str) -> None:
    socket = tmp_path / "falkordb.sock"
    socket.touch()
    assert _ping(Client(answer), socket) == state


def test_no_socket_yet_is_down_without_asking(tmp_path: Path) -> None:
    assert _ping(Client(RuntimeError("must not be asked")), tmp_path / "none.sock") == "down"
