"""The backbone weights store: catalog, listing, checks, import, and downloads from a model
zoo on 127.0.0.1 (right and wrong checksums, truncated bodies, HTML pages, dropped
connections, resume with and without Range support, cancel)."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from imgcls_desktop.core.jobs import Cancelled
from imgcls_desktop.core.runtime import mxnet
from imgcls_desktop.core.training.network import build_network
from imgcls_desktop.core.training.pretrained import find_pretrained_weights, load_pretrained
from imgcls_desktop.core.weights import (
    BACKBONES,
    Backbone,
    WeightsError,
    backbone_named,
    backbone_states,
    installed_depths,
    store_folder,
)
from imgcls_desktop.core.weights.checks import expected_shapes, recognise, verify
from imgcls_desktop.core.weights.download import (
    DownloadError,
    download_backbone,
    download_url,
    partial_file,
    repository_url,
)
from imgcls_desktop.core.weights.importing import import_weights
from imgcls_desktop.core.weights.params_index import UnreadableIndex, array_shapes
from tests.weights_fixtures import (
    Route,
    model_zoo,
    resnet18_file,
    sha1_of,
    zoo_zip,
)

__all__ = ["model_zoo", "resnet18_file"]  # fixtures

RESNET18 = backbone_named("resnet18_v1")
PAYLOAD = os.urandom(700_000)  # several download chunks; not weights (downloads check SHA-1)
TABLE = {"resnet18_v1": sha1_of(PAYLOAD)}
FILE_NAME = f"resnet18_v1-{TABLE['resnet18_v1'][:8]}"


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty MXNet model cache of our own."""
    monkeypatch.setenv("MXNET_HOME", str(tmp_path / "mxnet"))
    folder = tmp_path / "mxnet" / "models"
    folder.mkdir(parents=True)
    return folder


def store_contents() -> list[str]:
    folder = store_folder()
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


# The catalog --------------------------------------------------------------------------------


def test_the_catalog_is_sagemakers_depths_with_mxnets_names_and_checksums() -> None:
    assert [b.name for b in BACKBONES] == [f"resnet{d}_v1" for d in (18, 34, 50, 101, 152)]
    assert backbone_named("resnet34") == backbone_named("34") == backbone_named("ResNet34_v1")
    assert RESNET18.sha1() == mxnet().gluon.model_zoo.model_store._model_sha1["resnet18_v1"]
    assert RESNET18.zoo_file_name() == "resnet18_v1-a0666292"
    assert RESNET18.zoo_file_name(TABLE) == FILE_NAME
    with pytest.raises(WeightsError, match="choose one of resnet18_v1, resnet34_v1"):
        backbone_named("resnet200_v1")


@pytest.mark.parametrize("backbone", BACKBONES, ids=lambda backbone: backbone.name)
def test_the_sizes_announced_are_the_networks(backbone: Backbone) -> None:
    features = sum(math.prod(shape) for shape in expected_shapes(backbone.depth).values())
    last_channels = 512 if backbone.depth < 50 else 2048
    output = last_channels * 1000 + 1000  # the model zoo's ImageNet head
    assert backbone.approximate_megabytes == pytest.approx((features + output) * 4 / 1e6, abs=1)


def test_downloads_come_from_where_gluon_fetches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MXNET_GLUON_REPO", raising=False)
    store = mxnet().gluon.model_zoo.model_store
    assert repository_url() == store.apache_repo_url
    assert download_url(RESNET18) == store._url_format.format(
        repo_url=store.apache_repo_url, file_name="resnet18_v1-a0666292"
    )
    monkeypatch.setenv("MXNET_GLUON_REPO", "http://mirror.example/zoo")
    assert repository_url() == "http://mirror.example/zoo/"
    assert repository_url("https://other.example/") == "https://other.example/"
    with pytest.raises(DownloadError, match="not an http"):
        repository_url("ftp://old.example/")


# Listing ------------------------------------------------------------------------------------


