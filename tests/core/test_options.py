"""Load options: validated once, for every surface."""

from __future__ import annotations

import pytest

from llm_desktop.core.options import InvalidOptions, LoadOptions


def test_wire_names_and_automatic_values():
    assert LoadOptions.parse({}) == LoadOptions()
    assert LoadOptions.parse({"n_ctx": "0", "gpu_layers": "-1"}) == LoadOptions()
    parsed = LoadOptions.parse({"n_ctx": "2048", "gpu_layers": 12, "use_mmap": "false"})
    assert parsed == LoadOptions(n_ctx=2048, n_gpu_layers=12, use_mmap=False)
    assert LoadOptions.parse(parsed.to_dict()) == parsed


@pytest.mark.parametrize(
    "values",
    [
        {"n_ctx": "lots"},
        {"n_ctx": -1},
        {"n_ctx": 10**7},
        {"gpu_layers": -2},
        {"gpu_layers": True},
        {"use_mmap": [1]},
    ],
)
def test_bad_values_are_named_errors(values):
    with pytest.raises(InvalidOptions) as caught:
        LoadOptions.parse(values)
    assert next(iter(values)) in str(caught.value)


def test_flags_from_forms_queries_and_json():
    for off in ("0", "false", "no", "off", False, 0):
        assert LoadOptions.parse({"use_mmap": off}).use_mmap is False
    for on in ("1", "true", "yes", True, 1):
        assert LoadOptions.parse({"use_mmap": on}).use_mmap is True


def test_retries_halve_what_ran_out():
    assert LoadOptions().with_smaller_context(4096).n_ctx == 2048
    assert LoadOptions(n_ctx=300).with_smaller_context(4096).n_ctx == 256
    assert LoadOptions().with_fewer_gpu_layers(20).n_gpu_layers == 10
    assert LoadOptions(n_gpu_layers=1).with_fewer_gpu_layers(20).n_gpu_layers == 0
