"""Issue 9's acceptance: a bare Debian image, the README's install block verbatim, then a
DeepSeek job through `systemctl start lexi-batch@cao_import` as the sandboxed lexi-batch.

One boot (guest/bare_install.py records, these tests assert). The image (bare.py) holds only
what a minimal server has; apt and pip in it read the site's mirrors, which here are a local
repository of .debs and a wheelhouse in the 9p share (the guest has no network). `$EDITOR` is
the operator's edit of the configuration: here it writes guest/bare-lexi-maint.toml and starts
the LLM endpoint, the project's OpenAI-compatible test server on loopback.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

import pytest

from . import background, bare
from .conftest import record_boot
from .image import VmSetupError
from .runner import VmResult, prepare_share, run_in_vm

REPO = Path(__file__).resolve().parents[2]
BOOT_TIMEOUT_S = 2700.0  # about 10 min on an idle 2-core host; 3x that when it is shared
MARKER = "<!-- install-block:"
SCORE_LIMIT = 2.5
pytestmark = [pytest.mark.vm, pytest.mark.timeout(BOOT_TIMEOUT_S + 600)]
ENTRY = "#!/bin/bash\nexec python3 /mnt/host/repo/tests/vm/guest/bare_install.py /mnt/host\n"
IGNORE = shutil.ignore_patterns(
    ".git", ".venv", "__pycache__", "*.pyc", ".mypy_cache", ".ruff_cache", ".pytest_cache",
    ".demo-state", "bench/out", "*.egg-info", "build",
)  # fmt: skip


def readme_install_block(readme: str) -> str:
    """The fenced block after the install-block marker in README.md, as written there."""
    _, marker, rest = readme.partition(MARKER)
    found = re.search(r"^```sh\n(.*?)^```$", rest, re.DOTALL | re.MULTILINE)
    if not marker or found is None:
        raise AssertionError(f"README.md has no ```sh block after {MARKER!r}")
    return found.group(1)


def test_the_install_block_is_found_and_is_what_an_operator_types() -> None:
    block = readme_install_block((REPO / "README.md").read_text())
    lines = block.splitlines()
    assert lines[0] == "make install" and lines[-1] == "systemctl start lexi-maintd", lines


def _link_tree(source: Path, target: Path) -> None:
    # hard links where the cache and the share share a filesystem, copies elsewhere
    shutil.copytree(source, target, copy_function=_link_or_copy)


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


# LEXI_VM_BARE_SUITES=bookworm,trixie adds Debian 13 (one more boot).
SUITES = os.environ.get("LEXI_VM_BARE_SUITES", "bookworm").split(",")
OS_NAMES = {"bookworm": "Debian GNU/Linux 12", "trixie": "Debian GNU/Linux 13"}
# One vCPU: the install block is serial work (apt, one compiler), and the boot runs beside
# the other tiers (background.py), so it takes one of the host's two cores, not both.
CPUS = 1


def _label(suite: str) -> str:
    return f"bare-install ({suite})"


def _boot_suite(image: bare.BareImage, share: Path, cancel: threading.Event) -> VmResult:
    prepare_share(share, ENTRY)
    (share / "install.sh").write_text(readme_install_block((REPO / "README.md").read_text()))
    shutil.copytree(REPO, share / "repo", ignore=IGNORE, symlinks=False)
    _link_tree(image.debs, share / bare.DEBS)
    _link_tree(image.wheels, share / bare.WHEELS)
    return run_in_vm(share, BOOT_TIMEOUT_S, memory_mb=3072, cpus=CPUS, image=image.image,
                     cancel=cancel)  # fmt: skip


_IMAGE_ERRORS: dict[str, str] = {}


def _start(suite: str) -> background.BackgroundBoot | None:
    """Build or reuse the suite's image here (a build cannot be cancelled halfway), then
    boot it on a thread. None if the image cannot be had (the reason: _IMAGE_ERRORS)."""
    try:
        image = bare.ensure_bare_image(suite)
    except VmSetupError as exc:
        _IMAGE_ERRORS[suite] = str(exc)
        return None
    share = Path(tempfile.mkdtemp(prefix=f"lexi-vm-bare-{suite}-"))
    return background.start(_label(suite), functools.partial(_boot_suite, image, share), share)


def start_boots() -> None:
    """Called right after collection (conftest.py): each suite's boot on a thread of its own
    (one suite unless LEXI_VM_BARE_SUITES names more)."""
    for suite in SUITES:
        _start(suite)


pytestmark.append(pytest.mark.background_boot(start=start_boots))


@pytest.fixture(scope="module", params=SUITES)
def suite(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def boot(suite: str) -> VmResult:
    """The suite's boot, started in the background at collection; waited for here."""
    started = background.get(_label(suite)) or _start(suite)
    if started is None:
        reason = _IMAGE_ERRORS[suite]
        pytest.fail(f"VM test tier unavailable on this host: {reason}", pytrace=False)
    result = started.wait()
    record_boot(_label(suite), result)
    return result


