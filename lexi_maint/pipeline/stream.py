"""A long document a window at a time: parse, chunk, analyze and store without ever
holding its whole text, its chunks or its graph rows.

The embedded stages (`[llm] provider = "none"`) take a file larger than `STREAM_BYTES`
this way (the LLM stages keep the whole text: their chunk model reads windows of it, but
the document's text, chunks and analyses stay in memory until the store). The parse stage
reads the file in blocks (`ParseStage.stream`), the chunk stage cuts the text in windows
of `chunk.WINDOW_CHARS` characters (`ChunkStage.windows`), each window's chunks are
analysed and become one part of the document's graph rows (`PartBuilder`), written while
the next window is read (`GraphStore.write_document_parts`: staged beside the previous
version, which one atomic step replaces at the end). The references, which need every
article's first chunk, are written last.

What a streamed document may differ in from one read whole: a short chunk at a window's end
is not merged into the next window's first chunk (a text of at most one window gives the
same chunks). Documents up to `STREAM_BYTES` are read whole.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

from lexi_maint.graph.model import DocumentRow, GraphPart
from lexi_maint.pipeline.analyze import AnalyzeStage
from lexi_maint.pipeline.chunk import ChunkStage
from lexi_maint.pipeline.contract import SourceFile, Stage, Work
from lexi_maint.pipeline.graphdoc import PartBuilder, storable
from lexi_maint.pipeline.parse import ParseStage
from lexi_maint.pipeline.store import StoreStage, part_warnings

T = TypeVar("T")

STREAM_BYTES = 4 * 2**20
"""Files larger than this are processed window by window (when the stages allow it)."""


@dataclass(frozen=True)
class StreamedStages:
    """The stages that can take a document window by window, by role."""

    parse: ParseStage
    chunk: ChunkStage
    analyze: AnalyzeStage
    store: StoreStage


def streamed_stages(stages: Sequence[Stage]) -> StreamedStages | None:
    """The stages as `StreamedStages` when they are the embedded pipeline, else None."""
    match tuple(stages):
        case (
            ParseStage() as parse,
            ChunkStage() as chunk,
            AnalyzeStage() as analyze,
            StoreStage() as store,
        ):
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

        def parts() -> Iterator[GraphPart]:
            pieces = clock.timed("parse", text.pieces())
            for chunks in clock.timed("chunk", stages.chunk.windows(work, pieces)):
                with clock.stage("analyze"):
                    analyses = stages.analyze.analyze(chunks)
                yield builder.part(chunks, analyses)
            yield builder.references()

        def document() -> DocumentRow:
            return DocumentRow(path=str(source.path), sha256=source.sha256,
                               title=storable(text.title), pages=text.pages)  # fmt: skip

        with clock.stage("store"):
            stages.store.write_parts(str(source.path), parts(), document)
    return Streamed(builder.chunks, (*text.warnings, *_warnings(builder)))


def _warnings(builder: PartBuilder) -> Iterator[str]:
    if not builder.chunks:
        yield "no text to chunk"
    yield from part_warnings(builder)
