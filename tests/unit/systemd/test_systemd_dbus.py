"""The pystemd adapter's error handling, against a stand-in for pystemd's modules.

pystemd (a compiled sdist) is not installed on the test host; the VM tier runs the real one.
These tests put small modules named `pystemd.dbuslib` and `pystemd.dbusexc` in its place,
with the exception classes pystemd 0.15 defines (dbusexc.pyx: every bus error is a
`DBusBaseError` subclass picked by the D-Bus error name), to show which errors the adapter
translates, which one it reads as "this unit type has no such property", and that a
programming error (a TypeError for a wrongly typed argument) is never swallowed.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from lexi_maint.errors import SystemdError
from lexi_maint.systemd.dbus import SERVICE, PystemdSystemd


class DBusBaseError(Exception):
    pass


class DBusUnknownPropertyError(DBusBaseError):
    pass


class DBusUnknownInterfaceError(DBusBaseError):
    pass


class DBusNoSuchUnitError(DBusBaseError):
    pass


class DBusDisconnectedError(DBusBaseError):
    pass


@dataclass
class Reply:
    body: Any


@dataclass
class FakeBus:
    """Answers LoadUnit with a path, properties from `props`; raises what it is told to."""

    props: dict[bytes, Any] = field(default_factory=dict)
    property_error: Callable[[bytes, bytes], Exception | None] = lambda _i, _k: None
    call_error: Exception | None = None

    def open(self) -> None:
        pass

    def match_signal(self, *args: Any) -> None:
        pass

    def call_method(
        self, dest: bytes, path: bytes, iface: bytes, method: bytes, args: Any
    ) -> Reply:
        if self.call_error is not None and method != b"Subscribe":
            raise self.call_error
        return Reply(b"/org/freedesktop/systemd1/unit/x" if method == b"LoadUnit" else b"")

    def get_property(self, dest: bytes, path: bytes, iface: bytes, key: bytes, sig: bytes) -> Any:
        error = self.property_error(iface, key)
        if error is not None:
            raise error
        return self.props.get(key, b"")


@pytest.fixture
def bus(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeBus]:
    fake = FakeBus()
    dbuslib = types.ModuleType("pystemd.dbuslib")
    vars(dbuslib).update(DBus=lambda: fake, apply_signature=lambda sig, values: list(values))
    dbusexc = types.ModuleType("pystemd.dbusexc")
    for cls in (DBusBaseError, DBusUnknownPropertyError, DBusUnknownInterfaceError,
                DBusNoSuchUnitError, DBusDisconnectedError):  # fmt: skip
        vars(dbusexc)[cls.__name__] = cls
    package = types.ModuleType("pystemd")
    vars(package).update(dbuslib=dbuslib, dbusexc=dbusexc)
    monkeypatch.setitem(sys.modules, "pystemd", package)
    monkeypatch.setitem(sys.modules, "pystemd.dbuslib", dbuslib)
    monkeypatch.setitem(sys.modules, "pystemd.dbusexc", dbusexc)
    yield fake


def test_a_property_the_unit_type_lacks_reads_as_its_default(bus: FakeBus) -> None:
    bus.props = {b"LoadState": b"loaded", b"ActiveState": b"active"}

    def no_service_interface(iface: bytes, key: bytes) -> Exception | None:
        if iface != SERVICE:
            return None
        if key == b"MainPID":
            return DBusUnknownInterfaceError("Unknown interface")
        return DBusUnknownPropertyError("Unknown property or interface.")

    bus.property_error = no_service_interface
    status = PystemdSystemd().status("lexi.slice")
    assert (status.load_state, status.active_state) == ("loaded", "active")
    assert (status.result, status.main_pid, status.control_group) == ("", 0, "")


def test_a_failing_bus_is_an_error_not_a_default(bus: FakeBus) -> None:
    bus.property_error = lambda _i, _k: DBusDisconnectedError("Connection terminated")
    with pytest.raises(SystemdError, match=r"reading LoadState of lexi\.service") as err:
        PystemdSystemd().status("lexi.service")
    assert isinstance(err.value.__cause__, DBusDisconnectedError)


def test_a_wrong_argument_type_is_not_swallowed(bus: FakeBus) -> None:
    bus.property_error = lambda _i, _k: TypeError("expected bytes, str found")
    with pytest.raises(TypeError):
        PystemdSystemd().status("lexi.service")


def test_a_refused_call_names_the_method_and_the_unit(bus: FakeBus) -> None:
    systemd = PystemdSystemd()
    bus.call_error = DBusNoSuchUnitError("Unit lexi.service not loaded.")
    with pytest.raises(SystemdError, match=r"KillUnit\(lexi.service, main, 21\)") as err:
        systemd.kill_main("lexi.service", 21)
    assert isinstance(err.value.__cause__, DBusNoSuchUnitError)
    bus.call_error = TypeError("an integer is required")
    with pytest.raises(TypeError):
        systemd.kill_main("lexi.service", 21)
