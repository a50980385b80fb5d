"""Generated answers to lexi-maint's prompts, as a well-behaved model would give them.

Chunking: the segments are read back from the prompt and grouped greedily: a new chunk
starts at a heading line (once the current chunk has min_chars) or where the next segment
would push it past max_chars; the title is the first line's heading, else its first words.
Analysis: the chunk text is read back and run through the embedded analyzer, so every
answer follows the schema; a batch prompt (several chunks under "=== chunk N ===" markers)
gets {"chunks": {"N": analysis, ...}}, and so does a window's analysis (the chunking
request's segments, the division as the assistant's answer, then "Analyse chunks i to j"):
each chunk's text is its segments joined by line breaks. Anything else gets "{}".

`reasoning` is what a reasoning model would think out loud; the server sends it as
`reasoning_content` and reports its tokens (lexi-maint must not store it).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from lexi_maint.pipeline.analyze import analyze_chunk
from lexi_maint.pipeline.articles import parse_heading
from lexi_maint.pipeline.contract import Chunk
from lexi_maint.pipeline.prompts import (
    BATCH_HEADER,
    CHUNK_TEXT_HEADER,
    DIVISION_TASK,
    SEGMENTS_HEADER,
)

_SIZE = re.compile(r"Chunk size: (\d+) to (\d+) characters\.")
_SEGMENT = re.compile(r"(\d+) \[(\d+)\] ?(.*)")
_MARKER = re.compile(r"^=== chunk (\d+) ===$", re.MULTILINE)
_TASK = re.compile(
    re.escape(DIVISION_TASK).replace(r"\{first\}", r"(\d+)").replace(r"\{last\}", r"(\d+)")
)
REASONING_MARK = "REASONING-NOT-TO-BE-STORED"


@dataclass(frozen=True)
class Answer:
    content: str
    reasoning: str = ""


class LexiResponder:
    def __call__(self, model: str, messages: Sequence[dict[str, str]]) -> Answer:
        user = messages[-1].get("content", "") if messages else ""
        task = _TASK.fullmatch(user)
        if task is not None and len(messages) >= 4:
            first, last = int(task[1]), int(task[2])
            segments, division = messages[-3].get("content", ""), messages[-2].get("content", "")
            answers = division_answer(segments, division, first, last)
            content = json.dumps({"chunks": answers}, ensure_ascii=False)
            return Answer(content, f"{REASONING_MARK}: reading the division, listing its facts.")
        if SEGMENTS_HEADER in user:
            return Answer(json.dumps({"chunks": chunk_answer(user)}, ensure_ascii=False))
        if BATCH_HEADER in user:
            content = json.dumps({"chunks": batch_answer(user)}, ensure_ascii=False)
            return Answer(content, f"{REASONING_MARK}: reading the chunks, listing their facts.")
        if CHUNK_TEXT_HEADER in user:
            content = json.dumps(analysis_answer(user), ensure_ascii=False)
            return Answer(content, f"{REASONING_MARK}: reading the chunk, listing its facts.")
        return Answer("{}")


def chunk_answer(prompt: str) -> list[dict[str, object]]:
    size = _SIZE.search(prompt)
    low, high = (int(size[1]), int(size[2])) if size else (200, 4000)
    chunks: list[dict[str, object]] = []
    current = 0
    for number, length, text in segments(prompt):
        heading = parse_heading(text)
        starts = not chunks or current + length > high or (heading is not None and current >= low)
        if starts:
            title = heading.title if heading else " ".join(text.split()[:6])
            chunks.append({"start": number, "title": title})
            current = 0
        current += length
    return chunks


def segments(prompt: str) -> list[tuple[int, int, str]]:
    """(number, characters, text) of each segment line of a chunking prompt."""
    found = []
    for line in prompt.split(SEGMENTS_HEADER, 1)[1].strip("\n").split("\n"):
        match = _SEGMENT.fullmatch(line)
        if match is not None:
            found.append((int(match[1]), int(match[2]), match[3]))
    return found


def analysis_answer(prompt: str) -> dict[str, object]:
    head, _, text = prompt.partition(f"\n{CHUNK_TEXT_HEADER}\n")
    heading = ""
    for line in head.split("\n"):
        if line.startswith("Heading: ") and line != "Heading: (none)":
            heading = line.removeprefix("Heading: ")
    chunk = Chunk(id="x", index=0, start=0, end=len(text), heading=heading, text=text)
    return analyze_chunk(chunk)


def batch_answer(prompt: str) -> dict[str, object]:
    """Each chunk under a marker, analysed as if it had been asked alone."""
    body = prompt.split(BATCH_HEADER, 1)[1]
    markers = list(_MARKER.finditer(body))
    answers: dict[str, object] = {}
    for marker, following in zip(markers, [*markers[1:], None], strict=True):
        end = following.start() - 1 if following else len(body)
        heading_line, _, text = body[marker.end() + 1 : end].partition("\n")
        heading = heading_line.removeprefix("Heading: ")
        single = f"Heading: {heading}\n{CHUNK_TEXT_HEADER}\n{text}"
        answers[marker[1]] = analysis_answer(single)
    return answers


def division_answer(prompt: str, division: str, first: int, last: int) -> dict[str, object]:
    """Chunks first..last of a division of the prompt's segments, each analysed alone."""
    lines = {number: text for number, _, text in segments(prompt)}
    chunks = json.loads(division)["chunks"]
    ends = [int(c["start"]) for c in chunks[1:]] + [max(lines) + 1]
    answers: dict[str, object] = {}
    for number in range(first, last + 1):
        chunk = chunks[number - 1]
        text = "\n".join(lines[n] for n in range(int(chunk["start"]), ends[number - 1]))
        single = f"Heading: {chunk['title'] or '(none)'}\n{CHUNK_TEXT_HEADER}\n{text}"
        answers[str(number)] = analysis_answer(single)
    return answers
