"""RecordIO export: round trips through MXNet's readers, im2rec parity, skipping, atomicity,
and outputs that never replace inputs or an earlier export unasked."""

from __future__ import annotations

import errno
import json
import os
import shutil
import stat
import subprocess
import sys
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import write_image

from imgcls_desktop.core.dataset.recordio_export import (
    ExportError,
    ExportOptions,
    ExportResult,
    existing_export_files,
    export_recordio,
)
from imgcls_desktop.core.dataset.samples import Dataset, Sample, SourceKind
from imgcls_desktop.core.dataset.sources import load_dataset
from imgcls_desktop.core.dataset.split import SplitAssignment, split_dataset
from imgcls_desktop.core.jobs import Cancelled
from imgcls_desktop.core.runtime import mxnet

IM2REC = Path(mxnet().__file__).parent / "tools" / "im2rec.py"


def folder_dataset(root: Path) -> Dataset:
    """A single-label data set of ``root/<class>/<file>``, class ids by sorted folder name."""
    names = sorted(p.name for p in root.iterdir() if p.is_dir())
    samples = [
        Sample(str(path), (class_id,))
        for class_id, name in enumerate(names)
        for path in sorted((root / name).iterdir())
    ]
    return Dataset(names, samples, SourceKind.FOLDER, root, root=root)


def export(
    dataset: Dataset,
    out: Path,
    assignment: SplitAssignment | None = None,
    overwrite: bool = False,
    **options,
):
    assignment = assignment or split_dataset(dataset, val_ratio=1 / 3, seed=0)
    return export_recordio(
        dataset,
        out,
        assignment=assignment,
        options=ExportOptions(workers=2, **options),
        overwrite=overwrite,
    )


def records(out: Path, stem: str) -> list[tuple[object, bytes]]:
    """(header, payload) of every record of ``out/stem.rec``, in file order."""
    mx = mxnet()
    reader = mx.recordio.MXRecordIO(str(out / f"{stem}.rec"), "r")
    found = []
    while (item := reader.read()) is not None:
        found.append(mx.recordio.unpack(item))
    reader.close()
    return found


