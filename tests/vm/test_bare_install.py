"""Issue 9's acceptance: a bare Debian image, the README's install block verbatim, then a
DeepSeek job through `systemctl start lexi-batch@cao_import` as the sandboxed lexi-batch.

One boot (guest/bare_install.py records, these tests assert). The image (bare.py) holds only
what a minimal server has; apt and pip in it read the site's mirrors, which here are a local
repository of .debs and a wheelhouse in the 9p share (the guest has no network). `$EDITOR` is
the operator's edit of the configuration: here it writes guest/bare-lexi-maint.toml and starts
the LLM endpoint, the project's OpenAI-compatible test server on loopback.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from . import bare
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


# Opt-in until one boot has passed end to end (LEXI_VM_BARE=1): the boot takes 10-25 min and
# its first complete run found the 0640 configuration; the run after that fix did not finish.
# LEXI_VM_BARE_SUITES=bookworm,trixie adds Debian 13 (one more boot).
SUITES = os.environ.get("LEXI_VM_BARE_SUITES", "bookworm").split(",")
BARE_OPT_IN = os.environ.get("LEXI_VM_BARE") == "1"
OS_NAMES = {"bookworm": "Debian GNU/Linux 12", "trixie": "Debian GNU/Linux 13"}


@pytest.fixture(scope="module", params=SUITES)
def suite(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def boot(suite: str, tmp_path_factory: pytest.TempPathFactory) -> VmResult:
    if not BARE_OPT_IN:
        pytest.skip("the bare-image boot is opt-in for now: LEXI_VM_BARE=1 (tests/vm/README.md)")
    try:
        image = bare.ensure_bare_image(suite)
    except VmSetupError as exc:
        pytest.fail(f"VM test tier unavailable on this host: {exc}", pytrace=False)
    share = tmp_path_factory.mktemp(f"bare-install-{suite}")
    prepare_share(share, ENTRY)
    (share / "install.sh").write_text(readme_install_block((REPO / "README.md").read_text()))
    shutil.copytree(REPO, share / "repo", ignore=IGNORE, symlinks=False)
    _link_tree(image.debs, share / bare.DEBS)
    _link_tree(image.wheels, share / bare.WHEELS)
    result = run_in_vm(share, BOOT_TIMEOUT_S, memory_mb=3072, cpus=2, image=image.image)
    record_boot(f"bare-install ({suite})", result)
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
    assert "apt-get update" in r["output"], "no apt-get update although the lists were missing"
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
        # one chunking call per window, one analysis call per chunk, none answered from cache
        assert doc["status"] == "done" and doc["chunks"] >= 1, (name, doc)
        assert doc["llm"]["calls"] >= doc["chunks"] + 1, (name, doc)
        assert not any("structural" in w for w in doc["warnings"]), (name, doc)
    calls = sum(doc["llm"]["calls"] for doc in documents.values())
    assert r["llm_server"]["answered"] == r["llm_server"]["calls"] == calls, r["llm_server"]
    observed = r["observed"]
    assert "inactive" in observed["service_states"], "lexi.service was never stopped"
    assert r["service_after"] == "active" and r["health"] == "ok" and r["service_pid_changed"]
    assert observed["job_users"] == ["lexi-batch"], observed["job_users"]
    assert observed["credential_seen"] == [True], "the key did not reach the job unit"


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
