"""docs/reliability.md (the README's reliability table) lists every reliability case.

Regenerate it with ``python tests/test_reliability_support.py`` (runs the tests, slow ones included).
"""

from __future__ import annotations

try:
    from test_reliability_support import AREAS, REPO, reliability_cases
except ImportError:  # pragma: no cover
    from tests.test_reliability_support import AREAS, REPO, reliability_cases


def test_reliability_doc_lists_every_area_and_case() -> None:
    doc = (REPO / "docs" / "reliability.md").read_text(encoding="utf-8")
    missing = [a for a in AREAS if f"| {a} |" not in doc]
    missing += [case for _, case, _ in reliability_cases() if f"`{case}`" not in doc]
    assert missing == [], f"not in docs/reliability.md (regenerate it): {missing}"
    assert "| – |" not in doc, "an area without counts: regenerate docs/reliability.md after a full run"