@pytest.fixture(scope="module")
def record(boot: VmResult) -> dict[str, Any]:
    path = boot.out_dir / "bare.json"
    if not path.exists():
        pytest.fail(f"the guest wrote no results:\n{boot.describe()}", pytrace=False)
    data: dict[str, Any] = json.loads(path.read_text())
    timings = {k: v.get("seconds") for k, v in data.items()}
    print("timings (s):", timings, "boot to entry:", boot.boot_seconds, "boot:", boot.total_seconds)
    return data


def step(record: dict[str, Any], name: str, boot: VmResult) -> dict[str, Any]:
    r: dict[str, Any] | None = record.get(name)
    if r is None:
        pytest.fail(f"step {name} did not run:\n{boot.describe()}", pytrace=False)
    assert "error" not in r, r.get("traceback", r["error"])
    return r


def test_the_image_is_a_bare_server(record: dict[str, Any], boot: VmResult, suite: str) -> None:
    r = step(record, "bare", boot)
    assert r["os"].startswith(f'PRETTY_NAME="{OS_NAMES[suite]}'), r["os"]
    assert not any(r["installed"].values()), r["installed"]  # no compiler, libgomp1, venv
    assert r["cc"] is None and r["apt_lists"] == [] and r["ensurepip"] is False, r


def test_the_readme_install_block_works_verbatim(record: dict[str, Any], boot: VmResult) -> None:
    r = step(record, "install", boot)
    assert r["rc"] == 0, r["output"][-4000:]
    assert all(r["installed"].values()), r["installed"]
    assert "no package lists yet: apt-get update" in r["output"], r["output"][:3000]
    assert r["lexi_maint_on_path"] == "/usr/local/bin/lexi-maint"
    assert "(lexi-batch)" in r["id_lexi_batch"] and r["group_lexi_maint"].startswith("lexi-maint:")
    assert r["daemon"] == "active"
    assert r["verify"] == "", r["verify"]
    assert "✓ LLM endpoint" in r["output"], r["output"][-3000:]  # doctor against the test server


def test_a_deepseek_job_runs_through_systemctl_as_lexi_batch(
    record: dict[str, Any], boot: VmResult
) -> None:
    r = step(record, "job", boot)
    assert r["start_rc"] == 0 and r["batch_result"] == "success", r["batch_journal"]
    documents = r["documents"]
    assert len(documents) == 6 and r["counts"]["done"] == 6, (r["counts"], documents)
    for name, doc in documents.items():
        # at least one chunking and one analysis call (analysis is batched: several chunks a
        # call), none answered from the cache, no structural fallback
        assert doc["status"] == "done" and doc["chunks"] >= 1, (name, doc)
        assert doc["llm"]["calls"] >= 2 and doc["llm"]["cached_answers"] == 0, (name, doc)
        assert not any("structural" in w for w in doc["warnings"]), (name, doc)
    calls = sum(doc["llm"]["calls"] for doc in documents.values())
    assert r["llm_server"]["answered"] == r["llm_server"]["calls"] == calls, r["llm_server"]
    observed = r["observed"]
    assert "inactive" in observed["service_states"], "lexi.service was never stopped"
    assert r["service_after"] == "active" and r["health"] == "ok" and r["service_pid_changed"]
    assert observed["job_users"] == ["lexi-batch"], observed["job_users"]
    assert observed["credential_seen"] == [True], "the key did not reach the job unit"


