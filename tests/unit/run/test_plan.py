from __future__ import annotations

from lexi_maint.run.plan import Action, Decision, Found, Known, Status, plan


def known(path: str, sha: str, status: Status, attempts: int = 1) -> Known:
    return Known(path=path, sha256=sha, status=status, attempts=attempts)


def test_new_changed_unchanged_failed_exhausted_vanished() -> None:
    found = [
        Found("new", "n", 1),
        Found("same", "s", 1),
        Found("changed", "c2", 1),
        Found("retry", "r", 1),
        Found("exhausted", "e", 1),
    ]
    ledger = {
        "same": known("same", "s", Status.DONE),
        "changed": known("changed", "c1", Status.DONE),
        "retry": known("retry", "r", Status.FAILED, attempts=2),
        "exhausted": known("exhausted", "e", Status.FAILED, attempts=3),
        "gone": known("gone", "g", Status.DONE),
        "gone-before": known("gone-before", "g", Status.SKIPPED),
    }
    assert plan(found, ledger, reprocess=False, max_attempts=3) == [
        Decision("new", Action.PROCESS, reset_attempts=True),
        Decision("same", Action.UNCHANGED),
        Decision("changed", Action.PROCESS, reset_attempts=True),
        Decision("retry", Action.PROCESS),
        Decision("exhausted", Action.EXHAUSTED),
        Decision("gone", Action.VANISHED),
    ]


def test_reprocess_forces_everything_found() -> None:
    found = [Found("a", "x", 1), Found("b", "y", 1)]
    ledger = {"a": known("a", "x", Status.DONE), "b": known("b", "y", Status.FAILED, 9)}
    decisions = plan(found, ledger, reprocess=True, max_attempts=3)
    assert [d.action for d in decisions] == [Action.PROCESS, Action.PROCESS]
    assert all(d.reset_attempts for d in decisions)


def test_unhashable_file_counts_attempts_like_any_other() -> None:
    found = [Found("locked", "", 0)]
    ledger = {"locked": known("locked", "", Status.FAILED, attempts=3)}
    assert plan(found, ledger, reprocess=False, max_attempts=3) == [
        Decision("locked", Action.EXHAUSTED)
    ]


def test_documents_last_killed_are_planned_last_and_solo() -> None:
    found = [Found("k", "k", 1), Found("n", "n", 1), Found("i", "i", 1)]
    ledger = {
        "k": Known("k", "k", Status.FAILED, 1, "killed"),
        "i": Known("i", "i", Status.FAILED, 0, "interrupted"),
    }
    decisions = plan(found, ledger, reprocess=False, max_attempts=3)
    assert [(d.path, d.solo) for d in decisions] == [("n", False), ("i", False), ("k", True)]
