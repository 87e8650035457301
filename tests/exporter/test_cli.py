"""The CLI: progress, the path as the last line, one-line errors, inspect output."""

from __future__ import annotations

import json

from click.testing import CliRunner

from gradcam_serving.cli import cli


def _run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_export_prints_the_version_folder_last(tiny_models, tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("cat\ndog\nfox\nowl\n")
    result = _run("export", tiny_models.hub_classifier, "--output", tmp_path / "models", "--name", "pets",
                  "--labels", labels, "--input-range", "0,1", "--methods", "layercam,gradcam")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines()[-1] == str(tmp_path / "models" / "pets" / "1")
    assert "with layercam, gradcam at c2" in result.stderr
    listed = _run("inspect", tmp_path / "models" / "pets" / "1")
    assert listed.exit_code == 0, listed.output
    assert listed.stdout.strip() == "methods: layercam (cam), gradcam (cam)"  # the export's order: default first
    as_json = _run("inspect", tmp_path / "models" / "pets" / "1", "--json")
    assert json.loads(as_json.stdout) == {"methods": ["layercam", "gradcam"], "default_method": "layercam",
                                          "families": {"layercam": "cam", "gradcam": "cam"}}


def test_unknown_method_fails_with_the_valid_ones(tiny_models, tmp_path):
    result = _run("export", tiny_models.hub_classifier, "--output", tmp_path, "--name", "pets",
                  "--methods", "gradcam,bogus")
    assert result.exit_code == 2  # a usage error, found before TensorFlow is imported
    assert result.stderr.strip().splitlines()[-1] == (
        "Error: Invalid value for '--methods': unknown method(s) 'bogus'; valid methods: "
        "gradcam, gradcampp, hirescam, xgradcam, layercam, eigencam, reciprocam, or 'all'"
    )


def test_export_failure_is_one_line_and_non_zero(tiny_models, tmp_path):
    result = _run("export", tiny_models.hub_classifier, "--output", tmp_path, "--name", "pets", "--layer", "nope")
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: unknown layer 'nope'")
    assert not (tmp_path / "pets" / "1").exists()


def test_wrong_label_count_is_refused(tiny_models, tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("cat\ndog\n")
    result = _run("export", tiny_models.hub_classifier, "--output", tmp_path, "--name", "p", "--labels", labels)
    assert result.exit_code == 1
    assert "got 2 labels for a model with 4 classes" in result.stderr


def test_mean_std_and_range_are_exclusive(tiny_models, tmp_path):
    result = _run("export", tiny_models.hub_classifier, "--output", tmp_path, "--name", "p",
                  "--input-range", "-1,1", "--mean", "1,2,3", "--std", "1,1,1")
    assert result.exit_code != 0
    assert "either --input-range or --mean/--std" in result.output


def test_inspect_json_marks_the_automatic_choice(tiny_models):
    result = _run("inspect", tiny_models.hub_in_keras_savedmodel, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    names = [c["name"] for c in report["candidates"]]
    assert names == ["c1", "bn", "c2"]
    assert report["auto"] == "c2"
    assert [c["auto"] for c in report["candidates"]] == [False, False, True]
    assert report["candidates"][-1]["shape"] == [None, 12, 12, 16]


def test_inspect_table(tiny_models):
    result = _run("inspect", tiny_models.hub_classifier)
    assert result.exit_code == 0, result.output
    row = next(line for line in result.stdout.splitlines() if " c2 " in line)
    assert "auto" in row and "Relu" in row and "Nx12x12x16" in row
