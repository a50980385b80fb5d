"""A damaged ledger ends in one LedgerError naming the command that recovers, never a traceback.

Fuzzed with hypothesis: garbled values in any column (invalid UTF-8, wrong types, unknown
statuses, broken JSON) and overwritten bytes anywhere in the database file.
"""

from __future__ import annotations

import math
import os
import shutil
import sqlite3
import subprocess
from contextlib import closing
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from lexi_maint.cli.main import main
from lexi_maint.errors import ErrorClass, LedgerError
from lexi_maint.pipeline.contract import Failure, Outcome, Success
from lexi_maint.run.ledger import Ledger
from lexi_maint.run.plan import Found, plan

JOB = "j"
FIXTURES_OK = [HealthCheck.function_scoped_fixture]


def make_ledger(path: Path) -> None:
    with Ledger.open(path) as ledger:
        ledger.start_run(JOB, "r1", os.getpid())
        found = [Found(f"/in/{i}.txt", f"{i:064d}", 10 + i) for i in range(30)]
        decisions = plan(found, ledger.known(JOB), reprocess=False, max_attempts=3)
        ledger.apply_plan(JOB, found, decisions)
        for i, f in enumerate(found):
            ledger.mark_running(JOB, f.path, "r1")
            outcome: Outcome = Success(2, {"parse": 0.1}, 1000, ("a warning",))
            if i % 3 == 0:
                outcome = Failure(ErrorClass.EMPTY, "empty", False)
            ledger.record(JOB, f.path, outcome)
        ledger.finish_run(JOB, "r1", "finished", {"done": 20})
    # fold the WAL into the main file, so byte damage hits the data
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ledger") / "ledger.sqlite3"
    make_ledger(path)
    return path


def use(path: Path) -> None:
    """Everything a run and `status` do with the ledger."""
    with Ledger.open(path) as ledger:
        ledger.documents(JOB)
        ledger.last_run(JOB)
        known = ledger.known(JOB)
        ledger.start_run(JOB, "r2", os.getpid())
        found = [Found(p, k.sha256, 1) for p, k in known.items()]
        ledger.apply_plan(JOB, found, plan(found, known, reprocess=False, max_attempts=3))
        ledger.finish_run(JOB, "r2", "finished", {})


def fresh_copy(pristine: Path, tmp_path: Path) -> Path:
    target = tmp_path / "state" / "ledger.sqlite3"
    target.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(pristine, target)
    return target


garbage = st.one_of(
    st.binary(max_size=20),
    st.text(max_size=20),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),  # what SQLite can store
    st.floats(),
    st.none(),
    st.sampled_from(["bogus", "running", "{", "[1,", "null", "{}", "[]", "done"]),
)
COLUMNS = ["sha256", "path", "status", "attempts", "warnings", "timings", "error_message",
           "size", "started_at", "chunks", "cost", "summary", "run_id"]  # fmt: skip


@settings(max_examples=120, deadline=None, suppress_health_check=FIXTURES_OK)
@given(st.sampled_from(COLUMNS), garbage, st.integers(min_value=0, max_value=29))
@example(column="size", value=math.inf, row=0)  # int(inf) is an OverflowError, not a ValueError
@example(column="started_at", value=-math.inf, row=0)  # no timestamp can be shown for it
def test_a_garbled_value_is_a_ledger_error_or_harmless(
    pristine: Path, tmp_path: Path, column: str, value: object, row: int
) -> None:
    path = fresh_copy(pristine, tmp_path)
    table = "runs" if column == "summary" else "documents"
    try:
        with closing(sqlite3.connect(path)) as db, db:
            db.execute("PRAGMA ignore_check_constraints = ON")
            if isinstance(value, bytes):  # stored as text that is not UTF-8
                db.execute(f"UPDATE {table} SET {column} = CAST(? AS TEXT) WHERE rowid = ?",
                           (value, row + 1))  # fmt: skip
            else:
                db.execute(f"UPDATE {table} SET {column} = ? WHERE rowid = ?", (value, row + 1))
    except sqlite3.IntegrityError:  # NOT NULL, a duplicate key: SQL cannot store it
        assume(False)
    try:
        use(path)
    except LedgerError as exc:
        assert "\n" not in str(exc)


@settings(max_examples=80, deadline=None, suppress_health_check=FIXTURES_OK)
@given(st.integers(min_value=0, max_value=2**20), st.binary(min_size=1, max_size=64))
def test_overwritten_bytes_are_a_ledger_error_or_harmless(
    pristine: Path, tmp_path: Path, offset: int, junk: bytes
) -> None:
    path = fresh_copy(pristine, tmp_path)
    size = path.stat().st_size
    with path.open("r+b") as handle:
        handle.seek(offset % size)
        handle.write(junk)
    try:
        use(path)
    except LedgerError as exc:
        assert "\n" not in str(exc)


@pytest.mark.allow_subprocess("sh")
def test_status_on_a_damaged_ledger_says_how_to_recover(
    pristine: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = fresh_copy(pristine, tmp_path)
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("UPDATE documents SET sha256 = CAST(X'ff00fe' AS TEXT) WHERE rowid = 3")
    config = tmp_path / "c.toml"
    config.write_text(f'state_dir = "{path.parent}"\n[jobs.j]\ninput = "{tmp_path}"\n')
    code = main(["--config", str(config), "status", JOB])
    err = capsys.readouterr().err
    assert code == 3 and "Traceback" not in err
    assert err.count("\n") == 1 and "is damaged" in err
    assert f"mkdir {path.parent}/ledger.damaged && mv {path}" in err
    # the command works as printed, whether or not the -wal and -shm files exist
    command = err.split("move it aside: ", 1)[1].split(" (the next run", 1)[0]
    assert not Path(f"{path}-wal").exists()
    moved = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=False)
    assert moved.returncode == 0, moved.stderr
    assert not path.exists() and (path.parent / "ledger.damaged" / path.name).exists()


def test_a_file_that_is_not_a_database_says_how_to_recover(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(LedgerError, match=r"is damaged .* mkdir"):
        Ledger.open(path)


def test_an_unwritable_state_dir_is_one_line_with_status_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state"
    state.write_text("a file where the state directory should be")
    (tmp_path / "in").mkdir()
    config = tmp_path / "c.toml"
    config.write_text(f'state_dir = "{state}"\n[jobs.j]\ninput = "{tmp_path}/in"\n')
    code = main(["--config", str(config), "run", JOB])
    err = capsys.readouterr().err
    assert code == 3 and "Traceback" not in err and err.count("\n") == 1
    assert f"state directory {state} cannot be used" in err