def test_lists_the_store_and_mxnets_cache_by_file_names(cache: Path) -> None:
    assert installed_depths() == []
    (cache / "resnet34_v1-48216ba9.params").write_bytes(b"x" * 10)
    (cache / "resnet50_v1.params").write_bytes(b"")
    (cache / "resnet101_v2-18e93e4f.params").write_bytes(b"")  # v2: not ours
    store_folder().mkdir(parents=True)
    (store_folder() / "resnet152_v1.params").write_bytes(b"y" * 3)
    assert installed_depths() == [34, 50, 152]
    states = {state.backbone.depth: state for state in backbone_states()}
    assert not states[18].on_disk
    assert states[34].size == 10
    assert "MXNet's model cache" in states[34].source
    assert states[152].source == "placed by hand (no record)"


def test_listing_does_not_import_mxnet(cache: Path) -> None:
    code = (
        "import sys\n"
        "from imgcls_desktop.core.weights import installed_depths, backbone_states\n"
        "installed_depths(); backbone_states()\n"
        "assert 'mxnet' not in sys.modules, 'mxnet imported'\n"
    )
    root = Path(__file__).resolve().parents[2]
    environment = {**os.environ, "PYTHONPATH": str(root)}
    subprocess.run([sys.executable, "-c", code], check=True, env=environment, cwd=root)


def test_pretrained_weights_are_found_in_the_store_first(cache: Path) -> None:
    (cache / "resnet18_v1-a0666292.params").write_bytes(b"")
    assert find_pretrained_weights(18) == cache / "resnet18_v1-a0666292.params"
    store_folder().mkdir(parents=True)
    (store_folder() / "resnet18_v1.params").write_bytes(b"")
    assert find_pretrained_weights(18) == store_folder() / "resnet18_v1.params"


# Checks -------------------------------------------------------------------------------------


def test_a_real_backbone_is_recognised_and_verified(resnet18_file: Path) -> None:
    assert recognise(resnet18_file) == RESNET18
    verify(resnet18_file, 18)
    with pytest.raises(
        WeightsError, match=r"not ResNet-34 v1's weights: it has no 'features\.4\.2\."
    ):
        verify(resnet18_file, 34)


def test_files_that_are_not_backbones_are_refused(resnet18_file: Path, tmp_path: Path) -> None:
    mx = mxnet()
    garbage = tmp_path / "garbage.params"
    garbage.write_bytes(b"not an MXNet file")
    with pytest.raises(WeightsError, match=r"garbage\.params is not an MXNet parameters file"):
        recognise(garbage)
    head_only = tmp_path / "head.params"
    mx.nd.save(str(head_only), {"output.weight": mx.nd.zeros((2, 3))})
    with pytest.raises(WeightsError, match="no features"):
        recognise(head_only)
    cifar = tmp_path / "cifar.params"
    net = build_network(20, 2, (3, 32, 32))
    net.initialize()
    net(mx.nd.zeros((1, 3, 32, 32)))
    net.save_parameters(str(cifar))
    with pytest.raises(WeightsError, match="fit none of them"):
        recognise(cifar)
    with pytest.raises(WeightsError, match="named ResNet-34 but holds ResNet-18"):
        recognise(resnet18_file, "resnet34_v1.params")


def test_the_index_of_a_params_file_is_read_without_its_data(
    resnet18_file: Path, tmp_path: Path
) -> None:
    mx = mxnet()
    expected = {key: array.shape for key, array in mx.nd.load(str(resnet18_file)).items()}
    assert array_shapes(resnet18_file) == expected
    mixed = tmp_path / "mixed.params"
    arrays = {
        "half": mx.nd.zeros((3, 5), dtype="float16"),
        "long": mx.nd.zeros((7,), dtype="int64"),
        "bytes": mx.nd.zeros((2, 2, 2), dtype="uint8"),
        "double": mx.nd.zeros((1, 4), dtype="float64"),
    }
    mx.nd.save(str(mixed), arrays)
    assert array_shapes(mixed) == {key: array.shape for key, array in arrays.items()}
    cut = tmp_path / "cut.params"
    cut.write_bytes(resnet18_file.read_bytes()[:-3000])
    with pytest.raises(UnreadableIndex):
        array_shapes(cut)
    with pytest.raises(WeightsError, match="not an MXNet parameters file"):
        recognise(cut)


