"""Turning run events into what a person reads: one line per document, or a live bar.

The formatting functions are pure; `LineReporter` and `BarReporter` only write to a stream.
"""

from __future__ import annotations

import logging
import os
import shutil
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from lexi_maint.llm.usage import Usage
from lexi_maint.pipeline.contract import Failure, Success
from lexi_maint.printable import printable
from lexi_maint.run.events import (
    AttemptClosed,
    DocumentFinished,
    DocumentStarted,
    Event,
    JobStopped,
    MemoryHeld,
    RunFinished,
    RunStarted,
    RunSummary,
)
from lexi_maint.units import plural

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
    return f"job {e.job} · run {e.run_id} · {plural(e.total, 'document')}: " + ", ".join(parts)


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


def format_closed(e: AttemptClosed) -> str:
    """An attempt closed after its runner died: "🔁 a.txt killed: ... (attempt 1, counts) ·
    will retry"."""
    a = e.attempt
    kept = "counts" if a.attempts == a.attempt else "given back"
    retry = " · will retry" if e.retry else ""
    return (
        f"{RETRY if e.retry else FAIL} {printable(Path(a.path).name)} {a.error_class.value}:"
        f" {printable(a.message)} (attempt {a.attempt}, {kept}){retry}"
    )


def format_counts(e: DocumentFinished) -> str:
    """ "✅13 ❌1 · ETA 38 min" """
    return f"{OK}{e.done} {FAIL}{e.failed} · ETA {format_duration(e.eta_seconds)}"


def format_status_line(e: DocumentFinished, job: str) -> str:
    """The one-line state used for sd_notify STATUS= (and, after the bar, the terminal)."""
    return f"{job}: {e.finished}/{e.queued} {format_counts(e)}"


def format_summary(s: RunSummary) -> str:
    lines = [
        f"summary: job {s.job} · run {s.run_id} · {format_duration(s.seconds)}",
        f"  {plural(s.total, 'document')} · {s.processed} processed: {OK} {s.done} done,"
        f" {FAIL} {s.failed} failed · {s.unchanged} unchanged (skipped)",
    ]
    if s.exhausted:
        lines.append(f"  {s.exhausted} failed earlier {FAIL} and exhausted their attempts")
    if s.vanished:
        lines.append(f"  {s.vanished} no longer in the input directory (marked skipped)")
    if not s.usage.empty:
        lines.append(f"  LLM: {format_usage(s.usage)}")
    verdict = "all documents done" if s.exit_code == 0 else (
        f"{plural(s.failed_in_ledger, 'document')} failed:"
        f" see `lexi-maint status {s.job} --failed`")  # fmt: skip
    if s.stopped:
        left = plural(s.left_pending, "document")
        verdict = f"job stopped, {left} left pending: {printable(s.stopped)}"
    if s.signal:
        unfinished = s.processed - s.done - s.failed
        verdict = (
            f"interrupted by {s.signal}: {plural(unfinished, 'document')} not processed;"
            f" the next run continues with them"
        )
    lines.append(f"  result: {verdict}")
    return "\n".join(lines)


def format_stopped(e: JobStopped) -> str:
    by = f" by {printable(Path(e.path).name)}" if e.path else ""  # "": a dependency was down
    released = f"{plural(e.released, 'running document')} put back to pending"
    return f"{FAIL} job stopped{by}: {printable(e.reason)} ({released})"


def format_hold(e: MemoryHeld) -> str:
    return f"holding new documents: memory at {e.reading.describe()}; {e.running} running"


class Output:
    """A text stream whose reader may go away (`run ... | head`): the first broken pipe
    points the stream's descriptor at /dev/null and later writes are dropped, so the run
    carries on and the interpreter's final flush stays silent."""

    def __init__(self, out: TextIO) -> None:
        self.stream = out
        self.closed = False

    def write(self, text: str) -> None:
        if self.closed:
            return
        try:
            self.stream.write(text)
            self.stream.flush()
        except BrokenPipeError:
            self.closed = True
            silence(self.stream)


