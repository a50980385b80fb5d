"""What is asked of the models and how their answers are checked (pure, no I/O).

Semantic chunking (the chunk model, JSON mode)
    DeepSeek has no embeddings, so the model proposes the boundaries. The text is cut into
    windows of at most `window_chars` (longer documents give several windows, asked
    concurrently); windows are made of whole spans of the structural splitter, so a window
    whose answer is rejected is replaced by exactly the structural chunks it covers.
    Inside a window the text is shown as numbered segments (lines; blank lines join the line
    before; a line longer than max_chars/4 is cut at white space), each with its length, and
    the model answers {"chunks": [{"start": <segment number>, "title": "..."}, ...]}.
    `parse_chunking` accepts an answer only if the starts begin at 1, increase, and stay in
    range, and no chunk exceeds max_chars. Chunks are built from segment offsets, so they tile
    the window exactly: nothing lost, nothing duplicated, in order. A chunk shorter than
    min_chars is merged into its neighbour when the result fits, as the splitter does.

Analysis (the reasoning model)
    Batched (the default): a window's analysis extends its chunking request. The request
    repeats the chunking request's messages byte for byte (the one system prompt, which
    describes both steps, and the window's numbered segments), then the window's division
    as the assistant's answer ({"chunks": [{"start": <segment>, "title": ...}]}, the chunks
    the stage kept), then "Analyse chunks i to j of this division." Everything up to the
    division is a prefix the provider has already seen, so its prefix cache serves it
    (DeepSeek: both models must share the cache; the test server's does). A window with
    more than `analysis_batch_chunks` chunks or about `analysis_batch_tokens` tokens of
    text is asked in several such requests (`window_batches`). Chunks that are not a
    division of a window's segments (a structural chunk starting inside a line after a
    rejected chunking answer) are packed into batches of their own text instead: the
    fixed instructions (system), the document's title, then each chunk under
    "=== chunk N ===" (`batch_analysis_request`). Either answer maps each chunk's number to
    its analysis; `parse_batch_answer` validates the entries one by one: a missing or
    invalid entry costs that chunk a request of its own, not the batch.
    Per chunk (`analysis_batch_chunks = 1`): one request per chunk, the schema of
    `lexi_maint.pipeline.schema` and an example; the answer must be one JSON object that
    `parse_analysis` accepts (a ```json fence or text around the object is tolerated).
    The system prompts never change, so the provider's context cache can serve their tokens.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise
from typing import Any

from lexi_maint.config.llm import LlmConfig
from lexi_maint.config.pipeline import ChunkSettings
from lexi_maint.llm.client import ChatRequest
from lexi_maint.llm.session import InvalidAnswer
from lexi_maint.pipeline.chunk import Span, split_text
from lexi_maint.pipeline.contract import Chunk
from lexi_maint.pipeline.schema import ChunkAnalysis, SchemaError, parse_analysis

MAX_TITLE = 200
SEGMENTS_HEADER = 'Segments ("number [characters] text"):'
CHUNK_TEXT_HEADER = "Chunk text:"
BATCH_HEADER = "Chunks to analyse:"
BATCH_MARKER = "=== chunk {number} ==="
CHARS_PER_TOKEN = 4  # an estimate, for packing batches
SIZE_LINE = "Chunk size: {low} to {high} characters."

# The fields the analysis prompts ask for, word for word (one place to change them).
ANALYSIS_FIELDS = """\
- section_title: the heading of the section the chunk belongs to (e.g. "Artikel 5 Loon"), \
else "".
- defined_terms: terms the text defines ("onder werknemer wordt verstaan ..."), without a \
leading "de", "het" or "een".
- dates: dates written in the text, as YYYY-MM-DD; leave out dates without a year.
- amounts: money amounts as {"value": <number in euro>, "currency": "EUR", "text": <as written>}.
- percentages: {"value": <number>, "text": <as written>}.
- references: references to articles of this agreement, not of statutes: \
{"article": "12", "text": <as written>}.
- parties: unions and employer organisations that are party to the agreement.
Lists keep the order of first appearance, without duplicates; use [] when there is nothing.
"""

BATCH_EXAMPLE = """\
{"chunks": {"1": {"section_title": "Artikel 5 Loon", "defined_terms": ["werknemer"], \
"dates": ["2025-01-01"], "amounts": [{"value": 2450.0, "currency": "EUR", \
"text": "€ 2.450,00"}], "percentages": [{"value": 3.5, "text": "3,5%"}], \
"references": [{"article": "12", "text": "artikel 12"}], "parties": ["FNV"]}, \
"2": {"section_title": "Artikel 6 Verlof", "defined_terms": [], "dates": [], "amounts": [], \
"percentages": [], "references": [], "parties": []}}}"""

# One system prompt for both steps of a document part, so that the analysis request starts
# with the chunking request's exact bytes (system prompt and the part's segments) and the
# provider's prefix cache serves them (`window_batches`).
CHUNK_SYSTEM = (
    """\