# Import -------------------------------------------------------------------------------------


def test_imports_a_params_file_with_its_source(resnet18_file: Path, cache: Path) -> None:
    reports: list[tuple[int, int]] = []
    state = import_weights(resnet18_file, progress=lambda d, t: reports.append((d, t)))
    assert state.backbone == RESNET18
    assert state.path == store_folder() / "resnet18_v1.params"
    assert state.path.read_bytes() == resnet18_file.read_bytes()
    assert state.source == f"imported from {resnet18_file}"
    record = json.loads((store_folder() / "resnet18_v1.json").read_text())
    assert record["sha1"] == sha1_of(resnet18_file.read_bytes())
    assert reports[-1] == (state.size, state.size)
    assert store_contents() == ["resnet18_v1.json", "resnet18_v1.params"]
    assert installed_depths() == [18]
    net = build_network(18, 3, (3, 32, 32))
    net.initialize()
    load_pretrained(net, find_pretrained_weights(18))


def test_imports_the_model_zoos_zip_and_a_folder(resnet18_file: Path, tmp_path: Path) -> None:
    archive = tmp_path / "resnet18_v1-a0666292.zip"
    archive.write_bytes(zoo_zip("resnet18_v1-a0666292.params", resnet18_file.read_bytes()))
    state = import_weights(archive)
    assert state.backbone == RESNET18
    assert "resnet18_v1-a0666292.params" in state.source
    folder = tmp_path / "copied"
    folder.mkdir()
    shutil.copy(resnet18_file, folder / "weights.params")
    assert import_weights(folder).source == f"imported from {folder / 'weights.params'}"


def test_an_import_removes_only_stale_leftovers(resnet18_file: Path) -> None:
    store_folder().mkdir(parents=True)
    stale = store_folder() / ".incoming.params.0123abcd.tmp"
    fresh = store_folder() / ".incoming.params.4567cdef.tmp"  # another process writing
    for leftover in (stale, fresh):
        leftover.write_bytes(b"half")
    os.utime(stale, (0, 0))
    import_weights(resnet18_file)
    assert not stale.exists() and fresh.exists()


def test_refused_imports_leave_nothing_behind(tmp_path: Path) -> None:
    garbage = tmp_path / "resnet18_v1.params"
    garbage.write_bytes(b"\0" * 1000)
    with pytest.raises(WeightsError, match="not an MXNet parameters file"):
        import_weights(garbage)
    assert store_contents() == []
    crowded = tmp_path / "crowded.zip"
    crowded.write_bytes(zoo_zip("a.params", b"", ("b.params", b"")))
    with pytest.raises(WeightsError, match="it holds 2 among 2 files"):
        import_weights(crowded)
    with pytest.raises(WeightsError, match="holds 2 weights files"):
        import_weights(tmp_path)
    with pytest.raises(WeightsError, match="does not exist"):
        import_weights(tmp_path / "nowhere")
    assert store_contents() == []


# Download -----------------------------------------------------------------------------------


def test_downloads_verifies_and_places_a_real_backbone(
    model_zoo, resnet18_file: Path, cache: Path
) -> None:
    content = resnet18_file.read_bytes()
    table = {"resnet18_v1": sha1_of(content)}
    file_name = RESNET18.zoo_file_name(table)
    url = model_zoo.serve(file_name, Route(zoo_zip(f"{file_name}.params", content)))
    reports: list[tuple[int, int]] = []
    state = download_backbone(RESNET18, table=table, progress=lambda d, t: reports.append((d, t)))
    assert state.path == store_folder() / "resnet18_v1.params"
    assert state.path.read_bytes() == content
    assert state.source == f"downloaded from {url}"
    assert store_contents() == ["resnet18_v1.json", "resnet18_v1.params"]
    assert [done for done, _ in reports] == sorted(done for done, _ in reports)
    assert reports[-1][0] == reports[-1][1] > len(content)
    assert recognise(find_pretrained_weights(18)) == RESNET18


