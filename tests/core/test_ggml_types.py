"""The header reader's type tables are the `gguf` package's, without importing it at start."""

from __future__ import annotations

import subprocess
import sys

import gguf

from llm_desktop.core.ggml_types import FILE_TYPE_NAMES, QUANT_SIZES


def test_quant_sizes_are_the_gguf_packages():
    assert {int(k): tuple(v) for k, v in gguf.GGML_QUANT_SIZES.items()} == QUANT_SIZES


def test_file_type_names_are_the_gguf_packages():
    assert {int(t): t.name for t in gguf.LlamaFileType} == FILE_TYPE_NAMES


def test_the_engine_and_catalog_start_without_numpy():
    """numpy (through gguf) costs about 0.2 s; the app, the CLI and hosts need neither."""
    probe = (
        "import sys; import llm_desktop.core.engine, llm_desktop.core.catalog, "
        "llm_desktop.core.presenter, llm_desktop.cli; print('numpy' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
