"""The operator's frictions of issue 12 that need real processes and a real FalkorDB."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator

import pytest

from tests.integration.lexi_env import Workspace, copy_samples, lexi_argv, workspace

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def ws() -> Iterator[Workspace]:
    """A workspace after one run of the samples (the tests below only read, or undo)."""
    with workspace() as w:
        w.write_config()
        copy_samples(w.input)
        result = w.cli("run", "cao_import")
        assert result.returncode == 0, result.stdout + result.stderr
        yield w


def into_closed_pipe(ws: Workspace, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI with stdout on a pipe whose reader is already gone (`... | head -0`)."""
    read, write = os.pipe()
    os.close(read)
    try:
        return subprocess.run(
            lexi_argv(ws.config, *args), stdout=write, stderr=subprocess.PIPE, text=True,
            timeout=120, cwd=ws.root,
        )  # fmt: skip
    finally:
        os.close(write)


@pytest.mark.parametrize(
    "args", [("status", "cao_import", "--json"), ("graph", "stats"), ("config", "check")]
)
def test_a_closed_pipe_ends_the_command_silently(ws: Workspace, args: tuple[str, ...]) -> None:
    result = into_closed_pipe(ws, *args)
    assert result.stderr == ""
    assert result.returncode == 141


def test_a_run_whose_reader_went_away_still_finishes(ws: Workspace) -> None:
    result = into_closed_pipe(ws, "run", "cao_import", "--reprocess")
    assert result.stderr == ""
    assert result.returncode == 0
    assert json.loads(ws.cli("status", "cao_import", "--json").stdout)["last_run"]["status"] == (
        "finished"
    )


def test_graph_query_is_read_only_unless_write_is_given(ws: Workspace) -> None:
    refused = ws.cli("graph", "query", "CREATE (x:Evil {a: 1}) RETURN x")
    assert refused.returncode == 3
    assert refused.stderr.count("\n") == 1
    assert "read-only" in refused.stderr and "--write" in refused.stderr
    assert ws.graph_query("MATCH (x:Evil) RETURN count(x) AS n") == [{"n": 0}]
    read = ws.cli("graph", "query", "MATCH (d:Document) RETURN count(d) AS n", "--config",
                  str(ws.config))  # fmt: skip
    assert read.returncode == 0 and json.loads(read.stdout)["n"] > 0
    written = ws.cli("graph", "query", "--write", "CREATE (x:Wanted {a: 1}) RETURN x.a AS a")
    assert written.returncode == 0, written.stderr
    assert json.loads(written.stdout) == {"a": 1}
    ws.cli("graph", "query", "--write", "MATCH (x:Wanted) DELETE x")


def test_status_json_carries_schema_version_and_iso_times(ws: Workspace) -> None:
    data = json.loads(ws.cli("status", "cao_import", "--json").stdout)
    assert data["schema_version"] == 1
    assert data["last_run"]["started_at"].endswith("+00:00")
    assert all(d["finished_at"].endswith("+00:00") for d in data["documents"])


def test_progress_journal_outside_the_journal_prints_start_and_summary(ws: Workspace) -> None:
    env = {k: v for k, v in os.environ.items() if k != "JOURNAL_STREAM"}
    result = subprocess.run(
        lexi_argv(ws.config, "run", "cao_import", "--progress", "journal"),
        capture_output=True, text=True, timeout=120, env=env, cwd=ws.root,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "job cao_import · run cao_import-" in result.stderr
    assert "summary: job cao_import" in result.stderr


def test_a_run_writes_its_metrics_textfile() -> None:
    from prometheus_client.parser import text_string_to_metric_families

    with workspace() as w:
        textfile_dir = w.root / "node_exporter"
        textfile_dir.mkdir()
        w.write_config(extra=f'\n[metrics]\ntextfile_dir = "{textfile_dir}"\ninterval = 1\n')
        copy_samples(w.input)
        (w.input / "empty.txt").write_text("")
        assert w.cli("run", "cao_import").returncode == 1
        text = (textfile_dir / "lexi-maint-cao_import.prom").read_text()
        values = {
            (s.name, s.labels.get("status", "")): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }
        assert values[("lexi_maint_documents", "done")] == 6
        assert values[("lexi_maint_documents", "failed")] == 1
        assert values[("lexi_maint_run_exit_status", "")] == 1
        assert values[("lexi_maint_run_running", "")] == 0
        assert values[("lexi_maint_job_peak_memory_bytes", "")] > 2**20
        assert ("lexi_maint_last_success_timestamp_seconds", "") not in values
        (w.input / "empty.txt").unlink()
        assert w.cli("run", "cao_import").returncode == 0
        text = (textfile_dir / "lexi-maint-cao_import.prom").read_text()
        assert 'lexi_maint_last_success_timestamp_seconds{job="cao_import"}' in text
        assert sorted(p.name for p in textfile_dir.iterdir()) == ["lexi-maint-cao_import.prom"]
