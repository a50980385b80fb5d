from __future__ import annotations

import json
from itertools import pairwise

import pytest

from lexi_maint.config.llm import LlmConfig
from lexi_maint.config.pipeline import ChunkSettings
from lexi_maint.llm.session import InvalidAnswer
from lexi_maint.pipeline.chunk import Span, split_text
from lexi_maint.pipeline.contract import Chunk
from lexi_maint.pipeline.prompts import (
    ANALYSIS_SYSTEM,
    CHUNK_SYSTEM,
    Segment,
    Window,
    analysis_request,
    check_tiling,
    load_json_object,
    make_segments,
    make_windows,
    merge_short,
    parse_analysis_answer,
    parse_batch_answer,
    parse_chunking,
    window_batches,
    window_requests,
)
from tests.pdfgen import cao_page_text

SETTINGS = ChunkSettings(min_chars=50, max_chars=400)
TEXT = "Titel\n\nArtikel 1 Loon\nHet loon is hoog.\n\n\nArtikel 2 Verlof\nVeel verlof.\n"


def window_of(text: str) -> Window:
    return Window(0, 0, len(text), tuple(split_text(text, SETTINGS)))


def answer(*starts: int | object) -> str:
    return json.dumps({"chunks": [{"start": s, "title": f"t{s}"} for s in starts]})


def test_windows_are_whole_structural_spans_and_cover_the_text() -> None:
    text = "\n\n".join(cao_page_text(n) for n in range(1, 40))
    settings = ChunkSettings()
    windows = make_windows(text, settings, window_chars=5000)
    assert len(windows) > 5
    assert windows[0].start == 0 and windows[-1].end == len(text)
    for before, after in pairwise(windows):
        assert before.end == after.start
    for window in windows:
        assert window.end - window.start <= 5000
        assert window.fallback[0].start == window.start and window.fallback[-1].end == window.end
    spans = [span for window in windows for span in window.fallback]
    assert spans == split_text(text, settings)


def test_segments_tile_the_window_join_blank_lines_and_cut_long_lines() -> None:
    text = "\n\nkop\n\nregel een\n" + "woord " * 30 + "\nslot"
    segments = make_segments(text, 0, len(text), max_len=40)
    assert segments[0] == Segment(0, text.index("regel"))  # leading blanks join the first line
    assert text[segments[1].start : segments[1].end] == "regel een\n"
    assert all(s.end - s.start <= 40 for s in segments)
    check_tiling([Span(s.start, s.end, "") for s in segments], 0, len(text))
    assert text[segments[-1].start :] == "slot"


def test_a_valid_answer_tiles_the_window_with_the_models_titles() -> None:
    window = window_of(TEXT)
    segments = make_segments(TEXT, 0, len(TEXT), 100)
    assert [TEXT[s.start : s.end].strip() for s in segments] == [
        "Titel", "Artikel 1 Loon", "Het loon is hoog.", "Artikel 2 Verlof", "Veel verlof."
    ]  # fmt: skip
    spans = parse_chunking(answer(1, 2, 4), window, segments, ChunkSettings(5, 400))
    assert [TEXT[s.start : s.end] for s in spans] == [
        "Titel\n\n", "Artikel 1 Loon\nHet loon is hoog.\n\n\n", "Artikel 2 Verlof\nVeel verlof.\n"
    ]  # fmt: skip
    assert [s.heading for s in spans] == ["t1", "t2", "t4"]


def test_short_chunks_merge_into_a_neighbour() -> None:
    window = window_of(TEXT)
    segments = make_segments(TEXT, 0, len(TEXT), 100)
    spans = parse_chunking(answer(1, 2, 4), window, segments, SETTINGS)
    assert [(s.start, s.end) for s in spans] == [(0, len(TEXT))]  # all three are < 50 chars
    assert spans[0].heading == "t1"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("", "not valid JSON"),
        ("[1, 2]", "expected a JSON object, got list"),
        ('{"parts": []}', '"chunks" must be a non-empty list'),
        (answer(2, 4), "chunk 1 starts at segment 2, expected 1"),
        (answer(1, 4, 3), "chunk 3 starts at segment 3, expected after 4"),
        (answer(1, 1), "chunk 2 starts at segment 1, expected after 1"),
        (answer(1, 9), "chunk 2 starts at segment 9, not in 1..5"),
        (answer(1, True), 'chunk 2: "start" must be a segment number'),
        (answer(1, "2"), 'chunk 2: "start" must be a segment number'),
        ('{"chunks": [3]}', "chunk 1 is not an object"),
        ('{"chunks": [{"start": 1, "title": 5}]}', 'chunk 1: "title" must be a string'),
    ],
)
def test_invalid_boundaries_are_rejected_with_a_reason(content: str, reason: str) -> None:
    segments = make_segments(TEXT, 0, len(TEXT), 100)
    with pytest.raises(InvalidAnswer) as info:
        parse_chunking(content, window_of(TEXT), segments, SETTINGS)
    assert info.value.reason == reason


