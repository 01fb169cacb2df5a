"""What a person reads in the desktop window about where models run: the Engines tab's rows and
its add form, each card's source chip, and which of a card's menus a remote model offers.

The window's Engines tab and its cards render these; nothing else words them. The card's own
source words ("lab-gpu", "Connected", the connection line) are the card view's
(`presenter.card_view`); this module only decides how a card shows them. (The page groups its
cards by source through `source_sections`.)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from llm_desktop.core.catalog import ModelEntry
from llm_desktop.core.engine_sources import EngineSource, InvalidSource, name_for_url
from llm_desktop.core.presenter import (
    CONNECTION_LABELS,
    FACTS_SEPARATOR,
    THIS_MACHINE,
    Action,
    CardView,
    connection_line,
    quantize_action,
)
from llm_desktop.core.remote_engine import ConnectionStatus

# A chip's colour by connection state (theme tones); colour is never alone: the word says it.
STATE_TONES = {"connecting": "accent", "connected": "success", "disconnected": "error"}

TAB_TITLE = "Engines"
LIST_TITLE = "Where models run"
LIST_HELP = (
    "This computer loads the models in its folders. A remote engine is llama.cpp's server in "
    "router mode on another machine: its models appear in the Library with its name on each "
    "card, and load there."
)
FORM_TITLE = "Add a remote engine"
FORM_HELP = (
    "On the other machine, start llama.cpp's server in router mode (add --api-key to require "
    "a key), then give its address here:"
)
FORM_COMMAND = "llama-server --models-dir ~/models --host 0.0.0.0 --port 8080"
NAME_LABEL = "Name"
NAME_PLACEHOLDER = "lab-gpu (optional: made from the address)"
NAME_HINT = "Shown on each card of its models: lower-case letters, digits and dashes"
URL_LABEL = "Address"
URL_PLACEHOLDER = "http://10.0.0.5:8080"
URL_HINT = "The router's address: http:// or https://, a host and a port"
KEY_LABEL = "API key"
KEY_PLACEHOLDER = "Only if the router was started with --api-key"
ADD_BUTTON = "Add engine"
ADDING = "Adding…"
SHOW_KEY, HIDE_KEY = "Show", "Hide"
REMOVE_BUTTON = "Remove"
REMOVING = "Removing…"
LOCAL_ADDRESS = "Models in this computer's folders, loaded in model hosts here"


@dataclass(frozen=True)
class SourceChip:
    """Where a card's model runs, as a pill beside its title."""

    text: str  # "lab-gpu · Connected", "This machine"
    tone: str  # a theme tone ("success", "accent", "error"), "" for this machine
    tooltip: str  # the connection line
    accessible_name: str


def source_chip(view: CardView, *, remote_sources: bool) -> SourceChip | None:
    """A remote model's card always says where it runs; this machine's cards say so only
    once a remote engine is set up (with none, every card runs here: the chip would be noise)."""
    if view.source == THIS_MACHINE:
        if not remote_sources:
            return None
        return SourceChip(
            THIS_MACHINE,
            "",
            "Loads in a model host on this computer",
            "Runs on this machine",
        )
    state = view.source_state
    text = FACTS_SEPARATOR.join(part for part in (view.source, state) if part)
    tone = next((STATE_TONES[key] for key, word in CONNECTION_LABELS.items() if word == state), "")
    spoken = f"Runs on {view.source}" + (f": {state.lower()}" if state else "")
    return SourceChip(text, tone, view.source_detail or f"Runs on {view.source}", spoken)


@dataclass(frozen=True)
class CardMenu:
    """What a card offers besides its action buttons."""

    settings: bool  # the load settings (context, GPU layers, mmap, keep-alive)
    quantize: Action | None  # "Quantize to…"


def card_menu(entry: ModelEntry, title: str | None = None) -> CardMenu:
    """A remote model's router loads it with its own settings, and its file is the router's:
    its card offers neither load settings nor a quantized copy."""
    if entry.engine is not None:
        return CardMenu(settings=False, quantize=None)
    return CardMenu(settings=True, quantize=quantize_action(entry, title))


# -- the Engines tab ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceRow:
    """One engine in the Engines tab's list."""

    name: str  # the source's name; "" for this machine
    title: str  # "This machine", "lab-gpu"
    address: str  # "http://10.0.0.5:8080"
    state: str  # "Connected", "Unreachable", "Connecting"; "" for this machine
    tone: str
    line: str  # the connection line, or this machine's models
    removable: bool
    remove_accessible_name: str = ""
    accessible_name: str = ""


def source_rows(
    statuses: Iterable[ConnectionStatus], *, local_models: int, local_loaded: int
) -> list[SourceRow]:
    """This machine first, then each remote engine in the order they were added (the order of
    their cards in the Library)."""
    count = f"{local_models} model{'' if local_models == 1 else 's'}"
    local_line = count + (f", {local_loaded} loaded" if local_loaded else "")
    rows = [
        SourceRow(
            "",
            THIS_MACHINE,
            LOCAL_ADDRESS,
            "",
            "",
            local_line,
            removable=False,
            accessible_name=f"{THIS_MACHINE}: {local_line}",
        )
    ]
    for status in statuses:
        state = CONNECTION_LABELS.get(status.state, status.state)
        line = connection_line(status)
        rows.append(
            SourceRow(
                status.name,
                status.name,
                status.url,
                state,
                STATE_TONES.get(status.state, ""),
                line,
                removable=True,
                remove_accessible_name=f"Remove the engine {status.name}",
                accessible_name=f"Engine {status.name} at {status.url}: {line}",
            )
        )
    return rows


def key_storage_hint(persistent: bool) -> str:
    """Under the key field, before adding: where a key will be kept."""
    if persistent:
        return "The key is kept in the system keyring, never in a file."
    return (
        "No system keyring was found: the key is kept only until llm-desktop quits, and is "
        "asked for again after a restart."
    )


def source_from_form(name: str, url: str) -> EngineSource:
    """The source the add form describes; `InvalidSource` with what to fix. A blank name is
    made from the address ("10-0-0-5-8080")."""
    if not url.strip():
        raise InvalidSource("Give the router's address, such as http://10.0.0.5:8080")
    if not name.strip():
        try:
            name = name_for_url(url)
        except ValueError as exc:
            raise InvalidSource(str(exc)) from None
    return EngineSource.checked(name, url)


def added_message(source: EngineSource, *, key_given: bool, kept: bool, replaced: bool) -> str:
    """After adding: what happened, and where its key is."""
    verb = "Changed" if replaced else "Added"
    text = f"{verb} {source.name}: its models appear in the Library once it answers."
    if not key_given:
        return text
    if kept:
        return f"{text} Its API key is in the system keyring."
    return (
        f"{text} No system keyring took its API key: it is kept until llm-desktop quits, so add "
        "the engine again with its key after a restart."
    )


def add_failure(name: str, error: object) -> str:
    return f"Could not add {name}: {error}"


def removed_message(name: str) -> str:
    return (
        f"Removed {name}: its models are no longer listed here. Models loaded on it stay "
        "loaded there."
    )


def remove_failure(name: str, error: object) -> str:
    return f"Could not remove {name}: {error}"