You work on Dutch legal documents (collective labour agreements, CAO) in two steps. The \
first user message shows a part of a document as numbered segments.
Step 1, chunking (the answer to that message): divide the part into chunks for search and \
analysis. A chunk is a run of consecutive numbered segments about one topic: an article, a \
group of clauses, a list of definitions, an annex. Start a new chunk where a new chapter, \
article or topic begins.
Rules:
- Chunk sizes must stay within the bounds given with the document; each segment's number of \
characters is shown in brackets after its number.
- The first chunk starts at segment 1; every next chunk starts at a higher segment number.
- Give each chunk a short title: its article or section heading as written, else a few words \
naming its topic.
Reply with JSON only, in this form:
{"chunks": [{"start": 1, "title": "Artikel 1 Definities"}, \
{"start": 9, "title": "Artikel 2 Werkingssfeer"}]}
Step 2, analysis (when a division of the part into chunks is given and you are asked to \
analyse some of its chunks): the chunks are numbered from 1 in the order of the division; a \
chunk is the segments from its start up to the next chunk's start, or to the end of the part. \
Analyse every chunk asked for on its own text only and extract its facts as JSON. For every \
chunk, all fields are required:
"""
    + ANALYSIS_FIELDS
    + 'Reply with one JSON object and nothing else: {"chunks": {"<N>": {...}, ...}} with '
    "one entry per chunk number asked for, for example:\n" + BATCH_EXAMPLE
)

ANALYSIS_SYSTEM = (
    """\
You analyse one chunk of a Dutch collective labour agreement (CAO) and extract facts as JSON.
All fields are required:
"""
    + ANALYSIS_FIELDS
    + """\
Reply with one JSON object and nothing else, for example:
{"section_title": "Artikel 5 Loon", "defined_terms": ["werknemer"], "dates": ["2025-01-01"], \
"amounts": [{"value": 2450.0, "currency": "EUR", "text": "€ 2.450,00"}], \
"percentages": [{"value": 3.5, "text": "3,5%"}], \
"references": [{"article": "12", "text": "artikel 12"}], "parties": ["FNV", "CNV Vakmensen"]}"""
)


ANALYSIS_BATCH_SYSTEM = (
    """\
