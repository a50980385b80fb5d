"""systemd over D-Bus: the only module that imports pystemd.

pystemd is used for what it does well, its sd-bus binding (`DBus`, `apply_signature`,
`match_signal`). Its `Manager.StartTransientUnit` wrapper is not used: its signature table
lacks OOMPolicy, OOMScoreAdjust and LoadCredential, and its `_custom` escape hatch allows
one extra property per call. Properties are encoded here from `UnitProperty.signature`.

Jobs are awaited the way systemctl does it: Subscribe, install the JobRemoved match, then
call StopUnit/StartUnit and wait for the JobRemoved signal of the returned job path.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from lexi_maint.errors import SystemdError
from lexi_maint.systemd.properties import UnitProperty

log = logging.getLogger(__name__)

DEST = b"org.freedesktop.systemd1"
PATH = b"/org/freedesktop/systemd1"
MANAGER = b"org.freedesktop.systemd1.Manager"
UNIT = b"org.freedesktop.systemd1.Unit"
SERVICE = b"org.freedesktop.systemd1.Service"
WAIT_SLICE_USEC = 200_000


@dataclass(frozen=True)
class UnitStatus:
    name: str
    load_state: str  # loaded, not-found, ...
    active_state: str  # active, inactive, failed, activating, deactivating
    sub_state: str
    result: str  # success, exit-code, signal, oom-kill, timeout, ... ("" if not a service)
    control_group: str  # "" when the unit has no processes
    main_pid: int
    exec_main_status: int

    @property
    def finished(self) -> bool:
        return self.active_state in ("inactive", "failed")


class SystemdPort(Protocol):
    def stop_unit(self, name: str, timeout: float) -> str: ...
    def start_unit(self, name: str, timeout: float) -> str: ...
    def start_transient(self, name: str, props: Sequence[UnitProperty], timeout: float) -> str: ...
    def status(self, name: str) -> UnitStatus: ...
    def kill_main(self, name: str, signum: int) -> None: ...
    def reset_failed(self, name: str) -> None: ...
    def unref(self, name: str) -> None: ...
    def list_units(self, pattern: str) -> list[str]: ...
    def close(self) -> None: ...


class PystemdSystemd:
    """The real adapter. Not thread-safe: use it from one thread."""

    def __init__(self, heartbeat: Callable[[], None] = lambda: None) -> None:
        self._heartbeat = heartbeat
        try:
            from pystemd import dbusexc
            from pystemd.dbuslib import DBus
        except ImportError as exc:
            raise SystemdError(
                "pystemd is not installed: install lexi-maint with the 'systemd' extra"
            ) from exc
        # Every error of pystemd's bus calls is built by its dbusexc.DBusError factory: a
        # DBusBaseError subclass chosen by the D-Bus error name (or errno). A TypeError for
        # an argument of the wrong type is a bug here and is not translated.
        self._dbus_error: type[Exception] = dbusexc.DBusBaseError
        # sd-bus answers Properties.Get of an interface the unit type lacks (Service of a
        # slice) with UnknownProperty ("Unknown property or interface.")
        self._no_such_property: tuple[type[Exception], ...] = (
            dbusexc.DBusUnknownPropertyError,
            dbusexc.DBusUnknownInterfaceError,
        )
        self._removed: dict[bytes, bytes] = {}
        self._bus: Any = DBus()
        self._guard(self._bus.open, "connecting to the system bus")

        def on_job_removed(msg: Any, error: object = None, userdata: Any = None) -> None:
            msg.process_reply(False)
            _id, job, _unit, result = msg.body
            userdata[job] = result

        self._on_job_removed = on_job_removed  # pystemd keeps no reference: we must
        self._guard(
            lambda: self._bus.match_signal(
                DEST, PATH, MANAGER, b"JobRemoved", on_job_removed, self._removed
            ),
            "subscribing to JobRemoved",
        )
        self._manager(b"Subscribe", b"", [])

    # -- jobs ------------------------------------------------------------------------------

    def stop_unit(self, name: str, timeout: float) -> str:
        job = self._manager(b"StopUnit", b"ss", [name.encode(), b"replace"])
        return self._wait_job(job, f"stopping {name}", timeout)

    def start_unit(self, name: str, timeout: float) -> str:
        job = self._manager(b"StartUnit", b"ss", [name.encode(), b"replace"])
        return self._wait_job(job, f"starting {name}", timeout)

    def start_transient(self, name: str, props: Sequence[UnitProperty], timeout: float) -> str:
        from pystemd.dbuslib import apply_signature

        args = apply_signature(b"ss", [name.encode(), b"fail"])
        args += encode_properties(props, apply_signature)
        args += [(ord("a"), b"(sa(sv))"), (-1, None)]  # no auxiliary units
        job = self._guard(
            lambda: self._bus.call_method(DEST, PATH, MANAGER, b"StartTransientUnit", args).body,
            f"creating {name}",
        )
        return self._wait_job(job, f"starting {name}", timeout)

    def kill_main(self, name: str, signum: int) -> None:
        """Signal only the unit's main process (gunicorn's master: SIGTTOU/SIGTTIN)."""
        self._manager(b"KillUnit", b"ssi", [name.encode(), b"main", signum])

    def unref(self, name: str) -> None:
        """Drop the reference taken with AddRef=yes, so systemd may unload the unit."""
        try:
            self._manager(b"UnrefUnit", b"s", [name.encode()])
        except SystemdError as exc:
            log.debug("unref %s: %s", name, exc)

    def reset_failed(self, name: str) -> None:
        try:
            self._manager(b"ResetFailedUnit", b"s", [name.encode()])
        except SystemdError as exc:
            log.debug("reset-failed %s: %s", name, exc)

    # -- state -----------------------------------------------------------------------------

    def status(self, name: str) -> UnitStatus:
        path = self._manager(b"LoadUnit", b"s", [name.encode()])

        def prop(interface: bytes, key: bytes, signature: bytes, default: object) -> Any:
            try:
                return self._guard(
                    lambda: self._bus.get_property(DEST, path, interface, key, signature),
                    f"reading {key.decode()} of {name}",
                )
            except SystemdError as exc:
                if isinstance(exc.__cause__, self._no_such_property):
                    return default  # a property the unit type does not have
                raise

        return UnitStatus(
            name=name,
            load_state=_text(prop(UNIT, b"LoadState", b"s", b"")),
            active_state=_text(prop(UNIT, b"ActiveState", b"s", b"")),
            sub_state=_text(prop(UNIT, b"SubState", b"s", b"")),
            result=_text(prop(SERVICE, b"Result", b"s", b"")),
            control_group=_text(prop(SERVICE, b"ControlGroup", b"s", b"")),
            main_pid=int(prop(SERVICE, b"MainPID", b"u", 0)),
            exec_main_status=int(prop(SERVICE, b"ExecMainStatus", b"i", 0)),
        )

    def list_units(self, pattern: str) -> list[str]:
        """Loaded units whose names match a glob pattern, whatever their state."""
        rows = self._manager(b"ListUnitsByPatterns", b"asas", [[], [pattern.encode()]])
        return [_text(row[0]) for row in rows]

    def close(self) -> None:
        self._bus.close()

    # -- plumbing --------------------------------------------------------------------------

    def _manager(self, method: bytes, signature: bytes, values: list[Any]) -> Any:
        from pystemd.dbuslib import apply_signature

        args = apply_signature(signature, values) if signature else []
        what = f"{method.decode()}({', '.join(_text(v) for v in values)})"
        return self._guard(
            lambda: self._bus.call_method(DEST, PATH, MANAGER, method, args).body, what
        )

    def _wait_job(self, job: bytes, what: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while job not in self._removed:
            self._heartbeat()
            self._guard(self._bus.process, "reading the bus")
            if job in self._removed:
                break
            if time.monotonic() >= deadline:
                raise SystemdError(f"{what}: no result within {timeout:g} s (job {_text(job)})")
            self._guard(lambda: self._bus.wait(WAIT_SLICE_USEC), "waiting on the bus")
        return _text(self._removed.pop(job))

    def _guard(self, call: Callable[[], Any], what: str) -> Any:
        """`call()`, with pystemd's D-Bus errors as SystemdError (the original as cause)."""
        try:
            return call()
        except self._dbus_error as exc:
            raise SystemdError(f"systemd D-Bus call failed while {what}: {exc}") from exc


def encode_properties(
    props: Sequence[UnitProperty], apply_signature: Callable[[bytes, list[Any]], list[Any]]
) -> list[tuple[int, Any]]:
    """The a(sv) argument for StartTransientUnit, in pystemd's argument-list form."""
    args: list[tuple[int, Any]] = [(ord("a"), b"(sv)")]
    for prop in props:
        signature = prop.signature.encode()
        args += [(ord("r"), b"sv"), (ord("s"), prop.name.encode()), (ord("v"), signature)]
        args += apply_signature(signature, [_encode(prop.value)])
        args += [(-1, None), (-1, None)]
    args += [(-1, None)]
    return args


def _encode(value: object) -> object:
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_encode(v) for v in value)
    return value


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)