def test_a_chunk_over_max_chars_is_rejected() -> None:
    segments = make_segments(TEXT, 0, len(TEXT), 100)
    with pytest.raises(InvalidAnswer, match=r"chunk 1 has 72 characters, more than max_chars \(60"):
        parse_chunking(answer(1), window_of(TEXT), segments, ChunkSettings(10, 60))


def test_merge_short_keeps_chunks_that_do_not_fit() -> None:
    spans = [Span(0, 30, "a"), Span(30, 400, "b"), Span(400, 420, "")]
    assert merge_short(spans, SETTINGS) == [Span(0, 400, "a"), Span(400, 420, "")]


def test_check_tiling_finds_gaps_and_overlaps() -> None:
    check_tiling([Span(0, 5, ""), Span(5, 9, "")], 0, 9)
    for spans in ([Span(0, 5, ""), Span(6, 9, "")], [Span(0, 5, ""), Span(4, 9, "")],
                  [Span(0, 5, "")]):  # fmt: skip
        with pytest.raises(InvalidAnswer):
            check_tiling(spans, 0, 9)


def test_the_chunk_request_shows_numbered_segments_with_lengths() -> None:
    config = LlmConfig(chunk_max_tokens=321, window_chars=1000)
    text = TEXT + "\n".join(f"Regel {n} van de bijlage." for n in range(60))
    asks = window_requests(config, SETTINGS, "Mijn CAO", text)
    assert len(asks) == 2 and window_requests(config, SETTINGS, "Mijn CAO", text) is asks
    request = asks[0].request
    system, user = (text for _, text in request.messages)
    assert system == CHUNK_SYSTEM and "JSON" in system and '"start": 1' in system
    assert "Part 1 of 2" in user and "Chunk size: 50 to 400 characters." in user
    assert "\n2 [15] Artikel 1 Loon\n" in user
    assert asks[0].segments == tuple(make_segments(text, 0, asks[0].window.end, 100))
    assert request.payload()["response_format"] == {"type": "json_object"}
    assert (request.model, request.max_tokens, request.temperature) == ("deepseek-chat", 321, 0.0)


def test_the_analysis_request_and_answer() -> None:
    chunk = Chunk("k:00001", 1, 0, 10, "Artikel 5 Loon", "Het loon is € 2.450,00.")
    request = analysis_request(LlmConfig(), "Mijn CAO", chunk)
    system, user = (text for _, text in request.messages)
    assert system == ANALYSIS_SYSTEM and "JSON" in system
    assert user.endswith("Heading: Artikel 5 Loon\nChunk text:\nHet loon is € 2.450,00.")
    assert "response_format" not in request.payload()  # the reasoning model answers in text
    good = {
        "section_title": "Artikel 5 Loon", "defined_terms": [], "dates": [],
        "amounts": [{"value": 2450.0, "currency": "EUR", "text": "€ 2.450,00"}],
        "percentages": [], "references": [], "parties": [],
    }  # fmt: skip
    fenced = "Here it is:\n```json\n" + json.dumps(good) + "\n```"
    analysis = parse_analysis_answer(chunk.id, fenced)
    assert analysis.chunk_id == chunk.id and analysis.amounts[0].value == 2450.0
    with pytest.raises(InvalidAnswer, match=r"schema: \$\.dates: missing"):
        parse_analysis_answer(chunk.id, json.dumps({k: v for k, v in good.items() if k != "dates"}))


def test_load_json_object_finds_the_object_inside_words() -> None:
    assert load_json_object('Sure! {"a": 1} Hope that helps.') == {"a": 1}
    assert load_json_object('```\n{"a": 2}\n```') == {"a": 2}
    with pytest.raises(InvalidAnswer, match="not valid JSON"):
        load_json_object('{"a": ')


