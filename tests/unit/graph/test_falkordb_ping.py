"""How the start of the embedded server reads a PING: a server still replaying its
append-only file (LOADING, or silent on a connection it took) is alive and waited for longer
than one that is not listening or refuses."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from lexi_maint.errors import GraphError
from lexi_maint.graph.falkorserver import (
    COMPACT_MIN_BYTES,
    IdleWatch,
    _ping,
    load_failure,
    needs_compaction,
)


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
        # took the connection, silent: busy replaying, or hung (IdleWatch tells which)
        (redis.TimeoutError("Timeout reading from socket"), "silent"),
        (redis.ResponseError("ERR unknown"), "down"),
    ],
)
def test_ping_tells_loading_from_down(tmp_path: Path, answer: bool | Exception, state: str) -> None:
    socket = tmp_path / "falkordb.sock"
    socket.touch()
    assert _ping(Client(answer), socket) == state


def test_no_socket_yet_is_down_without_asking(tmp_path: Path) -> None:
    assert _ping(Client(RuntimeError("must not be asked")), tmp_path / "none.sock") == "down"


def test_a_silent_server_that_uses_no_cpu_for_the_window_is_hung() -> None:
    watch = IdleWatch(window=30.0, share=0.01)
    assert not watch.hung(cpu=5.0, now=100.0)  # the first sample opens the window
    assert not watch.hung(cpu=5.0, now=120.0)
    assert not watch.hung(cpu=5.1, now=129.0)  # 0.1 s of CPU in 29 s: under 1%, still idle
    assert watch.hung(cpu=5.1, now=130.0)


def test_a_silent_server_that_works_is_not_hung() -> None:
    """Replaying a long log keeps a CPU busy: each window that sees work starts anew."""
    watch = IdleWatch(window=30.0, share=0.01)
    cpu = 0.0
    for second in range(0, 600, 5):
        cpu += 2.0  # 40% of a CPU: a starved host, but working
        assert not watch.hung(cpu=cpu, now=float(second))


def test_an_answer_closes_the_window() -> None:
    watch = IdleWatch(window=30.0, share=0.01)
    watch.hung(cpu=1.0, now=0.0)
    watch.reset()  # it answered LOADING in between
    assert not watch.hung(cpu=1.0, now=31.0)  # a new window opens here
    assert not watch.hung(cpu=1.0, now=60.0)
    assert watch.hung(cpu=1.0, now=61.0)


def persistence(**fields: int) -> dict[str, object]:
    info: dict[str, object] = {"aof_enabled": 1, "aof_base_size": 1000}
    info.update(aof_current_size=1000, aof_rewrite_in_progress=0, aof_rewrite_scheduled=0)
    return {**info, **fields}


@pytest.mark.parametrize(
    ("fields", "rewrite"),
    [
        ({}, False),  # nothing written since the last rewrite
        ({"aof_current_size": 1000 + COMPACT_MIN_BYTES}, False),  # a little: not worth a fork
        ({"aof_current_size": 1001 + COMPACT_MIN_BYTES}, True),
        ({"aof_current_size": 10**7, "aof_rewrite_in_progress": 1}, False),  # already going
        ({"aof_current_size": 10**7, "aof_rewrite_scheduled": 1}, False),
        ({"aof_current_size": 10**7, "aof_enabled": 0}, False),
    ],
)
def test_a_stop_rewrites_the_log_only_when_it_has_grown(
    fields: dict[str, int], rewrite: bool
) -> None:
    assert needs_compaction(persistence(**fields)) is rewrite


def test_an_info_without_the_fields_is_an_error_not_a_silent_no() -> None:
    with pytest.raises(GraphError, match="aof_base_size"):
        needs_compaction({"aof_enabled": 1, "aof_current_size": 5})


LOADING_THEN_PANIC = """\
--- lexi-maint starts /venv/bin/redis-server at Tue Dec  1 14:13:51 2026
6371:M 01 Dec 2026 14:13:51.564 * Server initialized
6371:M 01 Dec 2026 14:13:51.564 * Reading RDB base file on AOF loading...
6371:M 01 Dec 2026 14:13:51.564 * Loading RDB produced by version 8.2.3
6371:M 01 Dec 2026 14:13:51.566 # ------------------------------------------------
6371:M 01 Dec 2026 14:13:51.566 # Guru Meditation: Error loading data from RDB (short read or \
EOF). Read performed by module 'graph' about type 'graphdata'. #module.c:7192
------ STACK TRACE ------
"""

LOADED = """\
1638:M 01 Dec 2026 13:46:32.249 * Reading RDB base file on AOF loading...
1638:M 01 Dec 2026 13:46:32.258 * DB loaded from append only file: 0.009 seconds
1638:M 01 Dec 2026 13:46:32.259 * Ready to accept connections unix
"""


def test_a_server_that_died_loading_its_files_says_why() -> None:
    assert load_failure(LOADING_THEN_PANIC) == (
        "Error loading data from RDB (short read or EOF). Read performed by module 'graph' "
        "about type 'graphdata'"
    )


def test_a_bad_log_file_is_named_by_redis_own_check() -> None:
    log = "* Reading the remaining AOF tail...\n# Bad file format reading the append only file x\n"
    assert load_failure(log) == "Bad file format reading the append only file x"


def test_a_server_that_died_before_or_after_loading_is_not_a_load_failure() -> None:
    assert load_failure("* Server initialized\n# Can't load module\n") is None
    assert load_failure(LOADED + "# Guru Meditation: something later\n") is None


def test_a_death_while_loading_without_a_reason_still_says_it_was_loading() -> None:
    assert load_failure("* Loading RDB produced by version 8.2.3\n") == (
        "it stopped while loading them (no reason in its log)"
    )
