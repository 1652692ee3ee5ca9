"""The .rec importer: labels from record headers, with and without .idx, names, damage."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import pytest

from imgcls_desktop.core.dataset.lst import format_lst_line
from imgcls_desktop.core.dataset.reader import ImageReader
from imgcls_desktop.core.dataset.recfile import import_recordio
from imgcls_desktop.core.dataset.samples import DatasetError, SourceKind
from imgcls_desktop.core.runtime import mxnet

COLOURS = [(40, 40, 200), (40, 200, 40), (200, 40, 40)]


def _write_rec(
    path: Path, labels: Sequence[float | Sequence[float]], *, keys: Sequence[int] | None = None
) -> dict[int, bytes]:
    """Pack one small JPEG per label with im2rec's calls; the encoded bytes by key."""
    mx = mxnet()
    keys = list(keys if keys is not None else range(len(labels)))
    payloads = {}
    writer = mx.recordio.MXIndexedRecordIO(str(path.with_suffix(".idx")), str(path), "w")
    for key, label in zip(keys, labels):
        image = np.full((16, 16, 3), COLOURS[key % 3], dtype=np.uint8)
        label_value = label if isinstance(label, float) else np.asarray(label, np.float32)
        packed = mx.recordio.pack_img(mx.recordio.IRHeader(0, label_value, key, 0), image)
        writer.write_idx(key, packed)
        payloads[key] = mx.recordio.unpack(packed)[1]
    writer.close()
    return payloads


def _assert_reads_back(dataset, payloads: dict[int, bytes]) -> None:
    with ImageReader(dataset) as reader:
        for sample in dataset.samples:
            data = reader.read(sample)
            assert data == payloads[sample.record]
            pixel = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)[8, 8]
            assert np.abs(pixel.astype(int) - COLOURS[sample.record % 3]).max() < 10


def test_single_label_with_idx_lst_and_classes(tmp_path: Path) -> None:
    rec = tmp_path / "train.rec"
    keys = [10, 3, 7, 5]
    payloads = _write_rec(rec, [2.0, 0.0, 1.0, 2.0], keys=keys)
    (tmp_path / "train.lst").write_text(
        "".join(format_lst_line(key, [0], f"img/{key}.jpg") for key in keys[:3])
    )
    (tmp_path / "classes.json").write_text('["cat", "dog", "owl"]')

    dataset = import_recordio(rec)

    assert dataset.kind is SourceKind.RECORDIO
    assert dataset.source == rec
    assert dataset.record_file == rec
    assert dataset.record_offsets == {}
    assert not dataset.multi_label
    assert dataset.class_names == ["cat", "dog", "owl"]
    assert [(s.record, s.labels, s.path) for s in dataset.samples] == [
        (10, (2,), "img/10.jpg"),
        (3, (0,), "img/3.jpg"),
        (7, (1,), "img/7.jpg"),
        (5, (2,), "train.rec#5"),
    ]
    assert [dataset.relative_path(s) for s in dataset.samples][-1] == "train.rec#5"
    _assert_reads_back(dataset, payloads)


def test_without_idx_records_are_keyed_by_position(tmp_path: Path) -> None:
    rec = tmp_path / "data.rec"
    payloads = _write_rec(rec, [1.0, 0.0, 1.0], keys=[0, 1, 2])
    rec.with_suffix(".idx").unlink()

    dataset = import_recordio(rec)

    assert [(s.record, s.labels, s.path) for s in dataset.samples] == [
        (0, (1,), "data.rec#0"),
        (1, (0,), "data.rec#1"),
        (2, (1,), "data.rec#2"),
    ]
    assert list(dataset.record_offsets) == [0, 1, 2]
    assert dataset.record_offsets[0] == 0
    assert dataset.class_names == ["class_0", "class_1"]
    _assert_reads_back(dataset, payloads)


@pytest.mark.parametrize("with_idx", [True, False], ids=["idx", "no-idx"])
def test_multi_label(tmp_path: Path, with_idx: bool) -> None:
    rec = tmp_path / "m.rec"
    payloads = _write_rec(rec, [[1, 0, 1], [0, 0, 0], [0, 1, 0]])
    if not with_idx:
        rec.with_suffix(".idx").unlink()
    (tmp_path / "labels.txt").write_text("cat\ndog\nowl\n")

    dataset = import_recordio(rec)

    assert dataset.multi_label
    assert dataset.class_names == ["cat", "dog", "owl"]
    assert [s.labels for s in dataset.samples] == [(0, 2), (), (1,)]
    assert bool(dataset.record_offsets) is not with_idx
    _assert_reads_back(dataset, payloads)


