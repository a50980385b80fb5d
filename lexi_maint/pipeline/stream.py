"""A long document a window at a time: parse, chunk, analyze and store without ever
holding its whole text, its chunks or its graph rows.

A file larger than `STREAM_BYTES` goes this way, with the embedded stages (`[llm]
provider = "none"`) and with the LLM stages alike. The parse stage reads the file in
blocks (`ParseStage.stream`), the chunk stage cuts the text in windows of
`chunk.WINDOW_CHARS` characters (`ChunkStage.windows`; the LLM chunk stage asks its model
about each window as it asks about a whole text), each window's chunks are analysed
(`analyze`) and become one part of the document's graph rows (`PartBuilder`), written while
the next window is read (`GraphStore.write_document_parts`: staged beside the previous
version, which one atomic step replaces at the end). The references, which need every
article's first chunk, are written last.

What a streamed document may differ in from one read whole: a short chunk at a window's end
is not merged into the next window's first chunk (a text of at most one window gives the
same chunks). Documents up to `STREAM_BYTES` are read whole.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Protocol, TypeVar, runtime_checkable

from lexi_maint.graph.model import DocumentRow, GraphPart
from lexi_maint.pipeline.contract import Chunk, ParsedDocument, SourceFile, Stage, Work
from lexi_maint.pipeline.graphdoc import PartBuilder, storable
from lexi_maint.pipeline.parse import ParseStage
from lexi_maint.pipeline.schema import ChunkAnalysis
from lexi_maint.pipeline.store import StoreStage, part_warnings

T = TypeVar("T")

STREAM_BYTES = 4 * 2**20
"""Files larger than this are processed window by window (when the stages allow it)."""


@runtime_checkable
class WindowedChunker(Protocol):
    """A chunk stage that also chunks a text given in pieces, a window at a time
    (`ChunkStage`, `LlmChunkStage`)."""

    name: str

    def run(self, work: Work) -> Work: ...

    def windows(
        self, work: Work, pieces: Iterable[str], title: Callable[[], str]
    ) -> Iterator[tuple[Chunk, ...]]: ...

    def notes(self) -> tuple[str, ...]: ...


@runtime_checkable
class ChunkAnalyzer(Protocol):
    """An analyze stage that also analyses some of a document's chunks at a time
    (`AnalyzeStage`, `LlmAnalyzeStage`)."""

    name: str

    def run(self, work: Work) -> Work: ...

    def analyze(self, work: Work, chunks: Sequence[Chunk]) -> tuple[ChunkAnalysis, ...]: ...

    def notes(self) -> tuple[str, ...]: ...


@dataclass(frozen=True)
class StreamedStages:
    """The stages that can take a document window by window, by role."""

    parse: ParseStage
    chunk: WindowedChunker
    analyze: ChunkAnalyzer
    store: StoreStage


def streamed_stages(stages: Sequence[Stage]) -> StreamedStages | None:
    """The stages as `StreamedStages` when each can take a window, else None."""
    match tuple(stages):
        case (ParseStage() as parse, chunk, analyze, StoreStage() as store) if isinstance(
            chunk, WindowedChunker
        ) and isinstance(analyze, ChunkAnalyzer):
            return StreamedStages(parse, chunk, analyze, store)
    return None


@dataclass(frozen=True)
class Streamed:
    """What processing a long document gave: its chunk count and warnings."""

    chunks: int
    warnings: tuple[str, ...]


class StageClock:
    """Seconds spent per stage, each stage's own (time in a stage it pulls from is that
    stage's), and the stage that was running when an exception went through."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self.failed = ""
        self._current = ""
        self._since = time.monotonic()

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        outer = self._switch(name)
        try:
            yield
        except BaseException:
            self.failed = self.failed or name
            raise
        finally:
            self._switch(outer)

    def timed(self, name: str, items: Iterator[T]) -> Iterator[T]:
        """`items`, each one's production timed as stage `name`."""
        while True:
            with self.stage(name):
                try:
                    item = next(items)
                except StopIteration:
                    return
            yield item

    def _switch(self, name: str) -> str:
        now = time.monotonic()
        if self._current:
            self.timings[self._current] = self.timings.get(self._current, 0.0) + now - self._since
        outer, self._current, self._since = self._current, name, now
        return outer


def process_streamed(source: SourceFile, stages: StreamedStages, clock: StageClock) -> Streamed:
    """Parse, chunk, analyze and store one long document a window at a time."""
    work = Work(source=source)
    builder = PartBuilder()
    with clock.stage("parse"), stages.parse.open_document(work) as (handle, kind):
        text = stages.parse.stream(handle, kind)

        def title() -> str:
            return text.title

        def parts() -> Iterator[GraphPart]:
            pieces = clock.timed("parse", text.pieces())
            for chunks in clock.timed("chunk", stages.chunk.windows(work, pieces, title)):
                parsed = ParsedDocument(text.title, text.pages, "", text.encoding)
                with clock.stage("analyze"):
                    analyses = stages.analyze.analyze(replace(work, parsed=parsed), chunks)
                yield builder.part(chunks, analyses)
            yield builder.references()

        def document() -> DocumentRow:
            return DocumentRow(path=str(source.path), sha256=source.sha256,
                               title=storable(text.title), pages=text.pages)  # fmt: skip

        with clock.stage("store"):
            stages.store.write_parts(str(source.path), parts(), document)
    notes = (*stages.chunk.notes(), *stages.analyze.notes())
    return Streamed(builder.chunks, (*text.warnings, *notes, *_warnings(builder)))


def _warnings(builder: PartBuilder) -> Iterator[str]:
    if not builder.chunks:
        yield "no text to chunk"
    yield from part_warnings(builder)