def chunks_of(text: str, cuts: list[int], offset: int = 0) -> tuple[Chunk, ...]:
    edges = [0, *cuts, len(text)]
    return tuple(
        Chunk(f"d:{i:05d}", i, offset + a, offset + b, f"h{i}", text[a:b])
        for i, (a, b) in enumerate(pairwise(edges))
    )


WINDOWED = "\n\n".join(cao_page_text(n) for n in range(1, 9))
CONFIG = LlmConfig(provider="deepseek", window_chars=2000, analysis_batch_chunks=3)


def line_starts(text: str, start: int, end: int) -> list[int]:
    return [s.start for s in make_segments(text, start, end, 10**6)][1:]


def test_window_batches_repeat_the_chunking_request_and_number_chunks_in_the_division() -> None:
    settings = ChunkSettings()
    asks = window_requests(CONFIG, settings, "T", WINDOWED)
    windows = [ask.window for ask in asks]
    assert windows == make_windows(WINDOWED, settings, CONFIG.window_chars) and len(windows) > 2
    cuts = [w.start for w in windows[1:]]
    for window in windows:  # two line-aligned chunks per window
        cuts.append(line_starts(WINDOWED, window.start, window.end)[0])
    chunks = chunks_of(WINDOWED, sorted(cuts), offset=1000)  # offsets need not start at 0
    batches, rest = window_batches(CONFIG, settings, "T", chunks)
    assert rest == [] and len(batches) == len(windows)
    for batch, ask in zip(batches, asks, strict=True):
        system, user, (role, division), task = batch.request.messages
        assert (system, user) == ask.request.messages and role == "assistant"
        assert task == ("user", "Analyse chunks 1 to 2 of this division.")
        starts = [c["start"] for c in json.loads(division)["chunks"]]
        assert starts[0] == 1 and len(starts) == 2
        assert [n for n, _ in batch.numbered] == [1, 2]
        assert batch.request.model == CONFIG.analysis_model
    assert [c for b in batches for _, c in b.numbered] == list(chunks)


def test_a_window_with_more_chunks_than_a_batch_is_asked_in_groups_sharing_its_prefix() -> None:
    settings = ChunkSettings()
    (window, *_) = make_windows(WINDOWED, settings, CONFIG.window_chars)
    first = WINDOWED[: window.end]
    chunks = chunks_of(first, line_starts(first, 0, len(first))[:6])  # 7 chunks, 3 per batch
    batches, rest = window_batches(CONFIG, settings, "T", chunks)
    assert rest == [] and [[n for n, _ in b.numbered] for b in batches] == [
        [1, 2, 3],
        [4, 5, 6],
        [7],
    ]
    assert len({b.request.messages[:3] for b in batches}) == 1
    assert batches[1].request.messages[3][1] == "Analyse chunks 4 to 6 of this division."


def test_chunks_that_are_no_division_of_the_segments_go_in_batches_of_their_own() -> None:
    settings = ChunkSettings()
    windows = make_windows(WINDOWED, settings, CONFIG.window_chars)
    mid_line = windows[0].start + 5  # inside the first line of the first window
    cuts = [mid_line, *(w.start for w in windows[1:])]
    chunks = chunks_of(WINDOWED, cuts)
    batches, rest = window_batches(CONFIG, settings, "T", chunks)
    assert rest == list(chunks[:2]) and len(batches) == len(windows) - 1
    gap = (chunks[0], *chunks[2:])  # chunk 1 missing: the chunks do not tile a text
    assert window_batches(CONFIG, settings, "T", gap) == ([], list(gap))


def test_a_batch_answer_is_read_by_the_numbers_the_request_gave() -> None:
    chunks = chunks_of("Artikel 1 Loon\nHet loon.\nArtikel 2 Verlof\nVeel.", [25])
    good = {"section_title": "", "defined_terms": [], "dates": [], "amounts": [],
            "percentages": [], "references": [], "parties": []}  # fmt: skip
    content = json.dumps({"chunks": {"7": good, "8": {**good, "dates": ["gisteren"]}}})
    answer = parse_batch_answer(content, ((7, chunks[0]), (8, chunks[1])))
    assert list(answer.analyses) == [chunks[0].id]
    assert answer.problems[chunks[1].id].startswith("chunk 8: schema: $.dates")
    with pytest.raises(InvalidAnswer, match="no chunk's analysis is valid; first: no analysis"):
        parse_batch_answer(content, ((1, chunks[0]),))
