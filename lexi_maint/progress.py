"""Turning run events into what a person reads: one line per document, or a live bar.

The formatting functions are pure; `LineReporter` and `BarReporter` only write to a stream.
"""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

from lexi_maint.events import (
    DocumentFinished,
    DocumentStarted,
    Event,
    JobStopped,
    MemoryHeld,
    RunFinished,
    RunStarted,
    RunSummary,
)
from lexi_maint.ledger import Failure, Success
from lexi_maint.llm.usage import Usage
from lexi_maint.printable import printable

OK = "✅"
FAIL = "❌"
RETRY = "🔁"


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


def format_tokens(count: int) -> str:
    if count >= 10**6:
        return f"{count / 10**6:.2f}M"
    if count >= 10**4:
        return f"{count / 10**3:.1f}k"
    return str(count)


def format_cost(u: Usage) -> str:
    return f"{format_tokens(u.total_tokens)} tokens {u.cost:.4f} {u.currency}".rstrip()


def format_usage(u: Usage) -> str:
    """Model usage in one line: what was spent (calls, tokens in and out, cost), then what
    was reused from the response cache (answers, and what they cost when bought)."""
    spent = (
        f"spent: {u.calls} calls · tokens in {format_tokens(u.prompt_tokens)}"
        f" ({format_tokens(u.cache_hit_tokens)} cache hit)"
        f", out {format_tokens(u.completion_tokens)}"
        f" ({format_tokens(u.reasoning_tokens)} reasoning)"
        f" · cost {u.cost:.4f} {u.currency}".rstrip()
    )
    reused = f"reused from cache: {u.cached_answers} answers"
    if u.cached_answers:
        bought = f"bought for {u.reused_cost:.4f} {u.currency}".rstrip()
        reused += f" ({bought})"
    return f"{spent} · {reused}"


def format_started(e: RunStarted) -> str:
    parts = [f"{e.queued} to process", f"{e.unchanged} unchanged"]
    if e.exhausted:
        parts.append(f"{e.exhausted} failed too often (left alone)")
    if e.vanished:
        parts.append(f"{e.vanished} gone from the input directory")
    if e.interrupted:
        parts.append(f"{e.interrupted} interrupted by an earlier run")
    return f"job {e.job} · run {e.run_id} · {e.total} documents: " + ", ".join(parts)


def format_document(e: DocumentFinished) -> str:
    name = printable(Path(e.path).name)
    position = f"[{e.finished}/{e.queued}]"
    if isinstance(e.outcome, Success):
        usage = e.outcome.usage
        cost = "" if usage.empty else f" · {format_cost(usage)}"
        return f"{position} {OK} {name} {e.outcome.chunks} chunks {e.seconds:.1f} s{cost}"
    failure: Failure = e.outcome
    mark = RETRY if e.requeued else FAIL
    retry = " · will retry" if e.requeued else ""
    return (
        f"{position} {mark} {name} {failure.error_class.value}: {printable(failure.message)}"
        f" (attempt {e.attempt}){retry}"
    )


def format_status_line(e: DocumentFinished, job: str) -> str:
    """The one-line state used for a progress bar and sd_notify STATUS=."""
    return (
        f"{job}: {e.finished}/{e.queued} {OK}{e.done} {FAIL}{e.failed}"
        f" · ETA {format_duration(e.eta_seconds)}"
    )


def format_summary(s: RunSummary) -> str:
    lines = [
        f"summary: job {s.job} · run {s.run_id} · {format_duration(s.seconds)}",
        f"  {s.total} documents · {s.processed} processed: {OK} {s.done} done,"
        f" {FAIL} {s.failed} failed · {s.unchanged} unchanged (skipped)",
    ]
    if s.exhausted:
        lines.append(f"  {s.exhausted} failed earlier {FAIL} and exhausted their attempts")
    if s.vanished:
        lines.append(f"  {s.vanished} no longer in the input directory (marked skipped)")
    if not s.usage.empty:
        lines.append(f"  LLM: {format_usage(s.usage)}")
    verdict = "all documents done" if s.exit_code == 0 else (
        f"{s.failed_in_ledger} documents failed: see `lexi-maint status {s.job}`")  # fmt: skip
    if s.stopped:
        verdict = f"job stopped, {s.left_pending} documents left pending: {printable(s.stopped)}"
    lines.append(f"  result: {verdict}")
    return "\n".join(lines)


def format_stopped(e: JobStopped) -> str:
    by = f" by {printable(Path(e.path).name)}" if e.path else ""  # "": a dependency was down
    released = f"{e.released} running documents put back to pending"
    return f"{FAIL} job stopped{by}: {printable(e.reason)} ({released})"


def format_hold(e: MemoryHeld) -> str:
    return f"holding new documents: memory at {e.reading.describe()}; {e.running} running"


class LineReporter:
    """One line per finished document: for logs, pipes and the journal."""

    def __init__(self, out: TextIO) -> None:
        self._out = out

    def __call__(self, event: Event) -> None:
        line = _line(event)
        if line is not None:
            print(line, file=self._out, flush=True)


class BarReporter:
    """A live bar on a terminal, with failures printed above it."""

    WIDTH = 24

    def __init__(self, out: TextIO, job: str) -> None:
        self._out = out
        self._job = job
        self._bar = ""

    def __call__(self, event: Event) -> None:
        if isinstance(event, DocumentFinished):
            if isinstance(event.outcome, Failure):
                self._print(format_document(event))
            self._draw(event)
        elif isinstance(event, DocumentStarted):
            return
        else:
            line = _line(event)
            if line is not None:
                self._print(line)

    def _draw(self, e: DocumentFinished) -> None:
        filled = self.WIDTH * e.finished // max(e.queued, 1)
        bar = "█" * filled + "·" * (self.WIDTH - filled)
        self._bar = f"{bar} {format_status_line(e, self._job)}"
        self._out.write("\r\x1b[2K" + self._bar)
        self._out.flush()

    def _print(self, line: str) -> None:
        self._out.write("\r\x1b[2K" + line + "\n")
        if self._bar:
            self._out.write(self._bar)
        self._out.flush()


def _line(event: Event) -> str | None:
    if isinstance(event, RunStarted):
        return format_started(event)
    if isinstance(event, DocumentFinished):
        return format_document(event)
    if isinstance(event, MemoryHeld):
        return format_hold(event)
    if isinstance(event, JobStopped):
        return format_stopped(event)
    if isinstance(event, RunFinished):
        return format_summary(event.summary)
    return None