def read_back(
    out: Path, stem: str, shape: tuple[int, int], label_width: int = 1
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(label, RGB CHW pixels) of every record, as ``mx.io.ImageRecordIter`` reads them."""
    batches = mxnet().io.ImageRecordIter(
        path_imgrec=str(out / f"{stem}.rec"),
        path_imgidx=str(out / f"{stem}.idx"),
        data_shape=(3, *shape),
        batch_size=1,
        label_width=label_width,
        shuffle=False,
        preprocess_threads=1,
    )
    # the iterator reuses its arrays: copy each batch out before reading the next
    return [(batch.label[0].asnumpy()[0], batch.data[0].asnumpy()[0]) for batch in batches]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_round_trip_gives_back_labels_and_pixels(class_folder, tmp_path):
    dataset = folder_dataset(class_folder)
    assignment = split_dataset(dataset, val_ratio=1 / 3, seed=0)
    result = export(dataset, tmp_path / "out", assignment)

    assert result.counts == {"train": 12, "val": 6}
    assert result.skipped == ()
    for split in ("train", "val"):
        read = read_back(tmp_path / "out", f"dataset-{split}", (32, 32))
        assert len(read) == len(assignment.indices(split))
        for (label, pixels), index in zip(read, assignment.indices(split)):
            sample = dataset.samples[index]
            assert label == sample.label
            original = cv2.cvtColor(cv2.imread(sample.path), cv2.COLOR_BGR2RGB).transpose(2, 0, 1)
            assert np.abs(pixels - original).mean() < 3  # one JPEG re-encoding at quality 95


def test_files_lst_format_and_metadata(class_folder, tmp_path):
    dataset = folder_dataset(class_folder)
    assignment = split_dataset(dataset, val_ratio=1 / 3, seed=0)
    result = export(dataset, tmp_path / "out", assignment)
    out = tmp_path / "out"

    names = {
        f"dataset-{split}{suffix}"
        for split in ("train", "val")
        for suffix in (".lst", ".rec", ".idx")
    }
    assert {p.name for p in out.iterdir()} == names | {"classes.json", "labels.txt", "dataset.json"}
    assert sorted(p.name for p in result.files) == sorted(p.name for p in out.iterdir())
    lst = (out / "dataset-val.lst").read_text().splitlines(keepends=True)
    expected = [
        f"{i}\t{dataset.samples[i].label}.000000\t"
        f"{dataset.class_names[dataset.samples[i].label]}/{Path(dataset.samples[i].path).name}\n"
        for i in assignment.val
    ]
    assert lst == expected
    assert "0\t0.000000\tcat/cat_0.jpg\n" in (out / "dataset-train.lst").read_text() + "".join(lst)
    idx_keys = [
        int(line.split("\t")[0]) for line in (out / "dataset-val.idx").read_text().splitlines()
    ]
    assert idx_keys == list(assignment.val)
    assert [header.id for header, _ in records(out, "dataset-val")] == list(assignment.val)
    assert json.loads((out / "classes.json").read_text()) == ["cat", "dog", "owl"]
    assert (out / "labels.txt").read_text() == "cat\ndog\nowl\n"
    description = json.loads((out / "dataset.json").read_text())
    assert description["counts"] == {"train": 12, "val": 6}
    assert description["class_counts"] == {"train": [4, 4, 4], "val": [2, 2, 2]}
    assert description["split"] == {"val_ratio": 1 / 3, "test_ratio": 0.0, "seed": 0}
    assert description["options"]["quality"] == 95
    assert description["multi_label"] is False


def test_multi_label_round_trip(tmp_path):
    root = tmp_path / "images"
    label_sets = [(0, 2), (1,), (), (0, 1, 2), (2,), (0,)] * 2
    samples = [
        Sample(str(write_image(root / f"img_{i}.jpg", (90, 90, 90), seed=i)), labels)
        for i, labels in enumerate(label_sets)
    ]
    dataset = Dataset(
        ["a", "b", "c"], samples, SourceKind.MANIFEST, root, multi_label=True, root=root
    )
    assignment = split_dataset(dataset, val_ratio=0.25, seed=0)
    export(dataset, tmp_path / "out", assignment)

    for split in ("train", "val"):
        stem = f"dataset-{split}"
        vectors = [
            label.tolist()
            for label, _ in read_back(tmp_path / "out", stem, (32, 32), label_width=3)
        ]
        expected = [dataset.label_vector(samples[i]) for i in assignment.indices(split)]
        assert vectors == expected
        assert {header.flag for header, _ in records(tmp_path / "out", stem)} == {3}
        first = assignment.indices(split)[0]
        columns = "\t".join(f"{v:f}" for v in dataset.label_vector(samples[first]))
        line = (tmp_path / "out" / f"{stem}.lst").read_text().splitlines()[0]
        assert line == f"{first}\t{columns}\timg_{first}.jpg"


# MXNet's script, run after our runtime's compatibility layer (as numpy 2 needs).
_RUN_IM2REC = (
    "import runpy, sys; from imgcls_desktop.core.runtime import mxnet; mxnet(); "
    "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')"
)


def run_im2rec(lst: Path, root: Path, work: Path, *flags: str) -> Path:
    """Run MXNet's own im2rec on ``lst`` (copied into ``work``); returns the record stem."""
    work.mkdir()
    (work / lst.name).write_bytes(lst.read_bytes())
    prefix = work / lst.stem
    arguments = [str(IM2REC), str(prefix), str(root), "--num-thread", "1", *flags]
    subprocess.run(
        [sys.executable, "-c", _RUN_IM2REC, *arguments],
        check=True,
        capture_output=True,
    )
    return prefix


@pytest.mark.skipif(not IM2REC.is_file(), reason="this MXNet wheel has no tools/im2rec.py")
def test_im2rec_writes_the_same_records_from_our_lst(class_folder, tmp_path):
    dataset = folder_dataset(class_folder)
    export(dataset, tmp_path / "ours")
    ours = tmp_path / "ours" / "dataset-train"

    theirs = run_im2rec(ours.with_suffix(".lst"), class_folder, tmp_path / "im2rec")

    assert theirs.with_suffix(".rec").read_bytes() == ours.with_suffix(".rec").read_bytes()
    assert theirs.with_suffix(".idx").read_bytes() == ours.with_suffix(".idx").read_bytes()


@pytest.mark.skipif(not IM2REC.is_file(), reason="this MXNet wheel has no tools/im2rec.py")
def test_im2rec_pass_through_of_multi_label_lst_matches(tmp_path):
    root = tmp_path / "images"
    samples = [
        Sample(str(write_image(root / f"{i}.jpg", (20, 120, 220), seed=i)), labels)
        for i, labels in enumerate([(0,), (1, 2), (), (0, 2)])
    ]
    dataset = Dataset(
        ["a", "b", "c"], samples, SourceKind.MANIFEST, root, multi_label=True, root=root
    )
    export(dataset, tmp_path / "ours", split_dataset(dataset, val_ratio=0.0), pass_through=True)
    ours = tmp_path / "ours" / "dataset-train"

    theirs = run_im2rec(
        ours.with_suffix(".lst"), root, tmp_path / "im2rec", "--pass-through", "--pack-label"
    )

    assert theirs.with_suffix(".rec").read_bytes() == ours.with_suffix(".rec").read_bytes()


def test_resize_shrinks_the_shorter_side_with_reduced_decoding(tmp_path):
    root = tmp_path / "images"
    wide = write_image(root / "a" / "wide.jpg", (30, 160, 90), size=(240, 400), seed=1)
    tall = write_image(root / "a" / "tall.png", (200, 60, 60), size=(100, 60), seed=2)
    dataset = folder_dataset(root)
    export(dataset, tmp_path / "out", split_dataset(dataset, val_ratio=0.0), resize=24)

    shapes = {}
    for header, payload in records(tmp_path / "out", "dataset-train"):
        image = cv2.imdecode(np.frombuffer(payload, np.uint8), cv2.IMREAD_COLOR)
        shapes[Path(dataset.samples[header.id].path).name] = image.shape
        reference = cv2.resize(
            cv2.imread(dataset.samples[header.id].path),
            image.shape[1::-1],
            interpolation=cv2.INTER_AREA,
        )
        assert np.abs(image.astype(int) - reference).mean() < 8
    assert shapes == {wide.name: (24, 40, 3), tall.name: (40, 24, 3)}


def test_png_encoding_is_lossless(class_folder, tmp_path):
    dataset = folder_dataset(class_folder)
    export(dataset, tmp_path / "out", split_dataset(dataset, val_ratio=0.0), encoding=".png")

    for header, payload in records(tmp_path / "out", "dataset-train"):
        assert payload.startswith(b"\x89PNG")
        image = cv2.imdecode(np.frombuffer(payload, np.uint8), cv2.IMREAD_COLOR)
        assert np.array_equal(image, cv2.imread(dataset.samples[header.id].path))


def test_pass_through_copies_bytes_only_when_nothing_changes(tmp_path):
    root = tmp_path / "images"
    write_image(root / "a" / "photo.jpg", (10, 200, 10), size=(24, 40))
    write_image(root / "a" / "picture.png", (10, 200, 10), size=(24, 40))
    dataset = folder_dataset(root)
    assignment = split_dataset(dataset, val_ratio=0.0)

    def payloads(**options) -> dict[str, bytes]:
        out = tmp_path / f"out{len(list(tmp_path.iterdir()))}"
        export(dataset, out, assignment, pass_through=True, **options)
        return {Path(dataset.samples[h.id].path).name: p for h, p in records(out, "dataset-train")}

    originals = {Path(s.path).name: Path(s.path).read_bytes() for s in dataset.samples}
    as_is = payloads()
    assert as_is["photo.jpg"] == originals["photo.jpg"]
    assert as_is["picture.png"] != originals["picture.png"]  # PNG re-encoded as JPEG
    assert as_is["picture.png"].startswith(b"\xff\xd8")
    assert payloads(resize=24)["photo.jpg"] == originals["photo.jpg"]  # already 24 px
    assert payloads(resize=20)["photo.jpg"] != originals["photo.jpg"]
    assert payloads(encoding=".png")["picture.png"] == originals["picture.png"]


def test_grayscale_alpha_and_16_bit_images_become_8_bit_colour(tmp_path):
    root = tmp_path / "images" / "a"
    root.mkdir(parents=True)
    ramp = np.linspace(0, 1, 32 * 32).reshape(32, 32)
    images = {
        "gray.png": (ramp * 255).astype(np.uint8),
        "gray.jpg": (ramp * 255).astype(np.uint8),
        "alpha.png": np.dstack(
            [(ramp * 255).astype(np.uint8)] * 3 + [np.full((32, 32), 128, np.uint8)]
        ),
        "deep.png": np.dstack([(ramp * 65535).astype(np.uint16)] * 3),
    }
    for name, image in images.items():
        assert cv2.imwrite(str(root / name), image)
    dataset = folder_dataset(root.parent)
    export(dataset, tmp_path / "out", split_dataset(dataset, val_ratio=0.0), pass_through=True)

    found = records(tmp_path / "out", "dataset-train")
    assert len(found) == 4
    for header, payload in found:
        assert payload.startswith(b"\xff\xd8")  # re-encoded, not passed through
        image = cv2.imdecode(np.frombuffer(payload, np.uint8), cv2.IMREAD_UNCHANGED)
        assert image.shape == (32, 32, 3) and image.dtype == np.uint8
        expected = (ramp * 255)[:, :, None].repeat(3, axis=2)
        assert np.abs(image - expected).mean() < 3, dataset.samples[header.id].path


def test_bad_files_are_skipped_and_reported(class_folder, tmp_path):
    good = (class_folder / "cat" / "cat_0.jpg").read_bytes()
    (class_folder / "cat" / "empty.jpg").write_bytes(b"")
    (class_folder / "dog" / "truncated.jpg").write_bytes(good[: len(good) // 2])
    (class_folder / "owl" / "notes.jpg").write_text("not an image")
    dataset = folder_dataset(class_folder)
    dataset.samples.append(Sample(str(class_folder / "owl" / "gone.jpg"), (2,)))
    assignment = split_dataset(dataset, val_ratio=0.0)
    result = export(dataset, tmp_path / "out", assignment)

    reasons = {Path(s.path).name: s.reason for s in result.skipped}
    assert set(reasons) == {"empty.jpg", "truncated.jpg", "notes.jpg", "gone.jpg"}
    assert "empty" in reasons["empty.jpg"]
    assert "truncated" in reasons["truncated.jpg"]
    assert "not an image" in reasons["notes.jpg"]
    assert reasons["gone.jpg"] == "file not found"
    assert result.counts == {"train": 18}
    lst = (tmp_path / "out" / "dataset-train.lst").read_text()
    assert lst.count("\n") == 18 and not any(name in lst for name in reasons)
    assert len(records(tmp_path / "out", "dataset-train")) == 18


def test_nothing_usable_is_an_error_that_writes_nothing(tmp_path):
    root = tmp_path / "images"
    (root / "a").mkdir(parents=True)
    (root / "a" / "x.jpg").write_bytes(b"junk")
    dataset = folder_dataset(root)

    with pytest.raises(ExportError, match="every image was skipped") as caught:
        export(dataset, tmp_path / "out", split_dataset(dataset, val_ratio=0.0))
    assert [s.reason for s in caught.value.skipped] == ["not an image (unknown file signature)"]
    assert not (tmp_path / "out").exists()


def test_workers_do_not_change_the_output(class_folder, tmp_path):
    dataset = folder_dataset(class_folder)
    assignment = split_dataset(dataset, val_ratio=0.2, test_ratio=0.2, seed=4)
    for workers in (1, 3):
        export_recordio(
            dataset,
            tmp_path / f"w{workers}",
            assignment=assignment,
            options=ExportOptions(workers=workers),
        )

    assert snapshot(tmp_path / "w1") == snapshot(tmp_path / "w3")


def test_records_of_a_rec_data_set_are_exported_again(class_folder, tmp_path):
    source = folder_dataset(class_folder)
    export(source, tmp_path / "first", split_dataset(source, val_ratio=0.0))
    rec = tmp_path / "first" / "dataset-train.rec"
    samples = [
        Sample(f"{rec}#{header.id}", source.samples[header.id].labels, record=header.id)
        for header, _ in records(tmp_path / "first", "dataset-train")
    ]
    from_rec = Dataset(source.class_names, samples, SourceKind.RECORDIO, rec, record_file=rec)

    export(from_rec, tmp_path / "second", split_dataset(from_rec, val_ratio=0.0), pass_through=True)

    first = [payload for _, payload in records(tmp_path / "first", "dataset-train")]
    assert sorted(p for _, p in records(tmp_path / "second", "dataset-train")) == sorted(first)


def test_cancel_leaves_an_earlier_export_untouched_and_nothing_new(class_folder, tmp_path):
    dataset = folder_dataset(class_folder)
    out = tmp_path / "out"
    export(dataset, out, split_dataset(dataset, val_ratio=0.2, seed=1))
    before = snapshot(out)
    cancel = threading.Event()
    seen = []

    def progress(done: int, total: int) -> None:
        seen.append(done)
        if done >= 3:
            cancel.set()

    for target in (out, tmp_path / "new" / "folder"):
        seen.clear()
        with pytest.raises(Cancelled):
            export_recordio(
                dataset,
                target,
                assignment=split_dataset(dataset, val_ratio=0.5, test_ratio=0.2, seed=2),
                options=ExportOptions(workers=2),
                progress=progress,
                cancel=cancel,
                overwrite=True,
            )
        cancel.clear()
        assert seen == [0, 1, 2, 3]
    assert snapshot(out) == before
    assert not (tmp_path / "new" / "folder").exists()


def test_a_failure_midway_leaves_no_temporary_files(class_folder, tmp_path):
    dataset = folder_dataset(class_folder)
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")

    def progress(done: int, total: int) -> None:
        if done == 5:
            raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        export_recordio(
            dataset,
            out,
            assignment=split_dataset(dataset),
            options=ExportOptions(),
            progress=progress,
        )
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_an_unwritable_output_folder_is_a_clear_error(class_folder, tmp_path):
    dataset = folder_dataset(class_folder)
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a folder")

    with pytest.raises(ExportError, match="cannot write to"):
        export(dataset, blocker / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "images"]


def test_a_new_export_removes_split_files_it_no_longer_writes(class_folder, tmp_path):
    dataset = folder_dataset(class_folder)
    out = tmp_path / "out"
    export(dataset, out, split_dataset(dataset, val_ratio=0.2, test_ratio=0.2))
    assert (out / "dataset-test.rec").exists()
    (out / "other-test.rec").write_bytes(b"another export")

    result = export(dataset, out, split_dataset(dataset, val_ratio=0.0), overwrite=True)

    assert isinstance(result, ExportResult) and result.counts == {"train": 18}
    assert not any(out.glob("dataset-test.*")) and not any(out.glob("dataset-val.*"))
    assert (out / "other-test.rec").exists()
    assert json.loads((out / "dataset.json").read_text())["counts"] == {"train": 18}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"encoding": ".gif"}, "encoding must be"),
        ({"quality": 0}, "JPEG quality must be 1-100"),
        ({"encoding": ".png", "quality": 95}, "PNG compression must be 0-9"),
        ({"resize": 0}, "resize must be"),
        ({"workers": 0}, "workers must be"),
    ],
)
def test_bad_options_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        ExportOptions(**options)


