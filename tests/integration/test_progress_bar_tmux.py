"""The live bar in a real terminal (tmux), 48 and 120 columns wide, and Ctrl-C."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lexi_maint.report.progress import display_width
from tests.integration.lexi_env import Workspace, copy_samples, lexi_argv, workspace
from tests.integration.tmux import Terminal, text
from tests.llm_server import API_KEY, FakeLlmServer, LatencyModel

pytestmark = pytest.mark.integration


@pytest.fixture()
def slow_llm() -> Iterator[FakeLlmServer]:
    """Every model call takes 0.5 s: a document takes a few seconds."""
    with FakeLlmServer(latency=LatencyModel.parse("fixed:0.5")) as server:
        yield server


@pytest.fixture()
def ws(slow_llm: FakeLlmServer) -> Iterator[Workspace]:
    with workspace() as w:
        key = w.root / "key"
        key.write_text(API_KEY + "\n")
        key.chmod(0o600)
        w.write_config(
            workers=1,
            extra=(
                f'\n[llm]\nprovider = "deepseek"\nbase_url = "{slow_llm.url}"\n'
                f'api_key_file = "{key}"\n'
            ),
        )
        yield w


def terminal(ws: Workspace, columns: int) -> Iterator[Terminal]:
    term = Terminal(lexi_argv(ws.config, "run", "cao_import"), columns=columns, cwd=str(ws.root))
    try:
        yield term
    finally:
        term.close()


def bar_rows(rows: list[str]) -> list[str]:
    return [r for r in rows if "█" in r or "·····" in r]


def test_48_columns_the_bar_fits_from_the_start_and_ctrl_c_prints_a_summary(
    ws: Workspace,
) -> None:
    copy_samples(ws.input)
    for term in terminal(ws, 48):
        rows = term.wait_for(lambda rows: any("0/6 · starting" in r for r in rows))
        assert bar_rows(rows) == [next(r for r in rows if "starting" in r)]
        rows = term.wait_for(lambda rows: any("2/6 ✅2" in r for r in rows))
        assert len(bar_rows(rows)) == 1, text(rows)  # no stale copies of a wrapped bar
        assert all(display_width(r) <= 47 for r in bar_rows(rows)), text(rows)
        term.keys("C-c")
        rows = term.wait_for(lambda rows: any(r.startswith("EXIT=") for r in rows))
        screen = text(rows)
        assert "EXIT=130" in rows, screen
        assert "interrupted by SIGINT" in screen
        assert "summary: job cao_import" in screen
        assert "lexi-maint: stopped by SIGINT" in rows, screen
        assert bar_rows(rows) == [], screen  # the summary replaced the bar
        assert "^C" not in screen


def test_120_columns_failures_above_the_bar_and_the_prompt_on_its_own_line(
    ws: Workspace,
) -> None:
    copy_samples(ws.input)
    (ws.input / "empty.txt").write_text("")
    for term in terminal(ws, 120):
        rows = term.wait_for(lambda rows: any(r.startswith("EXIT=") for r in rows))
        screen = text(rows)
        assert "EXIT=1" in rows, screen  # on its own line: the summary ended with a newline
        assert any("❌ empty.txt empty:" in r for r in rows), screen
        assert rows.index(next(r for r in rows if "empty.txt" in r)) < rows.index(
            next(r for r in rows if r.startswith("summary: "))
        )
        assert bar_rows(rows) == [], screen
        assert "result: 1 document failed: see `lexi-maint status cao_import --failed`" in screen
