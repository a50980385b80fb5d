"""`make bench-quality`: recall and precision of the structure and entities on the gold set.

The gold set (tests/gold: fictional agreements in the formats real Dutch CAOs use, each with a
sidecar of what a reader finds in it) goes through two paths, in-process:

    embedded  parse -> ChunkStage -> AnalyzeStage -> build_graph_document
    llm       parse -> LlmChunkStage -> LlmAnalyzeStage -> build_graph_document, against the
              test server (tests/llm_server, real HTTP on loopback): its answers pass the
              LLM path's validation, and references are resolved on the model's chunks.

Scored per kind, summed over the documents (micro average):

    headings    article and annex heading lines (key and position) that find_headings reports
    addressable gold articles some chunk of the graph lists in `articles`
    terms, dates, amounts, percentages   the entities the graph document mentions (per
                document, as sets: terms case-folded, numbers to the cent)
    references  REFERS_TO edges as (source chunk, target chunk): a gold reference expects an
                edge from the chunk holding its text to the chunk holding the target heading
                (none when both are the same chunk)

Prints recall and precision per kind and path, the misses (gold not found) and the false
finds, and whether the targets are met: recall >= 95% for headings, dates and percentages,
>= 90% for terms, amounts and references, precision >= 90% for each. Exit status 1 if not.
Options: --min-chars/--max-chars for the chunk sizes (defaults: the embedded defaults).
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from lexi_maint.config.llm import LlmConfig
from lexi_maint.config.pipeline import ChunkSettings, ParseSettings
from lexi_maint.graph.model import AMOUNT, DATE, PERCENTAGE, TERM, GraphDocument
from lexi_maint.llm.keys import api_key
from lexi_maint.llm.runtime import LlmRuntime
from lexi_maint.pipeline.analyze import AnalyzeStage
from lexi_maint.pipeline.articles import find_headings
from lexi_maint.pipeline.chunk import ChunkStage
from lexi_maint.pipeline.contract import SourceFile, Stage, Work
from lexi_maint.pipeline.graphdoc import build_graph_document as graph_of
from lexi_maint.pipeline.llm_analyze import LlmAnalyzeStage
from lexi_maint.pipeline.llm_chunk import LlmChunkStage
from lexi_maint.pipeline.parse import ParseStage
from tests.gold import GoldDocument, load_gold
from tests.llm_server import API_KEY, FakeLlmServer

KINDS = (
    "headings",
    "addressable",
    "terms",
    "dates",
    "amounts",
    "percentages",
    "references",
)
RECALL_TARGETS = {
    "headings": 0.95,
    "addressable": 1.0,
    "dates": 0.95,
    "percentages": 0.95,
    "terms": 0.90,
    "amounts": 0.90,
    "references": 0.90,
}
PRECISION_TARGET = 0.90


@dataclass
class Tally:
    """Found / expected / reported counts of one kind, with what was missed or wrong."""

    hits: int = 0
    expected: int = 0
    reported: int = 0
    misses: list[str] = field(default_factory=list)
    false: list[str] = field(default_factory=list)

    def add(self, document: str, gold: Iterable[object], found: Iterable[object]) -> None:
        gold_set, found_set = set(gold), set(found)
        self.hits += len(gold_set & found_set)
        self.expected += len(gold_set)
        self.reported += len(found_set)
        self.misses += [f"{document}: {item}" for item in sorted(map(str, gold_set - found_set))]
        self.false += [f"{document}: {item}" for item in sorted(map(str, found_set - gold_set))]

    @property
    def recall(self) -> float:
        return self.hits / self.expected if self.expected else 1.0

    @property
    def precision(self) -> float:
        return self.hits / self.reported if self.reported else 1.0


def _names(doc: GraphDocument, label: str) -> set[str]:
    return {m["name"] for m in doc.mentions_of(label)}


def _values(doc: GraphDocument, label: str) -> set[float]:
    return {round(m["value"], 2) for m in doc.mentions_of(label) if "value" in m}


def _chunk_at(doc: GraphDocument, position: int) -> str:
    return next(c["id"] for c in doc.chunks if c["start"] <= position < c["end"])


def _reference_edges(gold: GoldDocument, doc: GraphDocument) -> tuple[set[str], set[str]]:
    """Expected and found REFERS_TO edges as "chunk 3 -> chunk 1", expected ones labelled
    with the gold text that asks for them."""
    index = {c["id"]: c["index"] for c in doc.chunks}
    target_of = {h.key: _chunk_at(doc, h.start) for h in gold.headings}
    expected: dict[str, str] = {}
    for ref in gold.references:
        source, target = _chunk_at(doc, ref.start), target_of[ref.to]
        if source != target:
            edge = f"chunk {index[source]} -> chunk {index[target]}"
            expected.setdefault(edge, f"{edge} ({ref.text!r})")
    found = {f"chunk {index[r['source']]} -> chunk {index[r['target']]}" for r in doc.references}
    return set(expected.values()), {expected.get(edge, edge) for edge in found}


def score(gold: GoldDocument, doc: GraphDocument, tallies: dict[str, Tally]) -> None:
    name = gold.name
    headings = [h for h in find_headings(gold.text) if h.key]
    tallies["headings"].add(
        name,
        (f"{h.key} {h.line!r}" for h in gold.headings),
        (f"{h.key} {gold.text[h.start : h.end]!r}" for h in headings),
    )
    held = {key for chunk in doc.chunks for key in chunk["articles"]}
    gold_keys = {h.key for h in gold.headings}
    tallies["addressable"].add(name, gold_keys, held)
    tallies["terms"].add(name, gold.terms, _names(doc, TERM))
    tallies["dates"].add(name, gold.dates, _names(doc, DATE))
    tallies["amounts"].add(name, gold.amounts, _values(doc, AMOUNT))
    tallies["percentages"].add(name, gold.percentages, _values(doc, PERCENTAGE))
    tallies["references"].add(name, *_reference_edges(gold, doc))


def run_stages(gold: GoldDocument, stages: Iterable[Stage]) -> GraphDocument:
    data = gold.path.read_bytes()
    source = SourceFile(gold.path, gold.path.parent, hashlib.sha256(data).hexdigest(), len(data))
    work = Work(source)
    for stage in stages:
        work = stage.run(work)
    return graph_of(work)


def evaluate(
    golds: list[GoldDocument], stages: Callable[[], list[Stage]]
) -> tuple[dict[str, Tally], list[GraphDocument]]:
    tallies = {kind: Tally() for kind in KINDS}
    docs = []
    for gold in golds:
        doc = run_stages(gold, stages())
        score(gold, doc, tallies)
        docs.append(doc)
    return tallies, docs


def report(path: str, tallies: dict[str, Tally], verbose: bool) -> bool:
    print(f"\n== {path}")
    print(f"{'kind':<12} {'recall':>14} {'precision':>14}  target")
    ok = True
    for kind, t in tallies.items():
        met = t.recall >= RECALL_TARGETS[kind] and t.precision >= PRECISION_TARGET
        ok = ok and met
        print(
            f"{kind:<12} {t.recall:6.1%} {t.hits:3}/{t.expected:<3} "
            f"{t.precision:6.1%} {t.hits:3}/{t.reported:<3}  "
            f"recall >= {RECALL_TARGETS[kind]:.0%}, precision >= {PRECISION_TARGET:.0%}"
            f"{'' if met else '  MISSED'}"
        )
    for kind, t in tallies.items():
        for miss in t.misses:
            print(f"  missed {kind}: {miss}")
        for wrong in t.false if verbose or kind != "addressable" else ():
            print(f"  false  {kind}: {wrong}")
    return ok


def llm_runtime(url: str, state: Path) -> LlmRuntime:
    config = LlmConfig(provider="deepseek", base_url=url, state_dir=state)
    return LlmRuntime(config, api_key(API_KEY, "bench"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    defaults = ChunkSettings()
    parser.add_argument("--min-chars", type=int, default=defaults.min_chars)
    parser.add_argument("--max-chars", type=int, default=defaults.max_chars)
    parser.add_argument("--verbose", action="store_true", help="list every false find too")
    args = parser.parse_args()
    settings = ChunkSettings(min_chars=args.min_chars, max_chars=args.max_chars)
    golds = load_gold()
    parse = ParseStage(ParseSettings())
    print(f"gold set: {len(golds)} documents, {sum(len(g.headings) for g in golds)} articles; "
          f"chunk size {settings.min_chars}-{settings.max_chars} characters")  # fmt: skip
    embedded, docs = evaluate(golds, lambda: [parse, ChunkStage(settings), AnalyzeStage()])
    chunks = sum(len(d.chunks) for d in docs)
    ok = report(f"embedded chunker and analyzer ({chunks} chunks)", embedded, args.verbose)
    with FakeLlmServer() as server, tempfile.TemporaryDirectory(prefix="lexi-quality-") as tmp:
        runtime = llm_runtime(server.url, Path(tmp))
        llm, docs = evaluate(
            golds,
            lambda: [parse, LlmChunkStage(settings, runtime), LlmAnalyzeStage(runtime, settings)],
        )
        calls = server.count()
    chunks = sum(len(d.chunks) for d in docs)
    title = f"LLM path against the test server ({chunks} chunks, {calls} calls)"
    ok = report(title, llm, args.verbose) and ok
    print("\ntargets met" if ok else "\nTARGETS MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
