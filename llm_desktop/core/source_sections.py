"""Where the models run, as the page groups them: this machine, then each remote engine.

`source_sections` decides the groups of the models list from the card views and the remote
engines' connections: each group's heading (the source's name), its connection line (the
presenter's `connection_line`), whether the heading shows (not while this machine is the only
source: the page then looks as it did before remote engines) and whether the group shows at all
(this machine's, with no model of its own, gives way to the remote ones). `engine_view` is a
remote engine's entry of `GET /api/engines`. Qt-free and serialisable, like the presenter: the
server renders the sections, the page binds them, and neither decides anything.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from llm_desktop.core.presenter import (
    CONNECTION_LABELS,
    FACTS_SEPARATOR,
    THIS_MACHINE,
    CardView,
    connection_line,
)
from llm_desktop.core.remote_engine import ConnectionStatus


@dataclass(frozen=True)
class SourceSection:
    """One group of the models list: the cards whose `CardView.source` is `source`."""

    source: str  # "This machine", "lab-gpu": what the cards of this group say as their source
    title: str  # the group's heading
    state: str  # "" for this machine; "connecting", "connected" or "disconnected"
    state_label: str  # that state in a word ("Unreachable"), "" for this machine
    line: str  # the connection line under the heading ("" for this machine)
    heading: bool  # False: the cards show without a heading (this machine is the only source)
    hidden: bool  # True: nothing of it to show (this machine, with remote models only)
    # What a screen reader hears when the engine becomes reachable or unreachable; "" while it
    # is connecting (each attempt to reach an unreachable engine would be heard otherwise).
    announcement: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def source_sections(
    views: Iterable[CardView], connections: Iterable[ConnectionStatus]
) -> list[SourceSection]:
    """This machine's group first, then each remote engine's by name (with or without models
    listed: an engine that is unreachable or still connecting is shown with its line)."""
    views = list(views)
    statuses = {status.name: status for status in connections}
    # A card of an engine no longer followed (its source was removed) keeps a group.
    remote_names = sorted(
        set(statuses) | {view.source for view in views if view.source != THIS_MACHINE}
    )
    local_models = any(view.source == THIS_MACHINE for view in views)
    sections = [
        SourceSection(
            source=THIS_MACHINE,
            title=THIS_MACHINE,
            state="",
            state_label="",
            line="",
            heading=bool(remote_names),
            hidden=bool(remote_names) and not local_models,
            announcement="",
        )
    ]
    for name in remote_names:
        status = statuses.get(name)
        line = connection_line(status)
        sections.append(
            SourceSection(
                source=name,
                title=name,
                state=status.state if status is not None else "",
                state_label=CONNECTION_LABELS.get(status.state, "") if status else "",
                line=line,
                heading=True,
                hidden=False,
                announcement=FACTS_SEPARATOR.join((name, line))
                if status is not None and status.state != "connecting"
                else "",
            )
        )
    return sections


def engine_view(status: ConnectionStatus) -> dict[str, Any]:
    """A remote engine as `GET /api/engines` lists it: its status, and its line in words."""
    return {**status.to_dict(), "line": connection_line(status)}
