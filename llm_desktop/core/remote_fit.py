"""Will it fit? answered for a model still on the hub, before a byte of its weights is fetched.

The remote file's GGUF header is read with HTTP Range requests by the same parser the catalog
uses for local files, and judged by the same rule (`library.entry_verdict`), so the verdict a
person sees before downloading is the one the card shows after.
"""

from __future__ import annotations

from llm_desktop.core import hardware, hf_hub
from llm_desktop.core.fit import FitVerdict
from llm_desktop.core.gguf_remote import remote_entry
from llm_desktop.core.library import entry_verdict


def remote_fit(
    model: hf_hub.RemoteModel,
    snapshot: hardware.HardwareSnapshot | None = None,
    n_ctx: int | None = None,
) -> FitVerdict:
    """The fit verdict of `model` on this machine; raises `ModelError` when its header cannot
    be read (not found, unauthorized, network, not a GGUF)."""
    url = hf_hub.file_url(model.repo_id, model.first.path, model.commit)
    entry, _header = remote_entry(
        url,
        display_name=model.name,
        file_size=model.size,
        parts=tuple(file.path for file in model.files),
        headers=hf_hub.auth_headers(),
    )
    verdict = entry_verdict(entry, snapshot or hardware.snapshot(), n_ctx)
    if verdict is None:
        from llm_desktop.core.events import ErrorKind, ModelError

        raise ModelError(ErrorKind.INVALID_MODEL, entry.error or "The header could not be read")
    return verdict