You analyse the chunks of a Dutch collective labour agreement (CAO) and extract facts from \
each chunk as JSON. Each chunk follows a line "=== chunk N ===" and its heading line; \
analyse every chunk on its own text only.
For every chunk, all fields are required:
"""
    + ANALYSIS_FIELDS
    + 'Reply with one JSON object and nothing else: {"chunks": {"<N>": {...}, ...}} with '
    "one entry per chunk number, for example:\n" + BATCH_EXAMPLE
)


# --- windows and segments ------------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    start: int  # offsets into the document's text
    end: int


@dataclass(frozen=True)
class Window:
    index: int
    start: int
    end: int
    fallback: tuple[Span, ...]  # the structural splitter's spans covering exactly this window


def make_windows(text: str, settings: ChunkSettings, window_chars: int) -> list[Window]:
    """Whole structural spans packed into windows of at most window_chars (one span may be
    longer than window_chars only if max_chars is)."""
    groups: list[list[Span]] = []
    for span in split_text(text, settings):
        if groups and span.end - groups[-1][0].start <= window_chars:
            groups[-1].append(span)
        else:
            groups.append([span])
    return [Window(i, g[0].start, g[-1].end, tuple(g)) for i, g in enumerate(groups)]


def make_segments(text: str, start: int, end: int, max_len: int) -> list[Segment]:
    """Lines of text[start:end] (blank lines joined to the line before), long ones cut."""
    pieces: list[Segment] = []
    position = start
    while position < end:
        newline = text.find("\n", position, end)
        line_end = end if newline < 0 else newline + 1
        blank = not text[position:line_end].strip()
        if blank and pieces:
            pieces[-1] = Segment(pieces[-1].start, line_end)
        elif pieces and not text[pieces[-1].start : pieces[-1].end].strip():
            pieces[-1] = Segment(pieces[-1].start, line_end)  # leading blank lines
        else:
            pieces.append(Segment(position, line_end))
        position = line_end
    return [cut for piece in pieces for cut in _cut_long(text, piece, max_len)]


def _cut_long(text: str, segment: Segment, max_len: int) -> list[Segment]:
    out: list[Segment] = []
    start = segment.start
    while segment.end - start > max_len:
        limit = start + max_len
        space = max(text.rfind(" ", start + 1, limit), text.rfind("\t", start + 1, limit))
        cut = space + 1 if space > start else limit
        out.append(Segment(start, cut))
        start = cut
    out.append(Segment(start, segment.end))
    return out


def segment_limit(settings: ChunkSettings) -> int:
    return max(20, settings.max_chars // 4)


# --- chunking --------------------------------------------------------------------------------


@dataclass(frozen=True)
class WindowRequest:
    """A window of a text, its segments and the chunking request that shows them."""

    window: Window
    segments: tuple[Segment, ...]
    request: ChatRequest


@dataclass(frozen=True)
class _ChunkAsk:
    """What of LlmConfig the chunking requests depend on (LlmConfig is not hashable)."""

    model: str
    max_tokens: int
    response_format: str
    window_chars: int


def window_requests(
    config: LlmConfig, settings: ChunkSettings, title: str, text: str
) -> tuple[WindowRequest, ...]:
    """The chunking requests of a text, window by window. The analysis stage asks for the
    same text again (to extend each request): the last two texts' requests are kept, so
    the windows and segments are computed once per worker (a string's hash is cached, and
    comparing two equal texts is one memcmp)."""
    ask = _ChunkAsk(
        config.chunk_model, config.chunk_max_tokens, config.chunk_response_format,
        config.window_chars,
    )  # fmt: skip
    return _window_requests(ask, settings, title, text)


@lru_cache(maxsize=2)
def _window_requests(
    ask: _ChunkAsk, settings: ChunkSettings, title: str, text: str
) -> tuple[WindowRequest, ...]:
    windows = make_windows(text, settings, ask.window_chars)
    out: list[WindowRequest] = []
    for window in windows:
        segments = make_segments(text, window.start, window.end, segment_limit(settings))
        lines = [
            f"Document: {title or '(untitled)'}. Part {window.index + 1} of {len(windows)}.",
            SIZE_LINE.format(low=settings.min_chars, high=settings.max_chars),
            SEGMENTS_HEADER,
        ]
        for number, seg in enumerate(segments, start=1):
            shown = " ".join(text[seg.start : seg.end].split())
            lines.append(f"{number} [{seg.end - seg.start}] {shown}")
        request = ChatRequest(
            model=ask.model,
            messages=(("system", CHUNK_SYSTEM), ("user", "\n".join(lines))),
            max_tokens=ask.max_tokens,
            response_format=ask.response_format,
            temperature=0.0,
        )
        out.append(WindowRequest(window, tuple(segments), request))
    return tuple(out)


def parse_chunking(
    content: str, window: Window, segments: Sequence[Segment], settings: ChunkSettings
) -> list[Span]:
    """The model's chunks of one window as spans, or InvalidAnswer saying what is wrong."""
    data = load_json_object(content)
    items = data.get("chunks")
    if not isinstance(items, list) or not items:
        raise InvalidAnswer('"chunks" must be a non-empty list')
    starts, titles = _starts_and_titles(items, len(segments))
    edges = [segments[s - 1].start for s in starts] + [window.end]
    spans = [Span(a, b, t) for a, b, t in zip(edges, edges[1:], titles, strict=False)]
    for number, span in enumerate(spans, start=1):
        if span.end - span.start > settings.max_chars:
            raise InvalidAnswer(
                f"chunk {number} has {span.end - span.start} characters, "
                f"more than max_chars ({settings.max_chars})"
            )
    merged = merge_short(spans, settings)
    check_tiling(merged, window.start, window.end)
    return merged


def _starts_and_titles(items: list[Any], count: int) -> tuple[list[int], list[str]]:
    starts: list[int] = []
    titles: list[str] = []
    for number, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            raise InvalidAnswer(f"chunk {number} is not an object")
        start, title = item.get("start"), item.get("title", "")
        if not isinstance(start, int) or isinstance(start, bool):
            raise InvalidAnswer(f'chunk {number}: "start" must be a segment number')
        if not isinstance(title, str):
            raise InvalidAnswer(f'chunk {number}: "title" must be a string')
        if not 1 <= start <= count:
            raise InvalidAnswer(f"chunk {number} starts at segment {start}, not in 1..{count}")
        if (not starts and start != 1) or (starts and start <= starts[-1]):
            expected = "1" if not starts else f"after {starts[-1]}"
            raise InvalidAnswer(f"chunk {number} starts at segment {start}, expected {expected}")
        starts.append(start)
        titles.append(" ".join(title.split())[:MAX_TITLE])
    return starts, titles


