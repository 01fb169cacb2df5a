"""Grouping what the walk found into models: the parts of a split model become one model, and a
file reached by two paths (a symlink and its target, two overlapping folders) is one model.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from llm_desktop.core.catalog_walk import Found
from llm_desktop.core.model_names import SPLIT_NAME, path_key


@dataclass
class GroupedModel:
    """Files grouped into one model; `first` is None when part 1 of a split model is missing."""

    path: str
    real_path: str
    source: str
    first: Found | None
    parts: list[Found] = field(default_factory=list)
    missing_parts: list[int] = field(default_factory=list)
    part_count: int = 1


def group(found: list[Found]) -> list[GroupedModel]:
    """Split parts joined into one model each, then one model per real path, first seen wins."""
    groups: dict[tuple[str, ...], list[tuple[int, Found]]] = {}
    for item in found:
        split = SPLIT_NAME.match(os.path.basename(item.path)) if item.ollama_name is None else None
        index, count = (int(split["index"]), int(split["count"])) if split else (0, 0)
        if split and 1 <= index <= count:
            directory = os.path.dirname(item.path)
            key = ("split", path_key(directory), split["base"], str(count))
            groups.setdefault(key, []).append((index, item))
        else:
            key = ("file", path_key(item.real_path))
            kept = groups.get(key)
            # Reached both directly and through a link: list it where it really is.
            if kept is None or (kept[0][1].path != item.real_path == item.path):
                groups[key] = [(0, item)]

    models: list[GroupedModel] = []
    seen: set[str] = set()
    for key, members in groups.items():
        if key[0] == "file":
            (_, item), *_ = members
            model = GroupedModel(item.path, item.real_path, item.source, item, [item])
        else:
            model = _split_model(members)
        if path_key(model.real_path) in seen:
            continue
        seen.add(path_key(model.real_path))
        models.append(model)
    return models


def _split_model(members: list[tuple[int, Found]]) -> GroupedModel:
    by_index: dict[int, Found] = {}
    for index, item in members:
        by_index.setdefault(index, item)
    any_part = next(iter(by_index.values()))
    split = SPLIT_NAME.match(os.path.basename(any_part.path))
    assert split is not None  # grouped by this very match
    count = int(split["count"])
    parts = [by_index[index] for index in sorted(by_index)]
    missing = [index for index in range(1, count + 1) if index not in by_index]
    first = by_index.get(1)
    if first is not None:
        path, real_path = first.path, first.real_path
    else:
        first_name = f"{split['base']}-{1:05d}-of-{count:05d}{split['ext']}"
        path = os.path.join(os.path.dirname(any_part.path), first_name)
        real_path = os.path.join(os.path.realpath(os.path.dirname(any_part.path)), first_name)
    return GroupedModel(path, real_path, any_part.source, first, parts, missing, count)
