"""Pure: how much memory each pending document's worker will peak at, learnt from the ledger.

The ledger keeps every finished document's worker peak: `peak_own`, the worker's ru_maxrss
less the pages it still shared with the runner when the document ended (PEAKS in
`lexi_maint.pipeline.contract`; the runner's figure holds those once), or `peak_rss` (the
whole ru_maxrss, shared pages included: the safe side) for documents measured before
peak_own existed. A pending document is predicted from earlier documents of its type (file
suffix):

- with at least `min_history` measured documents of that type: the p95 of their peaks; a
  document larger than any of them adds the steepest bytes-to-memory slope seen in that
  history for the size beyond the largest (big files are extrapolated, never averaged away);
- without enough history: `default_peak + default_factor × size` (documented default);
- neither the default nor an extrapolation goes past `ceiling`, the bound a worker keeps to
  for any document under `parse.max_bytes` (files over 4 MiB are read, chunked, analysed
  and written a window at a time: measured 77 MB for a 199 MiB text file, 238 MB for a PDF
  page just under the page bound). Measured peaks above it are kept as measured;
- after an OOM kill: a document whose worker was killed, and any pending document of the
  same type at least as large as a killed one, is predicted to need the job's whole
  configured MemoryMax. The runner runs such documents alone, last, so the plan reserves the
  full cap for that one worker rather than trusting a model the kernel just proved wrong.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from lexi_maint.units import MiB


@dataclass(frozen=True)
class DocumentSample:
    """One earlier document from the ledger."""

    kind: str  # lower-case suffix: ".pdf", ".txt"
    size: int
    peak: int | None  # its worker's own peak in bytes; None when not measured
    killed: bool = False  # its worker was killed (the OOM killer, under a cap)


@dataclass(frozen=True)
class PendingDocument:
    """A document the next run will process."""

    kind: str
    size: int
    killed_before: bool = False  # its worker was killed last time: it runs alone


@dataclass(frozen=True)
class ModelSettings:
    default_peak: int = 256 * MiB  # per worker, without history
    default_factor: float = 4.0  # bytes of worker memory per byte of input, without history
    ceiling: int = 320 * MiB  # what a prediction from size alone never exceeds
    min_history: int = 3  # measured documents of a type before its history is trusted
    percentile: float = 0.95


@dataclass(frozen=True)
class Prediction:
    peak: int
    basis: str  # "history", "default" or "oom"


@dataclass(frozen=True)
class BatchEstimate:
    """The batch's documents as one figure per worker, with what it rests on."""

    documents: int
    history: int  # measured earlier documents the estimate used
    per_worker: int  # p95 of the predicted peaks (0 with no documents)
    largest: int  # the largest predicted peak of a document that shares the workers
    solo: int  # the largest predicted peak of a document that runs alone (0: none)
    defaulted: int  # documents predicted by the default (no history of their type)

    def describe(self) -> str:
        if not self.documents:
            return "no documents to process"
        if self.history == 0:
            plural = "s" if self.documents != 1 else ""
            return f"{self.documents} document{plural}, no history, the default"
        basis = f"p95 of {self.history} earlier documents"
        if self.defaulted:
            basis += f", {self.defaulted} of {self.documents} by the default"
        return basis


def percentile(values: Sequence[int], fraction: float) -> int:
    """Nearest-rank percentile (the value at rank ceil(fraction × n)); 0 for no values."""
    if not values:
        return 0
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def predict(
    doc: PendingDocument,
    history: Sequence[DocumentSample],
    settings: ModelSettings,
    oom_peak: int,
) -> Prediction:
    """One document's expected worker peak; `oom_peak` is what a killed one is given."""
    same = [s for s in history if s.kind == doc.kind]
    if doc.killed_before or any(s.killed and doc.size >= s.size for s in same):
        return Prediction(oom_peak, "oom")
    measured = [s for s in same if s.peak is not None and not s.killed]
    ceiling = max(settings.ceiling, settings.default_peak)
    if len(measured) < settings.min_history:
        by_size = settings.default_peak + int(settings.default_factor * doc.size)
        return Prediction(min(by_size, ceiling), "default")
    peaks = [s.peak for s in measured if s.peak is not None]
    estimate = percentile(peaks, settings.percentile)
    largest = max(s.size for s in measured)
    if doc.size > largest:
        floor = min(peaks)
        slope = max((s.peak - floor) / s.size for s in measured if s.peak is not None and s.size)
        extrapolated = estimate + int(slope * (doc.size - largest))
        estimate = max(estimate, min(extrapolated, ceiling))
    return Prediction(estimate, "history")


def estimate_batch(
    pending: Sequence[PendingDocument],
    history: Sequence[DocumentSample],
    settings: ModelSettings,
    oom_peak: int,
) -> BatchEstimate:
    predictions = [(doc, predict(doc, history, settings, oom_peak)) for doc in pending]
    shared = [p.peak for _, p in predictions if p.basis != "oom"]
    solo = [p.peak for _, p in predictions if p.basis == "oom"]
    kinds = {doc.kind for doc in pending}
    used = [s for s in history if s.kind in kinds and s.peak is not None and not s.killed]
    return BatchEstimate(
        documents=len(pending),
        history=len(used),
        per_worker=percentile(shared, settings.percentile),
        largest=max(shared, default=0),
        solo=max(solo, default=0),
        defaulted=sum(1 for _, p in predictions if p.basis == "default"),
    )