def merge_short(spans: list[Span], settings: ChunkSettings) -> list[Span]:
    """Merge a chunk shorter than min_chars into the one before (else after) when it fits."""
    out: list[Span] = []
    for span in spans:
        if out and _mergeable(out[-1], span, settings):
            previous = out[-1]
            title = previous.heading or span.heading
            out[-1] = Span(previous.start, span.end, title)
        else:
            out.append(span)
    return out


def _mergeable(previous: Span, span: Span, settings: ChunkSettings) -> bool:
    short = min(previous.end - previous.start, span.end - span.start) < settings.min_chars
    return short and span.end - previous.start <= settings.max_chars


def check_tiling(spans: list[Span], start: int, end: int) -> None:
    """Spans must cover [start, end) in order, contiguous and non-empty."""
    position = start
    for span in spans:
        if span.start != position or span.end <= span.start:
            raise InvalidAnswer(f"chunks do not tile the text at offset {position}")
        position = span.end
    if position != end:
        raise InvalidAnswer(f"chunks end at offset {position}, the text at {end}")


# --- analysis --------------------------------------------------------------------------------


def analysis_request(config: LlmConfig, title: str, chunk: Chunk) -> ChatRequest:
    user = (
        f"Document: {title or '(untitled)'}\n"
        f"Heading: {chunk.heading or '(none)'}\n"
        f"{CHUNK_TEXT_HEADER}\n{chunk.text}"
    )
    return ChatRequest(
        model=config.analysis_model,
        messages=(("system", ANALYSIS_SYSTEM), ("user", user)),
        max_tokens=config.analysis_max_tokens,
        response_format=config.analysis_response_format,
    )


def make_batches(
    chunks: Sequence[Chunk], most_chunks: int, budget_tokens: int
) -> list[tuple[Chunk, ...]]:
    """Consecutive chunks packed into batches of at most `most_chunks` chunks and about
    `budget_tokens` tokens of text (a chunk over the budget goes alone)."""
    batches: list[list[Chunk]] = []
    used = 0
    for chunk in chunks:
        cost = estimate_tokens(chunk.text)
        if batches and len(batches[-1]) < most_chunks and used + cost <= budget_tokens:
            batches[-1].append(chunk)
            used += cost
        else:
            batches.append([chunk])
            used = cost
    return [tuple(batch) for batch in batches]


