"""lexi-maint(1) and the bash completion, generated from the parser."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from lexi_maint.cli.main import build_parser
from lexi_maint.cli.manpage import bash_completion, manpage, subcommands
from tests.hostpkg import ensure_tool


def test_the_man_page_documents_every_command_and_the_exit_codes() -> None:
    page = manpage()
    assert page.startswith(".TH LEXI\\-MAINT 1 ")
    leaves = [name for name, sub in subcommands(build_parser()) if sub.epilog and name not in (
        "config", "graph")]  # fmt: skip
    for name in leaves:
        assert f".SS {name.replace('-', chr(92) + '-')}\n" in page, name
    assert ".SH EXIT STATUS" in page and "141" in page
    assert "run\\-id" not in page  # hidden
    assert "\\fB\\-\\-write\\fR" in page


@pytest.mark.allow_subprocess("groff", "apt-get")
def test_the_man_page_renders_without_warnings(tmp_path: Path) -> None:
    groff = ensure_tool("groff", "groff-base")
    path = tmp_path / "lexi-maint.1"
    path.write_text(manpage(), encoding="utf-8")
    proc = subprocess.run([groff, "-k", "-man", "-Tutf8", "-ww", "-z", str(path)],
                          capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 0 and proc.stderr == ""


def complete(script: Path, *words: str) -> list[str]:
    """What bash offers after `words` (the last one is being typed)."""
    line = " ".join(f"'{w}'" for w in words)
    proc = subprocess.run(
        ["bash", "--norc", "-c", f'source {script}; COMP_WORDS=({line}); '
         f'COMP_CWORD={len(words) - 1}; _lexi_maint; echo "${{COMPREPLY[@]}}"'],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return proc.stdout.split()


@pytest.mark.allow_subprocess("bash")
def test_bash_completion_offers_commands_actions_and_options(tmp_path: Path) -> None:
    script = tmp_path / "lexi-maint"
    script.write_text(bash_completion())
    assert complete(script, "lexi-maint", "gr") == ["graph"]
    assert complete(script, "lexi-maint", "--config", "x.toml", "graph", "q") == ["query"]
    assert "--write" in complete(script, "lexi-maint", "graph", "query", "--")
    assert "--reprocess" in complete(script, "lexi-maint", "run", "cao_import", "--")
    assert "--run-id" not in complete(script, "lexi-maint", "run", "--")
