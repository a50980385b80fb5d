from __future__ import annotations

from lexi_maint.errors import ErrorClass
from lexi_maint.run.scheduler import Attempt, Scheduler


def drain(s: Scheduler, memory_ok: bool = True) -> list[str]:
    started = []
    while (path := s.next(memory_ok=memory_ok)) is not None:
        started.append(path)
    return started


def test_runs_at_most_workers_at_once() -> None:
    s = Scheduler(["a", "b", "c"], workers=2, max_attempts=3)
    assert drain(s) == ["a", "b"]
    s.ended(Attempt("a", 1))
    assert drain(s) == ["c"]
    s.ended(Attempt("b", 1))
    s.ended(Attempt("c", 1))
    assert s.finished


def test_memory_hold_stops_new_work_but_never_stalls_an_idle_job() -> None:
    s = Scheduler(["a", "b", "c"], workers=3, max_attempts=3)
    assert drain(s, memory_ok=False) == ["a"]  # nothing running: one starts anyway
    assert s.next(memory_ok=False) is None  # held while "a" runs
    assert drain(s, memory_ok=True) == ["b", "c"]


def test_killed_document_is_retried_once_alone() -> None:
    s = Scheduler(["a", "b", "c", "d"], workers=2, max_attempts=3)
    assert drain(s) == ["a", "b"]
    killed = Attempt("a", 1, failed=True, error_class=ErrorClass.KILLED, retryable=True)
    assert s.ended(killed) is True
    assert s.next(memory_ok=True) is None  # "b" still running: the retry waits, nothing new starts
    s.ended(Attempt("b", 1))
    assert s.next(memory_ok=True) == "a"
    assert s.is_solo("a")
    assert s.next(memory_ok=True) is None  # nothing beside the solo retry
    again = Attempt("a", 2, failed=True, error_class=ErrorClass.KILLED, retryable=True)
    assert s.ended(again) is False  # only once
    assert drain(s) == ["c", "d"]


def test_retryable_failure_requeues_until_attempts_run_out() -> None:
    s = Scheduler(["a"], workers=1, max_attempts=2)
    assert drain(s) == ["a"]
    graph = Attempt("a", 1, failed=True, error_class=ErrorClass.GRAPH, retryable=True)
    assert s.ended(graph) is True
    assert drain(s) == ["a"]
    assert (
        s.ended(Attempt("a", 2, failed=True, error_class=ErrorClass.GRAPH, retryable=True)) is False
    )
    assert s.finished


def test_permanent_failure_is_not_requeued() -> None:
    s = Scheduler(["a"], workers=1, max_attempts=5)
    drain(s)
    assert s.ended(Attempt("a", 1, failed=True, error_class=ErrorClass.EMPTY)) is False
    assert s.finished


def test_documents_killed_in_an_earlier_run_go_last_and_alone() -> None:
    s = Scheduler(["a", "b"], workers=2, max_attempts=3, solo_last=["k1", "k2"])
    assert drain(s) == ["a", "b"]
    s.ended(Attempt("a", 1))
    assert s.next(memory_ok=True) is None  # "b" still runs: k1 waits to be alone
    s.ended(Attempt("b", 1))
    assert s.next(memory_ok=True) == "k1"
    assert s.next(memory_ok=True) is None
    s.ended(Attempt("k1", 2))
    assert drain(s) == ["k2"]
    s.ended(Attempt("k2", 2))
    assert s.finished
