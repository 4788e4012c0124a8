"""One branch's text, one fragment per floor family, in the metric catalog's order.

Every floor family of :data:`branchwatch.contract.metrics.FLOOR` has exactly one
renderer (:mod:`collector.exposition.floor`, :mod:`collector.exposition.agents`);
a family without one, or a renderer outside the catalog, stops the import.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from branchwatch.contract import metrics
from collector.exposition.agents import AGENT_RENDERERS, NOTICE_RENDERERS, NoticeRender
from collector.exposition.floor import FLOOR_RENDERERS, Render
from collector.exposition.text import Labels, branch_labels
from collector.floor.branch import BranchState
from collector.notices.view import NoticeMetrics, notice_metrics

# Any family's lines for one branch, given its notice figures (None: notices are off).
_AnyRender = Callable[[Labels, BranchState, str, NoticeMetrics | None], str]


def _of_branch(render: Render) -> _AnyRender:
    return lambda labels, b, p, n: render(labels, b, p)


def _of_notices(render: NoticeRender) -> _AnyRender:
    return lambda labels, b, p, n: "" if n is None else render(labels, n, p)


def _in_catalog_order() -> tuple[_AnyRender, ...]:
    """The renderers in the catalog's floor order; a family without one stops the import."""
    branch_renderers = {**FLOOR_RENDERERS, **AGENT_RENDERERS}
    known = {**branch_renderers, **NOTICE_RENDERERS}
    missing = [f.name for f in metrics.FLOOR if f not in known]
    extra = [f.name for f in known if f not in metrics.FLOOR]
    if missing or extra:
        raise RuntimeError(
            f"collector/exposition: no renderer for {missing}, renderers outside "
            f"the catalog's floor families: {extra}"
        )
    return tuple(
        _of_branch(branch_renderers[family])
        if family in branch_renderers
        else _of_notices(NOTICE_RENDERERS[family])
        for family in metrics.FLOOR
    )


RENDER_ORDER: Final = _in_catalog_order()
# Each family's # HELP and # TYPE lines, in the same order.
HEADERS: Final = tuple(family.header.encode() for family in metrics.FLOOR)


def render_branch(labels: Labels, branch: BranchState) -> tuple[bytes, ...]:
    """One text fragment per family (in the catalog's floor order) for one branch;
    ``b""`` for a family the branch has no series of."""
    p = branch_labels(branch.region, branch.branch)
    figures = notice_metrics(branch.notices) if labels.notices else None
    return tuple(render(labels, branch, p, figures).encode() for render in RENDER_ORDER)
