"""`make bench-llm`: the LLM stages against the test server, three ways, one benchmark run.

A 49-document batch shaped like the seed's (generated CAO text: 35 small documents of
10-50 chunks, 11 medium of 100-300, 3 large of 500-700) goes through `lexi-maint run`
with `[llm] provider = "deepseek"` pointed at the OpenAI-compatible test server
(tests/llm_server, in its own process), whose latency is drawn per request from a
log-normal distribution per model (the same request always waits the same time) and is
scaled down so the whole benchmark takes a few minutes:

    (a) the seed's shape: 4 worker processes, one call at a time each
        (workers = 4, max_concurrency = 4, document_concurrency = 1);
    (b) lexi-maint's defaults (no workers or concurrency keys in the config);
    (c) the lower bound: total simulated latency of (b)'s calls / the default max_concurrency.

Each run starts from an empty state directory (no cached answers). Prints wall time, peak
memory of the whole process tree (sum of RSS, sampled every 20 ms: runner, workers, the
graph server), calls, tokens, and the ratios b/a and b/c. Targets: b/a <= 1/8,
b/c <= 1.25, peak memory of (b) <= 500 MB. Exit status 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.treemem import TreeRun, run_measured
from lexi_maint.llm.config import LlmConfig
from tests.llm_server import API_KEY
from tests.pdfgen import cao_page_text

REPO = Path(__file__).resolve().parents[1]
MB = 10**6
SHAPE = (("small", 35, 10, 50), ("medium", 11, 100, 300), ("large", 3, 500, 700))
# median seconds and sigma of a log-normal latency per model, before scaling
LATENCY = "deepseek-chat=lognormal:1.0,0.4;deepseek-reasoner=lognormal:3.0,0.5"


@dataclass(frozen=True)
class Case:
    label: str
    run: TreeRun
    calls: int
    latency: float  # simulated seconds of every call, added up
    usage: dict[str, object]


def make_batch(target: Path, seed: int) -> list[int]:
    """Write the documents; return their article counts."""
    target.mkdir(parents=True)
    rng = random.Random(seed)
    sizes = [rng.randint(low, high) for _, count, low, high in SHAPE for _ in range(count)]
    rng.shuffle(sizes)
    for i, size in enumerate(sizes):
        articles = (
            cao_page_text(n).replace("(pagina", f"(document {i}, pagina")
            for n in range(1, size + 1)
        )
        text = f"CAO bench document {i}\n\n" + "\n\n".join(articles) + "\n"
        (target / f"doc-{i:02d}-{size}.txt").write_text(text, encoding="utf-8")
    return sizes


def write_config(root: Path, url: str, llm_extra: str, job_extra: str) -> Path:
    key = root / "api-key"
    key.write_text(API_KEY + "\n")
    key.chmod(0o600)
    config = root / "bench.toml"
    config.write_text(
        f'state_dir = "{root / "state"}"\n\n'
        f'[llm]\nprovider = "deepseek"\nbase_url = "{url}"\napi_key_file = "{key}"\n'
        f"{llm_extra}\n"
        f'[jobs.bench]\ninput = "{root.parent / "input"}"\n{job_extra}'
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
def test_server(scale: float) -> Iterator[Server]:
    argv = [sys.executable, "-m", "tests.llm_server", "--latency", LATENCY, "--scale", str(scale)]
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


def run_case(label: str, config: Path, server: Server) -> Case:
    server.admin("reset")
    argv = [sys.executable, "-m", "lexi_maint", "--config", str(config), "run", "bench",
            "--progress", "lines"]  # fmt: skip
    result = run_measured(argv, cwd=REPO)
    if result.exit_code != 0:
        print(result.stdout[-3000:])
        raise SystemExit(f"{label}: lexi-maint exited with {result.exit_code}")
    status = subprocess.run(
        [sys.executable, "-m", "lexi_maint", "--config", str(config), "status", "bench", "--json"],
        capture_output=True, text=True, check=True, cwd=REPO,
    )  # fmt: skip
    usage = json.loads(status.stdout)["last_run"]["llm"]
    stats = server.admin("stats")
    case = Case(label, result, stats["calls"], stats["total_latency"], usage)
    print(describe(case), flush=True)
    return case


def describe(case: Case) -> str:
    u, peak = case.usage, case.run.peak_tree_rss / MB
    return (
        f"{case.label:<34} {case.run.seconds:7.1f} s  tree peak {peak:6.1f} MB"
        f"  calls {case.calls}  tokens in {u['prompt_tokens']} out {u['completion_tokens']}"
        f" (reasoning {u['reasoning_tokens']})  cost {u['cost']} {u['currency']}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=0.07, help="latency scale (default 0.07)")
    parser.add_argument("--seed", type=int, default=49)
    args = parser.parse_args()
    defaults = LlmConfig()
    with tempfile.TemporaryDirectory(prefix="lexi-bench-llm-") as tmp:
        base = Path(tmp)
        sizes = make_batch(base / "input", args.seed)
        print(f"{len(sizes)} documents, {sum(sizes)} articles; latency scale {args.scale}; "
              f"defaults: workers {defaults.workers}, max_concurrency {defaults.max_concurrency}",
              flush=True)  # fmt: skip
        with test_server(args.scale) as server:
            roots = {name: base / name for name in ("a", "b")}
            for root in roots.values():
                root.mkdir()
            seed_shape = write_config(
                roots["a"],
                server.url,
                "max_concurrency = 4\ndocument_concurrency = 1",
                "workers = 4\n",
            )
            default = write_config(roots["b"], server.url, "", "")
            a = run_case("(a) seed shape: 4 workers x 1 call", seed_shape, server)
            b = run_case("(b) lexi-maint defaults", default, server)
    bound = b.latency / defaults.max_concurrency
    print(f"{'(c) lower bound: latency / ' + str(defaults.max_concurrency):<34} {bound:7.1f} s"
          f"  (total simulated latency {b.latency:.1f} s)")  # fmt: skip
    ratio_ba, ratio_bc = b.run.seconds / a.run.seconds, b.run.seconds / bound
    peak = b.run.peak_tree_rss / MB
    print(f"b/a = {ratio_ba:.3f} (target <= {1 / 8:.3f})   b/c = {ratio_bc:.3f} (target <= 1.25)"
          f"   peak (b) = {peak:.1f} MB (target <= 500)")  # fmt: skip
    ok = ratio_ba <= 1 / 8 and ratio_bc <= 1.25 and peak <= 500
    print(f"load average at the end: {os.getloadavg()[0]:.2f} (other work here skews b/c)")
    print("targets met" if ok else "TARGETS MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
