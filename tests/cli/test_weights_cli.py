"""``imgcls weights list|download|import`` against a model zoo on 127.0.0.1."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from imgcls_desktop.cli import main
from imgcls_desktop.core.weights import catalog, store_folder
from imgcls_desktop.core.weights.download import partial_file
from tests.weights_fixtures import Route, model_zoo, resnet18_file, sha1_of, zoo_zip

__all__ = ["model_zoo", "resnet18_file"]  # fixtures


@pytest.fixture(autouse=True)
def empty_mxnet_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MXNET_HOME", str(tmp_path / "mxnet"))


def listed(capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    """``imgcls weights list``'s rows by backbone."""
    assert main(["weights", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["BACKBONE", "STATE", "SIZE", "SOURCE"]
    return {line.split()[0]: line for line in lines[1:6]}


def test_import_then_list(resnet18_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert "not on disk" in listed(capsys)["resnet18_v1"]
    assert main(["weights", "import", str(resnet18_file)]) == 0
    assert f"Imported resnet18_v1 (46.8 MB) to {store_folder()}" in capsys.readouterr().out
    row = listed(capsys)["resnet18_v1"]
    assert row.split()[1:5] == ["on", "disk", "46.8", "MB"]
    assert row.endswith(f"imported from {resnet18_file}")
    assert "not on disk" in listed(capsys)["resnet34_v1"]


def test_download_then_nothing_to_do(
    model_zoo, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    content = b"weights bytes" * 1000
    table = {"resnet34_v1": sha1_of(content)}
    monkeypatch.setattr(catalog, "mxnet_checksums", lambda: table)
    file_name = f"resnet34_v1-{table['resnet34_v1'][:8]}"
    url = model_zoo.serve(file_name, Route(zoo_zip(f"{file_name}.params", content)))
    assert main(["weights", "download", "resnet34_v1", "--repo", model_zoo.url]) == 0
    output = capsys.readouterr().out
    assert f"Downloading resnet34_v1 from {url}" in output
    assert "Saved resnet34_v1 (0.0 MB, SHA-1 verified)" in output
    assert listed(capsys)["resnet34_v1"].endswith(f"downloaded from {url}")
    assert main(["weights", "download", "resnet34"]) == 0
    assert "resnet34_v1 is already on this computer" in capsys.readouterr().out
    assert len(model_zoo.requests) == 1


def test_ctrl_c_stops_a_download_and_the_next_call_resumes(
    model_zoo, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    content = bytes(range(256)) * 4000
    table = {"resnet18_v1": sha1_of(content)}
    monkeypatch.setattr(catalog, "mxnet_checksums", lambda: table)
    file_name = f"resnet18_v1-{table['resnet18_v1'][:8]}"
    body = zoo_zip(f"{file_name}.params", content)
    model_zoo.serve(file_name, Route(body, cut_at=600_000, interrupt=True))
    # Python's own Ctrl-C handler, as in a terminal (a shell's background job ignores SIGINT)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        code = main(["weights", "download", "resnet18_v1"])
    finally:
        signal.signal(signal.SIGINT, previous)
    assert code == 130
    assert "Stopped; run `imgcls weights download resnet18_v1` again to resume" in (
        capsys.readouterr().out
    )
    assert not (store_folder() / "resnet18_v1.params").exists()
    kept = partial_file(catalog.backbone_named("resnet18_v1"), table=table)
    resumed_from = kept.stat().st_size if kept.exists() else 0
    model_zoo.serve(file_name, Route(body))
    assert main(["weights", "download", "resnet18_v1"]) == 0
    assert (store_folder() / "resnet18_v1.params").read_bytes() == content
    assert model_zoo.requests[-1][1] == (f"bytes={resumed_from}-" if resumed_from else None)
    assert not kept.exists()


def test_a_refused_download_is_one_line(model_zoo, capsys: pytest.CaptureFixture[str]) -> None:
    file_name = f"resnet50_v1-{catalog.mxnet_checksums()['resnet50_v1'][:8]}"
    model_zoo.serve(file_name, Route(zoo_zip(f"{file_name}.params", b"not the real weights")))
    assert main(["weights", "download", "resnet50_v1"]) == 1  # $MXNET_GLUON_REPO: the zoo
    error = capsys.readouterr().err
    assert "has SHA-1" in error
    assert error.count("\n") == 1  # one line, no traceback
    assert list(store_folder().iterdir()) == []


def test_user_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["weights", "download", "resnet200_v1"]) == 1
    assert "no backbone called 'resnet200_v1'" in capsys.readouterr().err
    assert main(["weights", "import", str(tmp_path / "nowhere.params")]) == 1
    assert "does not exist" in capsys.readouterr().err