def test_one_wide_label_vector_is_a_class_id(tmp_path: Path) -> None:
    rec = tmp_path / "w.rec"
    _write_rec(rec, [[3.0], 1.0])
    dataset = import_recordio(rec)
    assert not dataset.multi_label
    assert [s.labels for s in dataset.samples] == [(3,), (1,)]


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ([1.0, 2.5], "record 1: label 2.5 is not a whole number"),
        ([[1, 0], [2, 0]], "record 1: multi-hot value 2.0 for class 0 is not 0 or 1"),
        ([[1, 0], [1, 0, 0]], r"record 1 has 3 label value\(s\) where the first record has 2"),
        ([[1, 0], 1.0], r"record 1 has 1 label value\(s\) where the first record has 2"),
    ],
)
def test_bad_labels(tmp_path: Path, labels: list, message: str) -> None:
    rec = tmp_path / "bad.rec"
    _write_rec(rec, labels)
    with pytest.raises(DatasetError, match=message):
        import_recordio(rec)


def test_not_a_record_file(tmp_path: Path) -> None:
    fake = tmp_path / "photo.rec"
    fake.write_bytes(b"\xff\xd8\xff\xe0 a JPEG, not records")
    with pytest.raises(DatasetError, match=r"is not a RecordIO \(\.rec\) file"):
        import_recordio(fake)
    fake.write_bytes(b"")
    with pytest.raises(DatasetError, match="is not a RecordIO"):
        import_recordio(fake)
    with pytest.raises(DatasetError, match="cannot read"):
        import_recordio(tmp_path / "missing.rec")


def test_truncated_and_garbled(tmp_path: Path) -> None:
    rec = tmp_path / "t.rec"
    _write_rec(rec, [0.0, 1.0, 0.0])
    rec.with_suffix(".idx").unlink()
    data = rec.read_bytes()
    rec.write_bytes(data[:-40])
    with pytest.raises(DatasetError, match="is damaged or truncated: the record at byte"):
        import_recordio(rec)
    rec.write_bytes(data[:8] + bytes(range(256)) * 4)
    with pytest.raises(DatasetError, match="is damaged or truncated"):
        import_recordio(rec)


def test_idx_that_does_not_match(tmp_path: Path) -> None:
    rec = tmp_path / "x.rec"
    _write_rec(rec, [0.0, 1.0])
    idx = rec.with_suffix(".idx")
    good = idx.read_text()
    for text, message in [
        (good.replace("\t0\n", "\t4\n"), "does not match x.rec; delete it"),
        (good + good, "does not match"),
        (good.splitlines()[0] + "\n", r"does not match .*\(1 entries for 2 records\)"),
        ("zero\t0\n", "line 1: expected key<TAB>offset"),
    ]:
        idx.write_text(text)
        with pytest.raises(DatasetError, match=message):
            import_recordio(rec)


def test_bad_lst_beside_is_reported(tmp_path: Path) -> None:
    rec = tmp_path / "x.rec"
    _write_rec(rec, [0.0])
    (tmp_path / "x.lst").write_text("0 0 a.jpg\n")
    with pytest.raises(DatasetError, match=r"line 1: .*the \.lst beside x\.rec names its images"):
        import_recordio(rec)


def test_ten_thousand_headers(tmp_path: Path) -> None:
    mx = mxnet()
    rec = tmp_path / "big.rec"
    writer = mx.recordio.MXRecordIO(str(rec), "w")
    for key in range(10_000):
        writer.write(mx.recordio.pack(mx.recordio.IRHeader(0, float(key % 7), key, 0), b"x" * 64))
    writer.close()

    dataset = import_recordio(rec)

    assert len(dataset.samples) == 10_000
    assert dataset.class_counts()[0] == 1429


def test_reader_reports_a_cut_short_record_as_os_error(tmp_path: Path) -> None:
    mx = mxnet()
    writer = mx.recordio.MXIndexedRecordIO(str(tmp_path / "a.idx"), str(tmp_path / "a.rec"), "w")
    for key in range(3):
        header = mx.recordio.IRHeader(0, float(key % 2), key, 0)
        writer.write_idx(key, mx.recordio.pack_img(header, np.zeros((8, 8, 3), np.uint8)))
    writer.close()
    dataset = import_recordio(tmp_path / "a.rec")
    data = (tmp_path / "a.rec").read_bytes()
    (tmp_path / "a.rec").write_bytes(data[: len(data) - 30])
    with ImageReader(dataset) as reader:
        reader.read(dataset.samples[0])
        with pytest.raises(OSError, match="record 2 is damaged or cut short"):
            reader.read(dataset.samples[2])
