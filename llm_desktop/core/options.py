"""Load options: one type, validated in one place, for the card, the CLI, the server and the page.

Every surface hands `LoadOptions.parse` what a person typed or a request carried (a mapping of
the wire names below); nothing else interprets "0 means the model's own context" or "-1 means
automatic". The wire form (`to_dict`) is what the page sends back and what settings store.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

MAX_CONTEXT = 1_048_576
MAX_GPU_LAYERS = 4096
MIN_RETRY_CONTEXT = 256
_FALSE_WORDS = frozenset({"0", "false", "no", "off", ""})


class InvalidOptions(ValueError):
    """Options a person or a request gave that cannot be used; the message says which."""


@dataclass(frozen=True)
class LoadOptions:
    n_ctx: int | None = None  # None: fit.default_context of the model's training context
    n_gpu_layers: int | None = None  # None: as many as the fit estimate allows
    use_mmap: bool = True
    force: bool = False  # load even when the fit estimate says it cannot fit
    n_threads: int | None = None

    @classmethod
    def parse(cls, values: Mapping[str, Any]) -> LoadOptions:
        """Options from wire names (`n_ctx`, `gpu_layers`, `use_mmap`, `force`), as strings
        (a query or a form) or JSON values. `n_ctx` 0 and `gpu_layers` -1 mean automatic."""
        n_ctx = _integer(values.get("n_ctx"), "n_ctx", 0, MAX_CONTEXT)
        gpu_layers = _integer(values.get("gpu_layers"), "gpu_layers", -1, MAX_GPU_LAYERS)
        return cls(
            n_ctx=n_ctx or None,
            n_gpu_layers=None if gpu_layers is None or gpu_layers < 0 else gpu_layers,
            use_mmap=_flag(values.get("use_mmap"), "use_mmap", default=True),
            force=_flag(values.get("force"), "force", default=False),
        )

    def to_dict(self) -> dict[str, Any]:
        """The wire form `parse` reads back: automatic values as 0 and -1."""
        return {
            "n_ctx": self.n_ctx or 0,
            "gpu_layers": -1 if self.n_gpu_layers is None else self.n_gpu_layers,
            "use_mmap": self.use_mmap,
        }

    def with_smaller_context(self, current_context: int) -> LoadOptions:
        """Half the KV cache: what an out-of-RAM failure calls for."""
        return replace(self, n_ctx=max(MIN_RETRY_CONTEXT, (self.n_ctx or current_context) // 2))

    def with_fewer_gpu_layers(self, current_layers: int) -> LoadOptions:
        """Half the offloaded layers: what an out-of-GPU-memory failure calls for."""
        layers = self.n_gpu_layers if self.n_gpu_layers is not None else current_layers
        return replace(self, n_gpu_layers=max(0, layers // 2))


def _integer(value: Any, name: str, low: int, high: int) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise InvalidOptions(f"{name} must be a whole number")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise InvalidOptions(f"{name} must be a whole number") from None
    if not low <= number <= high:
        raise InvalidOptions(f"{name} must be between {low} and {high}")
    return number


def _flag(value: Any, name: str, *, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, int | str):
        return str(value).strip().lower() not in _FALSE_WORDS
    raise InvalidOptions(f"{name} must be true or false")