def test_bad_name_or_empty_split_is_refused(class_folder, tmp_path):
    dataset = folder_dataset(class_folder)
    with pytest.raises(ValueError, match="plain file name"):
        export_recordio(dataset, tmp_path, name="../x", assignment=split_dataset(dataset))
    empty = split_dataset(dataset, indices=[])
    with pytest.raises(ExportError, match="nothing to export"):
        export_recordio(dataset, tmp_path, assignment=empty)


def test_an_earlier_export_is_replaced_only_when_overwriting_is_allowed(class_folder, tmp_path):
    dataset = folder_dataset(class_folder)
    out = tmp_path / "out"
    assert existing_export_files(out) == []
    export(dataset, out, split_dataset(dataset, val_ratio=0.2, seed=1))
    before = snapshot(out)
    assert [path.name for path in existing_export_files(out)] == [
        "dataset-train.lst",
        "dataset-train.rec",
        "dataset-train.idx",
        "dataset-val.lst",
        "dataset-val.rec",
        "dataset-val.idx",
        "classes.json",
        "labels.txt",
        "dataset.json",
    ]
    assert existing_export_files(out, "other") == [
        out / "classes.json",
        out / "labels.txt",
        out / "dataset.json",
    ]

    with pytest.raises(ExportError, match=r"already holds dataset-train\.lst, .*dataset\.json"):
        export(dataset, out, split_dataset(dataset, val_ratio=0.5, seed=2))
    assert snapshot(out) == before

    export(dataset, out, split_dataset(dataset, val_ratio=0.5, seed=2), overwrite=True)
    assert snapshot(out) != before
    assert json.loads((out / "dataset.json").read_text())["split"]["val_ratio"] == 0.5


