"""The order documents start in: the largest first."""

from __future__ import annotations

from lexi_maint.run.plan import Found
from lexi_maint.run.runner import largest_first


def test_the_largest_documents_start_first_ties_keep_the_plans_order() -> None:
    found = {p: Found(p, "x", size) for p, size in
             [("/a", 10), ("/b", 700), ("/c", 10), ("/d", 5000)]}  # fmt: skip
    assert largest_first(["/a", "/b", "/c", "/d"], found) == ["/d", "/b", "/a", "/c"]
