"""`make bench-llm`: the LLM stages against the test server, per chunk vs batched, one run.

A 49-document batch shaped like the seed's (generated CAO text: 35 small documents of
10-50 chunks, 11 medium of 100-300, 3 large of 500-700) goes through `lexi-maint run`
with `[llm] provider = "deepseek"` pointed at the OpenAI-compatible test server
(tests/llm_server, in its own process). Its latency model is DeepSeek-like: time to first
token plus output tokens (reasoning included) at a fixed rate per stream, the reasoning
growing with the square root of the input; prompt tokens already sent by an earlier request
(any model) are served by a 64-token-unit prefix cache. Latency is scaled down by
`--scale` so the benchmark takes a few minutes. The real-time figures undo the scale for
the calls' span (first call to last answer) and add the seconds before the first call and
after the last answer as measured: those are CPU work (start, parsing, the last graph
imports) that does not grow with latency. `--real-time` checks that estimate: case (b) at
`--scale` and unscaled (`make bench-llm-real`, about 7 minutes more).

    (a) per chunk: lexi-maint's defaults with `analysis_batch_chunks = 1`
    (b) batched:   lexi-maint's defaults (each window's analysis continues its chunking
                   request: one call per window of <= 64 chunks / 8,000 tokens)
    (c) batched, 10 times as many documents of the same shape (490): (b) has only about 3
                   rounds of its 3-7 s analysis calls per slot, so its wall time says more
                   about how the last round drains than about whether the pool stays full;
                   (c) has 30 (skip it with --no-large)
    bound:         each case's total simulated latency / max_concurrency (64), the
                   throughput bound: the wall time of a pool that is always full

Each case starts from an empty state directory and a reset server (no cached answers, an
empty prefix cache). Printed per case: wall time, tree peak memory (sum of RSS over the run
and its descendants, sampled every 20 ms), calls, calls per document, prompt tokens and
their cache-hit share, CPU per answered call (user + system CPU of the whole process tree
of `lexi-maint run`, from getrusage(RUSAGE_CHILDREN), divided by the calls the server
answered; the same batch without the LLM gives the pipeline's own CPU per chunk), and where
the wall time went (before the first call, calls in flight per tenth of the time calls were
out, after the last answer; from the server's timeline), and what the calls' sizes allow:
the time a central scheduler with no overhead would need for the run's own calls
(`central_schedule`). Targets (b against a): calls per
document / 4 or better, analysis prompt tokens / 2 or better, total simulated latency / 2
or better, cache-hit share of prompt tokens >= 50 %; wall <= 1.10 x bound, for (b) and for
(c); CPU per answered call <= 2 ms. Exit status 1 if one is missed.
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.treemem import TreeRun, run_measured
from lexi_maint.config.llm import LlmConfig, default_workers
from tests.llm_server import API_KEY
from tests.pdfgen import cao_page_text

REPO = Path(__file__).resolve().parents[1]
MB = 10**6
SHAPE = (("small", 35, 10, 50), ("medium", 11, 100, 300), ("large", 3, 500, 700))
LARGE = 10  # case (c): the same shape, 10 times as many documents (490)
CHUNK_MODEL, ANALYSIS_MODEL = "deepseek-chat", "deepseek-reasoner"
# seconds to the first token, then output tokens per second (DeepSeek-like, unscaled)
LATENCY = f"{CHUNK_MODEL}=tokens:0.8,80;{ANALYSIS_MODEL}=tokens:1.0,60"


@dataclass(frozen=True)
class Case:
    label: str
    run: TreeRun
    cpu_seconds: float  # user + system of the whole `lexi-maint run` tree
    stats: dict[str, Any]  # the server's counters (all models, and "by_model")
    documents: int
    chunks: int
    started: float  # time.monotonic() when `lexi-maint run` was started (the server's clock)

    @property
    def calls(self) -> int:
        return int(self.stats["answered"])

    def model(self, name: str) -> dict[str, Any]:
        empty = {"calls": 0, "answered": 0, "total_latency": 0.0, "prompt_tokens": 0,
                 "completion_tokens": 0, "cache_hit_tokens": 0}  # fmt: skip
        found: dict[str, Any] = self.stats["by_model"].get(name, empty)
        return found

    @property
    def latency(self) -> float:
        return float(self.stats["total_latency"])

    def bound(self, slots: int) -> float:
        return self.latency / slots

    @property
    def cpu_per_call_ms(self) -> float:
        return 1000 * self.cpu_seconds / max(self.calls, 1)

    @property
    def calls_span(self) -> tuple[float, float]:
        """Seconds from the start of the run to the first call and to the last answer."""
        calls = [(call[0] - self.started, call[1]) for call in self.stats["timeline"]]
        return min(s for s, _ in calls), max(s + latency for s, latency in calls)

    @property
    def outside_calls(self) -> float:
        """Seconds before the first call and after the last answer: CPU work (start, parsing,
        the last graph imports), which does not grow with the latency."""
        first, last = self.calls_span
        return first + self.run.seconds - last

    @property
    def in_flight(self) -> float:
        """Calls in flight on average: simulated latency / wall time."""
        return self.latency / self.run.seconds


def make_batch(target: Path, seed: int, copies: int = 1) -> list[int]:
    """Write the documents (`copies` times as many of each kind); return their article counts."""
    target.mkdir(parents=True)
    rng = random.Random(seed)
    sizes = [rng.randint(low, high) for _, count, low, high in SHAPE for _ in range(count * copies)]
    rng.shuffle(sizes)
    for i, size in enumerate(sizes):
        articles = (
            cao_page_text(n).replace("(pagina", f"(document {i}, pagina")
            for n in range(1, size + 1)
        )
        text = f"CAO bench document {i}\n\n" + "\n\n".join(articles) + "\n"
        (target / f"doc-{i:02d}-{size}.txt").write_text(text, encoding="utf-8")
    return sizes


def write_config(root: Path, url: str, llm_extra: str, input_dir: Path | None = None) -> Path:
    root.mkdir()
    key = root / "api-key"
    key.write_text(API_KEY + "\n")
    key.chmod(0o600)
    config = root / "bench.toml"
    config.write_text(
        f'state_dir = "{root / "state"}"\n\n'
        f'[llm]\nprovider = "deepseek"\nbase_url = "{url}"\napi_key_file = "{key}"\n'
        f"{llm_extra}\n"
        f'[jobs.bench]\ninput = "{input_dir or root.parent / "input"}"\n'
    )
    return config


class Server:
    """The test server in a child process, reached over HTTP (/_admin/ for its counters)."""

    def __init__(self, url: str) -> None:
        self.url = url

    def admin(self, action: str) -> dict[str, Any]:
        method = "GET" if action == "stats" else "POST"
        request = urllib.request.Request(f"{self.url}/_admin/{action}", method=method, data=b"")
        with urllib.request.urlopen(request, timeout=30) as response:
            data: dict[str, Any] = json.loads(response.read())
        return data


@contextmanager
def test_server(scale: float, latency: str = LATENCY) -> Iterator[Server]:
    argv = [sys.executable, "-m", "tests.llm_server", "--latency", latency, "--scale", str(scale)]
    proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        match = re.search(r"listening on (\S+)", proc.stdout.readline())
        if match is None:
            raise SystemExit("the test server did not start")
        yield Server(match[1])
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def write_plain_config(root: Path, workers: int) -> Path:
    """A config in the new folder `root` for the batch in `root.parent / "input"` with the
    embedded stages (`[llm] provider = "none"`, the default) and `workers` workers."""
    root.mkdir()
    config = root / "plain.toml"
    config.write_text(
        f'state_dir = "{root / "state"}"\n\n'
        f'[jobs.bench]\ninput = "{root.parent / "input"}"\nworkers = {workers}\n'
    )
    return config


def run_plain(root: Path, workers: int) -> float:
    """CPU of the whole tree for the batch with `[llm] provider = "none"`."""
    config = write_plain_config(root, workers)
    argv = [sys.executable, "-m", "lexi_maint", "--config", str(config), "run", "bench",
            "--progress", "lines"]  # fmt: skip
    before = children_cpu()
    subprocess.run(argv, cwd=REPO, check=True, capture_output=True)
    return children_cpu() - before


def run_case(label: str, config: Path, server: Server, documents: int) -> Case:
    server.admin("reset")
    argv = [sys.executable, "-m", "lexi_maint", "--config", str(config), "run", "bench",
            "--progress", "lines"]  # fmt: skip
    cpu_before = children_cpu()  # the server is not reaped until the end: not counted
    started = time.monotonic()  # CLOCK_MONOTONIC: the same clock as the server's
    result = run_measured(argv, cwd=REPO)
    cpu = children_cpu() - cpu_before
    if result.exit_code != 0:
        print(result.stdout[-3000:])
        raise SystemExit(f"{label}: lexi-maint exited with {result.exit_code}")
    status = subprocess.run(
        [sys.executable, "-m", "lexi_maint", "--config", str(config), "status", "bench", "--json"],
        capture_output=True, text=True, check=True, cwd=REPO,
    )  # fmt: skip
    chunks = sum(int(d["chunks"] or 0) for d in json.loads(status.stdout)["documents"])
    case = Case(label, result, cpu, server.admin("stats"), documents, chunks, started)
    print(describe(case), flush=True)
    print(timeline(case), flush=True)
    return case


def hit_share(stats: dict[str, Any]) -> float:
    return int(stats["cache_hit_tokens"]) / max(int(stats["prompt_tokens"]), 1)


def describe(case: Case) -> str:
    s, peak = case.stats, case.run.peak_tree_rss / MB
    return (
        f"{case.label:<14} wall {case.run.seconds:6.1f} s  tree peak {peak:5.0f} MB"
        f"  calls {case.calls:5d} ({case.calls / case.documents:5.1f}/doc)"
        f"  prompt {s['prompt_tokens'] / 1e6:5.2f}M (hit {hit_share(s):4.0%})"
        f"  out {s['completion_tokens'] / 1e6:5.2f}M"
        f"  CPU {case.cpu_seconds:5.1f} s = {case.cpu_per_call_ms:4.2f} ms/call"
        f" = {1000 * case.cpu_seconds / max(case.chunks, 1):4.2f} ms/chunk"
        f"  in flight {case.in_flight:4.1f}"
    )


def timeline(case: Case, parts: int = 10) -> str:
    """Where the wall time went: before the first call, calls in flight on average in each
    tenth of the time calls were out, after the last answer."""
    calls = [(call[0] - case.started, call[1]) for call in case.stats["timeline"]]
    first, last = case.calls_span
    step = (last - first) / parts
    busy = [0.0] * parts
    for start, latency in calls:
        for i in range(parts):
            low, high = first + i * step, first + (i + 1) * step
            busy[i] += max(0.0, min(high, start + latency) - max(low, start))
    profile = " ".join(f"{b / step:.0f}" for b in busy)
    return (
        f"{'':<14} first call at {first:.1f} s, last answer at {last:.1f} s, end"
        f" {case.run.seconds:.1f} s; in flight per tenth of the calls' time: {profile}"
    )


_DOCUMENT = re.compile(r"Document: (.*?)(?:\. Part \d+ of \d+\.)?$")


def central_schedule(case: Case, slots: int) -> float:
    """Seconds a central scheduler with no overhead would need for this run's own calls
    (their simulated latencies) on `slots` slots: a list schedule, longest call first, each
    document's analysis calls only after all its chunking calls. What the call sizes alone
    allow, next to the bound (which assumes the pool is full to the last second)."""
    chunking: dict[str, list[float]] = {}
    analysis: dict[str, list[float]] = {}
    for _, latency, _, model, _, label in case.stats["timeline"]:
        match = _DOCUMENT.match(label)
        document = match[1] if match else label
        (chunking if model == CHUNK_MODEL else analysis).setdefault(document, []).append(latency)
    waiting = {document: len(calls) for document, calls in chunking.items()}
    ready = [(-latency, latency, document, True) for document, calls in chunking.items()
             for latency in calls]  # fmt: skip
    ready += [(-latency, latency, document, False) for document, calls in analysis.items()
              if document not in waiting for latency in calls]  # fmt: skip
    heapq.heapify(ready)
    running: list[tuple[float, str, bool]] = []
    now = 0.0
    while ready or running:
        while ready and len(running) < slots:
            _, latency, document, chunk = heapq.heappop(ready)
            heapq.heappush(running, (now + latency, document, chunk))
        now, document, chunk = heapq.heappop(running)
        if chunk:
            waiting[document] -= 1
            if waiting[document] == 0:
                for latency in analysis.get(document, []):
                    heapq.heappush(ready, (-latency, latency, document, False))
    return now


def real_wall(case: Case, scale: float) -> float:
    """The wall time of `case` at the unscaled latency: its calls' span undone from the
    scale, plus its seconds before the first call and after the last answer as measured."""
    first, last = case.calls_span
    return case.outside_calls + (last - first) / scale


def check_real_time(scale: float, seed: int) -> int:
    """`--real-time`: case (b) at `scale` and at the unscaled latency (about 7 minutes), the
    estimate from the first against the measure of the second."""
    slots = LlmConfig().max_concurrency
    with tempfile.TemporaryDirectory(prefix="lexi-bench-llm-") as tmp:
        base = Path(tmp)
        sizes = make_batch(base / "input", seed)
        cases: list[Case] = []
        for label, at in ((f"(b) x {scale:g}", scale), ("(b) x 1", 1.0)):
            with test_server(at) as server:
                config = write_config(base / f"b{len(cases)}", server.url, "")
                cases.append(run_case(label, config, server, len(sizes)))
    scaled, real = cases
    estimate = real_wall(scaled, scale)
    for case in cases:
        print(
            f"{case.label:<14} wall / bound {case.run.seconds / case.bound(slots):.3f};"
            f" a central scheduler's {central_schedule(case, slots) / case.bound(slots):.3f}"
        )
    print(f"real time estimated from the run at scale {scale:g}: {estimate:.1f} s; measured at"
          f" the unscaled latency: {real.run.seconds:.1f} s (estimate / measure"
          f" {estimate / real.run.seconds:.3f})")  # fmt: skip
    return 0


def minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


def report(a: Case, b: Case, large: Case | None, slots: int, scale: float) -> bool:
    analysis_a, analysis_b = a.model(ANALYSIS_MODEL), b.model(ANALYSIS_MODEL)
    checks = [
        ("calls per document a/b", (a.calls / a.documents) / (b.calls / b.documents), ">=", 4.0),
        ("analysis prompt tokens a/b",
         analysis_a["prompt_tokens"] / analysis_b["prompt_tokens"], ">=", 2.0),
        ("total simulated latency a/b", a.latency / b.latency, ">=", 2.0),
        ("cache-hit share of prompt tokens (b)", hit_share(b.stats), ">=", 0.5),
        ("wall / bound (b)", b.run.seconds / b.bound(slots), "<=", 1.10),
        *([("wall / bound (c)", large.run.seconds / large.bound(slots), "<=", 1.10)]
          if large else []),
        ("CPU per answered call (b), ms", b.cpu_per_call_ms, "<=", 2.0),
        ("CPU per answered call (a), ms", a.cpu_per_call_ms, "<=", 2.0),
    ]  # fmt: skip
    cases = (a, b, large) if large else (a, b)
    for case in cases:
        first, last = case.calls_span
        print(f"bound {case.label:<8} latency / {slots} = {case.bound(slots):6.1f} s"
              f"  (total simulated latency {case.latency:.0f} s); wall / bound"
              f" {case.run.seconds / case.bound(slots):.3f}; first call to last answer / bound"
              f" {(last - first) / case.bound(slots):.3f}; a central scheduler's"
              f" {central_schedule(case, slots) / case.bound(slots):.3f}")  # fmt: skip
    print(f"also: all prompt tokens a/b {a.stats['prompt_tokens'] / b.stats['prompt_tokens']:.2f}"
          f"; analysis hit share (b) {hit_share(analysis_b):.0%}, (a) {hit_share(analysis_a):.0%}"
          f"; cost a/b (tokens x DeepSeek list prices) see the runs' summaries")  # fmt: skip
    ok = True
    for name, value, sense, target in checks:
        met = value >= target if sense == ">=" else value <= target
        ok = ok and met
        verdict = "met" if met else "MISSED"
        print(f"  {name:<40} {value:8.3f}  (target {sense} {target:g}) {verdict}")
    for case in cases:
        real_bound = case.bound(slots) / scale
        print(f"real time, {case.label}: {case.documents} documents: about"
              f" {minutes(real_wall(case, scale))}"
              f" at DeepSeek-like latency (bound {minutes(real_bound)}; the calls' span / scale"
              f" + the {case.outside_calls:.1f} s before the first call and after the last"
              " answer)")  # fmt: skip
    seed = a.latency / scale / 4
    print(
        f"the seed's shape (4 workers, one call each, per chunk): at least {minutes(seed)}"
        " (total latency / 4); the seed's operators saw 3-4 h"
    )
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=0.05, help="latency scale (default 0.05)")
    parser.add_argument("--seed", type=int, default=49)
    parser.add_argument(
        "--no-large",
        action="store_true",
        help="skip case (c), the batched run of 10 times as many documents",
    )
    parser.add_argument(
        "--real-time",
        action="store_true",
        help="instead: case (b) at --scale and at the unscaled latency (about 7 min), to check"
        " the real-time estimate",
    )
    args = parser.parse_args()
    if args.real_time:
        return check_real_time(args.scale, args.seed)
    defaults = LlmConfig()
    with tempfile.TemporaryDirectory(prefix="lexi-bench-llm-") as tmp:
        base = Path(tmp)
        sizes = make_batch(base / "input", args.seed)
        d = defaults
        print(f"{len(sizes)} documents, {sum(sizes)} articles; latency {LATENCY}, scale"
              f" {args.scale}; defaults: workers {d.workers} (per chunk"
              f" {default_workers(d.max_concurrency, batched=False)}), max_concurrency"
              f" {d.max_concurrency}, analysis batches of <= {d.analysis_batch_chunks}"
              f" chunks / {d.analysis_batch_tokens} tokens; load average"
              f" {os.getloadavg()[0]:.2f}", flush=True)  # fmt: skip
        with test_server(args.scale) as server:
            per_chunk = write_config(base / "a", server.url, "analysis_batch_chunks = 1")
            batched = write_config(base / "b", server.url, "")
            a = run_case("(a) per chunk", per_chunk, server, len(sizes))
            b = run_case("(b) batched", batched, server, len(sizes))
            large = None
            if not args.no_large:
                many = make_batch(base / "input-large", args.seed, LARGE)
                print(f"(c): {len(many)} documents, {sum(many)} articles", flush=True)
                config = write_config(base / "c", server.url, "", base / "input-large")
                large = run_case("(c) batched", config, server, len(many))
        plain = run_plain(base / "plain", d.workers)
    ok = report(a, b, large, defaults.max_concurrency, args.scale)
    per_chunk_ms = 1000 * plain / max(b.chunks, 1)
    print(f"the same batch without the LLM (provider none, {d.workers} workers): tree CPU"
          f" {plain:.1f} s = {per_chunk_ms:.2f} ms per chunk (parse, embedded chunking and"
          f" analysis, graph import): the pipeline's own floor under CPU per call, x"
          f" {b.chunks / max(b.calls, 1):.1f} chunks per call in (b)")  # fmt: skip
    print(f"load average at the end: {os.getloadavg()[0]:.2f} (1 min; 2 CPUs shared)")
    print("targets met" if ok else "TARGETS MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