def _samples(text: str) -> dict[tuple[str, str], float]:
    """(name, status or "") -> value of a textfile's samples."""
    from prometheus_client.parser import text_string_to_metric_families

    return {
        (sample.name, sample.labels.get("status", "")): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_the_installed_daemon_writes_metrics_node_exporter_can_read(
    record: dict[str, Any], boot: VmResult
) -> None:
    assert "✓ metrics: /var/lib/prometheus/node-exporter" in step(record, "install", boot)["output"]
    r = step(record, "job", boot)
    metrics = r["metrics"]
    run, daemon = metrics["lexi-maint-cao_import.prom"], metrics["lexi-maintd-cao_import.prom"]
    assert run is not None and daemon is not None, metrics
    assert metrics["warnings"] == "", metrics["warnings"]
    for written in (run, daemon):  # node_exporter runs as its own user
        assert written["mode"] == "0o644" and written["nobody_reads"], written
    assert (run["owner"], daemon["owner"]) == ("lexi-batch", "root")
    samples = _samples(run["text"])
    calls = sum(doc["llm"]["calls"] for doc in r["documents"].values())
    assert samples[("lexi_maint_documents", "done")] == 6, run["text"]
    assert samples[("lexi_maint_run_running", "")] == 0
    assert samples[("lexi_maint_run_exit_status", "")] == 0
    assert samples[("lexi_maint_llm_calls_total", "")] == calls
    assert ("lexi_maint_last_success_timestamp_seconds", "") in samples
    assert _samples(daemon["text"])[("lexi_maint_service_downtime_seconds", "")] > 0


def test_the_key_never_leaves_the_credential(record: dict[str, Any], boot: VmResult) -> None:
    job, r = step(record, "job", boot), step(record, "leaks", boot)
    assert job["observed"]["secret_in_proc"] == [], "the key is in a process's environ/cmdline"
    assert r["in_journal"] is False and r["journal_bytes"] > 0
    assert r["ledger_exists"] and r["in_state_dir"] == [], r["in_state_dir"]


def test_the_job_unit_is_sandboxed(record: dict[str, Any], boot: VmResult) -> None:
    r = step(record, "job", boot)
    print("job unit:", r["job_score"], "daemon and client:", r["scores"], sep="\n")
    assert len(r["job_score"]) == 1, r["job_security"]
    level = float(re.findall(r"exposure level for \S+: ([0-9.]+)", r["job_score"][0])[0])
    assert level <= SCORE_LIMIT, "\n".join(next(iter(r["job_security"].values())))


def test_upgrade_waits_for_the_run_and_restarts_an_idle_daemon(
    record: dict[str, Any], boot: VmResult
) -> None:
    during = step(record, "job", boot)["upgrade_during_run"]
    assert during["job_still_running"], "the job ended before make install asked the daemon"
    assert during["rc"] != 0 and "in the middle of a run, nothing changed" in during["output"]
    r = step(record, "upgrade_idle", boot)
    assert r["rc"] == 0, r["output"][-3000:]
    assert "restarted on the new code" in r["output"] and r["pid_changed"], r["output"][-2000:]
    assert r["daemon"] == "active" and r["apt_quiet"], r["output"][-2000:]


def test_uninstall_disables_every_timer_instance(record: dict[str, Any], boot: VmResult) -> None:
    r = step(record, "uninstall", boot)
    assert {"lexi-batch@cao_import.timer", "lexi-batch@nightly-2.timer"} <= set(r["timers_before"])
    assert r["rc"] == 0, r["output"]
    assert not any(t.startswith("lexi-batch@") for t in r["timers_after"]), r["timers_after"]
    assert r["timers_active"] == "", r["timers_active"]
    assert not r["on_path"] and not r["venv"] and r["config_kept"] and r["service"] == "active"
