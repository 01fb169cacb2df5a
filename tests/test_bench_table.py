"""The README's performance table is what `python -m bench.table` makes of bench/results.json."""

from __future__ import annotations

import copy
import difflib
import json
from pathlib import Path

import pytest

from bench import table

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results.json"
README = ROOT / "README.md"


@pytest.fixture(scope="module")
def results() -> dict:
    return json.loads(RESULTS.read_text())


def test_readme_table_is_generated_from_the_committed_results(results):
    readme = README.read_text()
    wanted = table.expected_readme(readme, results)
    diff = "".join(
        difflib.unified_diff(
            readme.splitlines(keepends=True), wanted.splitlines(keepends=True), "README.md", "want"
        )
    )
    assert readme == wanted, f"run `python -m bench.table` to regenerate:\n{diff}"


def test_every_section_of_the_results_has_rows(results):
    rows, notes = table.build(results)
    ids = [row.id for row in rows]
    assert len(ids) == len(set(ids))
    assert {
        "load_mmap",
        "throughput.first_bytes",
        "catalog.first_scan",
        "large_vocab",
        "transfers.download",
        "transfers.resume",
        "transfers.sha256",
        "transfers.quantize_q8_0",
        "serving.throughput",
        "serving.first_token",
        "serving.first_token_with_load",
        "serving.concurrent",
        "serving.turns",
    } <= set(ids)
    assert any(row_id.startswith("remote.load.") for row_id in ids)
    assert any(row_id.startswith("remote.progress.") for row_id in ids)
    assert len(notes) == len(table.SECTIONS)


def test_check_mode_fails_when_a_figure_was_typed_over(tmp_path, results, capsys):
    readme = tmp_path / "README.md"
    data = tmp_path / "results.json"
    data.write_text(json.dumps(results))
    readme.write_text(f"# x\n\n{table.START}\nold\n{table.END}\n\ntail\n")
    args = ["--results", str(data), "--readme", str(readme)]

    assert table.main([*args, "--check"]) == 1
    assert table.main(args) == 0  # rewrites
    assert table.main([*args, "--check"]) == 0
    text = readme.read_text()
    assert text.startswith("# x\n\n") and text.endswith(f"{table.END}\n\ntail\n")

    edited = results["load_mmap"]["ours_median_s"] + 1
    figure = f"{results['load_mmap']['ours_median_s']:.3f} s"
    assert figure in text
    readme.write_text(text.replace(figure, f"{edited:.3f} s", 1))
    capsys.readouterr()
    assert table.main([*args, "--check"]) == 1
    assert "differs" in capsys.readouterr().out


def test_targets_and_an_earlier_run_add_columns(results):
    plain = table.render(results | {"targets": {}, "before": None})
    assert "| Target" not in plain and "Before" not in plain

    before = copy.deepcopy(results)
    before["load_mmap"]["ours_median_s"] = 9.876
    before.setdefault("run", {})["commit"] = "abc1234"
    before.pop("catalog")  # an earlier run without a section: its cells stay empty
    text = table.render(results | {"targets": {"load_mmap": "≤ ×1.05"}, "before": before})
    header = next(line for line in text.splitlines() if line.startswith("| Measurement"))
    assert header.endswith("| Target | Before (abc1234) |")
    (load_row,) = [
        line for line in text.splitlines() if line.startswith("| Load, generated model, mmap on")
    ]
    assert "≤ ×1.05" in load_row and "9.876 s" in load_row
    (catalog_row,) = [line for line in text.splitlines() if "first scan" in line]
    assert catalog_row.endswith("| — | — |")


@pytest.mark.parametrize("key", ["transfers", "serving", "remote"])
def test_a_section_measured_alone_says_when_and_where(results, key):
    alone = copy.deepcopy(results)
    alone[key]["run"] = {
        "date": "2026-01-02",
        "commit": "abc1234",
        "wall_s": 100.0,
        "load_average_1m_start": 0.5,
        "load_average_1m_end": 0.7,
        "alone": True,
    }
    alone[key]["machine"] = results["machine"]
    command = f"(`python -m bench --only {key}`"
    text = table.render(alone)
    assert f"measured in a run of their own {command}, 2026-01-02" in text
    assert f"on another machine {command}" not in text
    alone[key]["machine"] = results["machine"] | {"cpus": 64}
    assert f"run of their own on another machine {command}" in table.render(alone)

    alone[key]["run"]["alone"] = False  # measured with the rest: nothing to add
    assert command not in table.render(alone)


@pytest.mark.parametrize("key", ["transfers", "serving", "remote"])
def test_only_one_section_keeps_the_other_sections_figures(tmp_path, results, monkeypatch, key):
    import bench.__main__ as bench_main

    output = tmp_path / "results.json"
    output.write_text(json.dumps(results))
    fresh = copy.deepcopy(results[key])
    fresh["fresh"] = 123.4
    monkeypatch.setattr(bench_main, f"bench_{key}_section", lambda *_a, **_k: fresh)
    monkeypatch.setattr(bench_main, "machine", lambda: pytest.fail("the machine is not re-read"))

    assert bench_main.main(["--only", key, "--output", str(output)]) == 0
    merged = json.loads(output.read_text())
    assert merged[key]["fresh"] == 123.4
    for other in set(results) - {key, "targets"}:
        assert merged[other] == results[other], other


def test_serving_rows_show_the_lone_clients_place_and_the_ratios(results):
    serving = copy.deepcopy(results["serving"])
    serving["turns"]["lone_place"] = [2, 11]
    serving["throughput"]["ratio"] = 0.5
    text = table.render(results | {"serving": serving})
    (row,) = [line for line in text.splitlines() if line.startswith("| API, one client's")]
    assert f"lone served 2nd, 11th of {serving['turns']['burst'] + 1}" in row
    (row,) = [line for line in text.splitlines() if line.startswith("| API completion")]
    assert "| ×0.5;" in row


def test_remote_rows_one_per_model_each_with_its_measured_peer(results):
    rows, _ = table.build(results)
    remote = results["remote"]
    loads = [row for row in rows if row.id.startswith("remote.load.")]
    progress = [row for row in rows if row.id.startswith("remote.progress.")]
    assert len(loads) == len(remote["load"]) >= 1
    assert len(progress) == len(remote["progress"]) == len(remote["load"])
    for row, load in zip(loads, remote["load"], strict=True):
        assert f"({load['model_mb']} MB" in row.label
        assert row.peer.startswith("curl p50 ")
        assert f"{load['difference_p50_ms']:+.1f} ms" in row.comparison
    for row, figures in zip(progress, remote["progress"], strict=True):
        assert f"({figures['model_mb']} MB)" in row.label
        assert "mmap off" in row.ours and "mmap on" in row.ours
        assert row.peer.startswith("router: ")


def test_remote_note_counts_forced_unloads_and_a_cold_page_cache(results):
    remote = copy.deepcopy(results["remote"])
    remote["load"][0]["unloads_nonzero_exit"] = [{"exit_code": 1, "card": "failed"}]
    remote["load"][0]["page_cache_resident_min"] = 0.5
    text = table.render(results | {"remote": remote})
    unloads = sum(load["unloads"] for load in remote["load"])
    assert f"1 of {unloads} unloads ended with a non-zero exit code" in text
    assert "smallest resident share before a timed load 50%" in text


def test_markers_are_required():
    with pytest.raises(ValueError, match="bench-table"):
        table.splice("no markers here", "x")