@pytest.mark.parametrize("source_suffix", [".rec", ".lst"])
def test_an_export_never_writes_over_the_data_it_reads(class_folder, tmp_path, source_suffix):
    folder_set = folder_dataset(class_folder)
    out = tmp_path / "out"
    export(folder_set, out, split_dataset(folder_set, val_ratio=0.0))
    reading = load_dataset(out / f"dataset-train{source_suffix}", root=class_folder)
    before = snapshot(out)
    (tmp_path / "same-folder").symlink_to(out)

    for target in (out, tmp_path / "same-folder"):
        with pytest.raises(ExportError, match=r"dataset-train.* part of the data set"):
            export(reading, target, split_dataset(reading, val_ratio=0.0), overwrite=True)
    assert snapshot(out) == before


def test_the_clean_up_of_an_earlier_export_keeps_the_data_being_read(records, tmp_path):
    packed = tmp_path / "packed"
    before = snapshot(packed)
    everything = tuple(range(len(records.samples)))
    only_val = SplitAssignment((), everything, (), 1.0, 0.0, 0)

    result = export(records, packed, only_val, overwrite=True)

    assert result.counts == {"val": 18}
    for name in ("dataset-train.rec", "dataset-train.idx", "dataset-train.lst"):
        assert (packed / name).read_bytes() == before[name]
    assert (packed / "dataset-val.rec").is_file()