def estimate_tokens(text: str) -> int:
    return -(-len(text) // CHARS_PER_TOKEN)


def batch_analysis_request(config: LlmConfig, title: str, chunks: Sequence[Chunk]) -> ChatRequest:
    """Instructions, then the document's shared context, then the chunks (prefix-cache
    friendly: every batch of the job starts with the same bytes, every batch of a document
    with the same title line)."""
    parts = [f"Document: {title or '(untitled)'}", BATCH_HEADER]
    for chunk in chunks:
        parts.append(BATCH_MARKER.format(number=chunk.index))
        parts.append(f"Heading: {chunk.heading or '(none)'}")
        parts.append(chunk.text)
    return ChatRequest(
        model=config.analysis_model,
        messages=(("system", ANALYSIS_BATCH_SYSTEM), ("user", "\n".join(parts))),
        max_tokens=config.analysis_max_tokens,
        response_format=config.analysis_response_format,
    )


DIVISION_TASK = "Analyse chunks {first} to {last} of this division."


@dataclass(frozen=True)
class WindowBatch:
    """One analysis request that extends a window's chunking request: the same system
    prompt and segments (a prefix the provider has cached), then the window's division as
    the assistant's answer, then which of its chunks to analyse."""

    request: ChatRequest
    numbered: tuple[tuple[int, Chunk], ...]  # each chunk with its number in the division


def window_batches(
    config: LlmConfig, settings: ChunkSettings, title: str, chunks: Sequence[Chunk]
) -> tuple[list[WindowBatch], list[Chunk]]:
    """The analysis requests of chunks that tile one chunked text, window by window, and the
    chunks that cannot be shown as a division of a window's segments (a structural chunk
    that starts inside a line, chunks that do not tile the text): those go in batches of
    their own text (`batch_analysis_request`).

    The text is the chunks' texts joined, so the windows, segments and requests are those
    the chunk stage made (`window_requests`) and the first two messages are its request's
    bytes; each window's chunks are cut into groups by `make_batches`."""
    text = _joined(chunks)
    if text is None:
        return [], list(chunks)
    base = chunks[0].start
    out: list[WindowBatch] = []
    rest: list[Chunk] = []
    position = 0
    for asked in window_requests(config, settings, title, text):
        window = asked.window
        inside: list[Chunk] = []
        while position < len(chunks) and chunks[position].start - base < window.end:
            inside.append(chunks[position])
            position += 1
        number_of = {segment.start: n for n, segment in enumerate(asked.segments, start=1)}
        starts = [number_of.get(chunk.start - base) for chunk in inside]
        tiles = bool(inside) and inside[0].start - base == window.start
        if not tiles or inside[-1].end - base != window.end or None in starts:
            rest += inside
            continue
        shown = [{"start": s, "title": c.heading} for s, c in zip(starts, inside, strict=True)]
        division = json.dumps({"chunks": shown}, ensure_ascii=False)
        numbers = {chunk.id: n for n, chunk in enumerate(inside, start=1)}
        budget = config.analysis_batch_tokens
        for group in make_batches(inside, config.analysis_batch_chunks, budget):
            first, last = numbers[group[0].id], numbers[group[-1].id]
            task = DIVISION_TASK.format(first=first, last=last)
            messages = (*asked.request.messages, ("assistant", division), ("user", task))
            request = ChatRequest(
                model=config.analysis_model,
                messages=messages,
                max_tokens=config.analysis_max_tokens,
                response_format=config.analysis_response_format,
            )
            out.append(WindowBatch(request, tuple((numbers[c.id], c) for c in group)))
    return out, rest


def _joined(chunks: Sequence[Chunk]) -> str | None:
    """The text the chunks tile, or None when they do not follow each other exactly."""
    if not chunks:
        return None
    for before, after in pairwise(chunks):
        if before.end != after.start:
            return None
    if any(chunk.end - chunk.start != len(chunk.text) for chunk in chunks):
        return None
    return "".join(chunk.text for chunk in chunks)


@dataclass(frozen=True)
class BatchAnswer:
    """A batch answer checked entry by entry: what passed, and why each other chunk did not."""

    analyses: Mapping[str, ChunkAnalysis]  # by chunk id
    problems: Mapping[str, str]  # chunk id -> reason


def parse_batch_answer(content: str, numbered: Sequence[tuple[int, Chunk]]) -> BatchAnswer:
    """Each chunk's entry (under its number in the request) validated on its own;
    InvalidAnswer only when no entry passes (then the batch is asked again as a whole)."""
    data = load_json_object(content)
    entries = data.get("chunks")
    if not isinstance(entries, dict):
        raise InvalidAnswer('"chunks" must be an object mapping chunk numbers to analyses')
    analyses: dict[str, ChunkAnalysis] = {}
    problems: dict[str, str] = {}
    for number, chunk in numbered:
        entry = entries.get(str(number))
        if not isinstance(entry, dict):
            problems[chunk.id] = f"no analysis for chunk {number}"
            continue
        try:
            analyses[chunk.id] = parse_analysis(chunk.id, entry)
        except SchemaError as exc:
            problems[chunk.id] = f"chunk {number}: schema: {exc.message}"
    if not analyses:
        first = next(iter(problems.values()), "no chunks")
        raise InvalidAnswer(f"no chunk's analysis is valid; first: {first}")
    return BatchAnswer(analyses, problems)


def parse_analysis_answer(chunk_id: str, content: str) -> ChunkAnalysis:
    data = load_json_object(content)
    try:
        return parse_analysis(chunk_id, data)
    except SchemaError as exc:
        raise InvalidAnswer(f"schema: {exc.message}") from None


# --- JSON ------------------------------------------------------------------------------------


def load_json_object(content: str) -> dict[str, Any]:
    """The one JSON object in `content` (a code fence or words around it are tolerated)."""
    text = content.strip()
    if text.startswith("```"):
        text = text.split("\n", 1)[1] if "\n" in text else ""
        text = text.rsplit("```", 1)[0]
    try:
        data = json.loads(text)
    except ValueError:
        first, last = text.find("{"), text.rfind("}")
        try:
            data = json.loads(text[first : last + 1]) if 0 <= first < last else None
        except ValueError:
            data = None
        if data is None:
            raise InvalidAnswer("not valid JSON") from None
    if not isinstance(data, dict):
        raise InvalidAnswer(f"expected a JSON object, got {type(data).__name__}")
    return data