def silence(stream: TextIO) -> None:
    """Point `stream`'s file descriptor at /dev/null (nothing happens without one)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # io.UnsupportedOperation: no descriptor (tests)
        pass


def display_width(text: str) -> int:
    """Terminal columns `text` takes: wide and emoji characters count twice, combining
    characters and variation selectors not at all."""
    width = 0
    for char in text:
        if unicodedata.combining(char) or char in "\ufe0f\u200d":
            continue
        width += 2 if unicodedata.east_asian_width(char) in "WF" else 1
    return width


def clip(text: str, room: int) -> str:
    """`text` cut to take at most `room` terminal columns, with "…" where it was cut."""
    if display_width(text) <= room:
        return text
    kept, width = [], 0
    for char in text:
        step = display_width(char)
        if width + step > room - 1:
            break
        kept.append(char)
        width += step
    return "".join(kept) + "…"


def terminal_columns(out: TextIO) -> int:
    try:
        return os.get_terminal_size(out.fileno()).columns
    except (OSError, ValueError):
        return shutil.get_terminal_size().columns


@dataclass(frozen=True)
class BarState:
    job: str
    finished: int
    queued: int
    state: str  # what follows the count: "· starting", "✅13 ❌1 · ETA 38 min"


def bar_line(b: BarState, columns: int, width: int = 24) -> str:
    """ "████····· cao_import: 14/49 ✅13 ❌1 · ETA 38 min", fitted into `columns`: the
    graphic shrinks (down to nothing) before the text is clipped. Three columns stay free:
    a line that fills the last column wraps, and the terminal echoes Ctrl-C as "^C" after
    the bar; a wrapped line leaves a stale row that redrawing cannot clear."""
    room = columns - 3
    label = f"{b.job}: {b.finished}/{b.queued} {b.state}"
    width = min(width, room - 1 - display_width(label))
    if width < 5:
        return clip(label, room)
    filled = width * b.finished // max(b.queued, 1)
    return f"{'█' * filled}{'·' * (width - filled)} {label}"


class LineReporter:
    """One line per finished document: for logs, pipes and the journal."""

    def __init__(self, out: TextIO) -> None:
        self._out = Output(out)

    def __call__(self, event: Event) -> None:
        line = _line(event)
        if line is not None:
            self._out.write(line + "\n")


class BarReporter:
    """A live bar on a terminal, with the start line, failures and the summary above it.

    The bar shows from the start ("0/49 · starting"), is clipped to the terminal's width
    (asked again at every draw, and on SIGWINCH through `redraw`), and is replaced by the
    summary at the end, which ends with a newline so the shell prompt starts on its own line.
    """

    def __init__(self, out: TextIO, job: str, columns: Callable[[], int] | None = None) -> None:
        self._out = Output(out)
        self._job = job
        self._columns = columns or (lambda: terminal_columns(out))
        self._bar: BarState | None = None
        self._drawing = False

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self._print(format_started(event))
            self._bar = BarState(self._job, 0, event.queued, "· starting")
            self.redraw()
        elif isinstance(event, DocumentFinished):
            if isinstance(event.outcome, Failure):
                self._print(format_document(event))
            self._bar = BarState(self._job, event.finished, event.queued, format_counts(event))
            self.redraw()
        elif isinstance(event, RunFinished):
            self._bar = None
            self._print(format_summary(event.summary))
        elif not isinstance(event, DocumentStarted):
            line = _line(event)
            if line is not None:
                self._print(line)

    def redraw(self) -> None:
        """Draw the bar again at the current width (also called from the SIGWINCH handler;
        a redraw that interrupts another write is skipped: the next event draws anyway)."""
        if self._drawing or self._bar is None:
            return
        self._drawing = True
        try:
            self._out.write("\r\x1b[2K" + bar_line(self._bar, self._columns()))
        finally:
            self._drawing = False

    def above(self, write: Callable[[], object]) -> None:
        """Let `write` print to the terminal (a log record on stderr) above the bar."""
        self._drawing = True
        try:
            if self._bar is not None:
                self._out.write("\r\x1b[2K")
            write()
        finally:
            self._drawing = False
        self.redraw()

    def _print(self, line: str) -> None:
        self._drawing = True
        try:
            self._out.write("\r\x1b[2K" + line + "\n")
        finally:
            self._drawing = False
        self.redraw()


class AboveBar(logging.Handler):
    """Wraps the handler that logs to the terminal so its lines print above the bar."""

    def __init__(self, inner: logging.Handler, bar: BarReporter) -> None:
        super().__init__(inner.level)
        self._inner = inner
        self._bar = bar

    def emit(self, record: logging.LogRecord) -> None:
        self._bar.above(lambda: self._inner.handle(record))


def _line(event: Event) -> str | None:
    if isinstance(event, RunStarted):
        return format_started(event)
    if isinstance(event, DocumentFinished):
        return format_document(event)
    if isinstance(event, AttemptClosed):
        return format_closed(event)
    if isinstance(event, MemoryHeld):
        return format_hold(event)
    if isinstance(event, JobStopped):
        return format_stopped(event)
    if isinstance(event, RunFinished):
        return format_summary(event.summary)
    return None