def test_temporary_files_of_a_killed_export_go_at_the_next_export(class_folder, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    leftovers = [".dataset-train.rec.0a1b2c3d.partial", ".classes.json.deadbeef.partial"]
    others = [".notes.partial", "photo.0a1b2c3d.partial", ".x.0a1b2c3d.tmp", "keep.txt"]
    for name in leftovers + others:
        (out / name).write_bytes(b"left over")

    export(folder_dataset(class_folder), out)

    names = {p.name for p in out.iterdir()}
    assert names.isdisjoint(leftovers) and set(others) <= names


def test_every_written_file_and_the_folder_are_flushed_to_disk(class_folder, tmp_path, monkeypatch):
    synced: set[tuple[int, int]] = set()
    real_fsync = os.fsync

    def recording_fsync(descriptor: int) -> None:
        status = os.fstat(descriptor)
        synced.add((status.st_dev, status.st_ino))
        real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    result = export(folder_dataset(class_folder), tmp_path / "new" / "out")

    for path in (*result.files, tmp_path / "new" / "out", tmp_path / "new"):
        status = path.stat()
        assert (status.st_dev, status.st_ino) in synced, path


class _Killed(BaseException):
    """Stands for a kill -9 at one step of the commit (nothing after it runs)."""


def split_files_agree(out: Path, stem: str) -> int:
    """Check that ``stem.idx`` and ``stem.lst``, when there, describe the records of
    ``stem.rec`` (the same keys, each offset at its record); the number of records."""
    mx = mxnet()
    keys = sorted(header.id for header, _payload in records(out, stem))
    idx, lst = out / f"{stem}.idx", out / f"{stem}.lst"
    if idx.exists():
        indexed = mx.recordio.MXIndexedRecordIO(str(idx), str(out / f"{stem}.rec"), "r")
        assert sorted(indexed.keys) == keys, f"{idx.name} is stale"
        assert all(mx.recordio.unpack(indexed.read_idx(k))[0].id == k for k in keys), idx.name
        indexed.close()
    if lst.exists():
        listed = sorted(int(line.split("\t")[0]) for line in lst.read_text().splitlines())
        assert listed == keys, f"{lst.name} is stale"
    return len(keys)


def test_a_kill_at_any_step_of_the_commit_leaves_each_rec_with_its_own_idx_and_lst(
    class_folder, tmp_path, monkeypatch
):
    dataset = folder_dataset(class_folder)
    earlier = tmp_path / "earlier"
    export(dataset, earlier, split_dataset(dataset, val_ratio=0.2, test_ratio=0.2, seed=1))
    new_split = split_dataset(dataset, val_ratio=0.4, test_ratio=0.2, seed=0)
    steps = {"done": 0, "kill_at": -1}

    def interruptible(real, is_step):  # the real call, killed before the kill_at-th step
        def call(path, *args, **kwargs):
            if is_step(Path(path)):
                if steps["done"] == steps["kill_at"]:
                    raise _Killed
                steps["done"] += 1
            return real(path, *args, **kwargs)

        return call

    monkeypatch.setattr(os, "replace", interruptible(os.replace, lambda path: True))
    # removing a file under its final name (not a temporary one) is a step too
    monkeypatch.setattr(
        os, "unlink", interruptible(os.unlink, lambda path: not path.name.startswith("."))
    )
    export(dataset, tmp_path / "counted", new_split, overwrite=True)
    commit_steps, killed_states = steps["done"], set()
    assert commit_steps >= 12  # 9 split files and 3 metadata files renamed, old files removed
    for kill_at in range(commit_steps):
        out = tmp_path / f"killed-{kill_at}"
        shutil.copytree(earlier, out)
        steps.update(done=0, kill_at=kill_at)
        with pytest.raises(_Killed):
            export(dataset, out, new_split, overwrite=True)
        counts = {rec.stem: split_files_agree(out, rec.stem) for rec in out.glob("*.rec")}
        strays = [
            path.name
            for path in out.iterdir()
            if path.suffix in (".idx", ".lst") and not path.with_suffix(".rec").exists()
        ]
        assert not strays, f"killed at step {kill_at}: {strays} without their .rec"
        if (out / "dataset.json").exists():
            described = json.loads((out / "dataset.json").read_text())["counts"]
            assert all(counts.get(f"dataset-{split}") == n for split, n in described.items()), (
                f"killed at step {kill_at}: dataset.json describes other files"
            )
        killed_states.add(tuple(sorted(snapshot(out).items())))
    assert len(killed_states) > commit_steps // 2  # the kills did fall between different steps


def test_an_export_whose_folder_cannot_be_synced_after_the_renames_has_still_happened(
    class_folder, tmp_path, monkeypatch
):
    dataset = folder_dataset(class_folder)
    out, reference = tmp_path / "out", tmp_path / "reference"
    export(dataset, out, split_dataset(dataset, val_ratio=0.2, seed=1))
    export(dataset, reference)
    real_fsync = os.fsync

    def full_disk_on_folders(descriptor: int) -> None:
        if stat.S_ISDIR(os.fstat(descriptor).st_mode):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", full_disk_on_folders)
    result = export(dataset, out, overwrite=True)

    assert result.written == len(dataset.samples)
    assert snapshot(out) == snapshot(reference)
