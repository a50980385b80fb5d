"""A worker whose stages cannot be built: a dependency that is down against a bug."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from lexi_maint.errors import Dependency, ErrorClass, GraphError
from lexi_maint.pipeline.contract import SourceFile
from lexi_maint.pipeline.worker import setup_failure

SOURCE = SourceFile(Path("/in/cao.txt"), Path("/in"), "0" * 64, 10)


def test_a_bug_building_the_stages_logs_its_traceback(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="lexi_maint.pipeline.worker")
    failure = setup_failure(SOURCE, NameError("name 'make_store' is not defined"))
    assert failure.error_class is ErrorClass.INTERNAL
    assert failure.message == "worker setup failed: name 'make_store' is not defined"
    assert failure.outage == ""
    [record] = caplog.records
    assert "building the stages for /in/cao.txt failed" in record.getMessage()
    assert record.exc_info is not None and record.exc_info[0] is NameError


def test_a_graph_store_that_is_down_is_an_outage_not_a_bug(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="lexi_maint.pipeline.worker")
    failure = setup_failure(SOURCE, GraphError("FalkorDB on /s is unreachable", unavailable=True))
    assert failure.outage == Dependency.GRAPH.value
    assert failure.error_class is ErrorClass.INTERNAL
    assert not caplog.records