@pytest.mark.parametrize(
    ("route", "reason"),
    [
        (Route(zoo_zip(f"{FILE_NAME}.params", b"other bytes")), "has SHA-1 .*, not the model zoo"),
        (
            Route(b"<html>Access Denied</html>", "text/html; charset=utf-8"),
            "answered with a web page",
        ),
        (Route(b"<html>Forbidden</html>", "text/html", status=403), "answered 403"),
        (Route(b"PK but not a zip at all"), "is not the model zoo's zip"),
        (Route(zoo_zip("other.params", PAYLOAD)), f"holds no {FILE_NAME}.params"),
        (
            Route(zoo_zip(f"{FILE_NAME}.params", PAYLOAD, *((f"{n}", b"") for n in range(16)))),
            "holds 17 files",
        ),
    ],
)
def test_wrong_answers_are_refused_and_leave_nothing(model_zoo, route: Route, reason: str) -> None:
    model_zoo.serve(FILE_NAME, route)
    with pytest.raises(DownloadError, match=reason):
        download_backbone(RESNET18, table=TABLE)
    assert store_contents() == []


def test_a_missing_file_is_refused(model_zoo) -> None:
    with pytest.raises(DownloadError, match="answered 404"):
        download_backbone(RESNET18, table=TABLE)
    assert store_contents() == []


@pytest.mark.parametrize("ranges", [True, False])
def test_a_truncated_download_resumes(model_zoo, ranges: bool) -> None:
    body = zoo_zip(f"{FILE_NAME}.params", PAYLOAD)
    route = model_zoo.serve(FILE_NAME, Route(body, cut_at=300_000, ranges=ranges))
    with pytest.raises(DownloadError, match=r"stopped after 0\.3 MB of 0\.7 MB: run the download"):
        download_backbone(RESNET18, table=TABLE)
    part = partial_file(RESNET18, table=TABLE)
    assert part.stat().st_size == 300_000
    assert store_contents() == [part.name]
    model_zoo.routes[route.removeprefix(model_zoo.url[:-1])].cut_at = None
    state = download_backbone(RESNET18, table=TABLE)
    assert state.path.read_bytes() == PAYLOAD
    assert model_zoo.requests[-1][1] == "bytes=300000-"
    assert store_contents() == ["resnet18_v1.json", "resnet18_v1.params"]


def test_a_dropped_connection_keeps_what_arrived(model_zoo) -> None:
    body = zoo_zip(f"{FILE_NAME}.params", PAYLOAD)
    model_zoo.serve(FILE_NAME, Route(body, cut_at=300_000, reset=True))
    with pytest.raises(DownloadError, match=r"connection dropped after .*run the download again"):
        download_backbone(RESNET18, table=TABLE, progress=lambda d, t: model_zoo.reset_when.set())
    assert list(store_folder().glob("*.params")) == []


def test_a_cancelled_download_resumes(model_zoo) -> None:
    body = zoo_zip(f"{FILE_NAME}.params", PAYLOAD)
    model_zoo.serve(FILE_NAME, Route(body))
    cancel = threading.Event()

    def cancel_after_a_chunk(done: int, total: int) -> None:
        if done > 0:
            cancel.set()

    with pytest.raises(Cancelled):
        download_backbone(RESNET18, table=TABLE, progress=cancel_after_a_chunk, cancel=cancel)
    kept = partial_file(RESNET18, table=TABLE).stat().st_size
    assert 0 < kept < len(body)
    assert installed_depths() == []
    download_backbone(RESNET18, table=TABLE)
    assert model_zoo.requests[-1][1] == f"bytes={kept}-"
    assert store_contents() == ["resnet18_v1.json", "resnet18_v1.params"]
