"""RecordIO written without MXNet: the same bytes as MXNet's writer, read back by MXNet."""

from __future__ import annotations

import struct
import warnings
from pathlib import Path

import pytest
from conftest import write_image

from imgcls_desktop.core.dataset.recfile import RECORDIO_MAGIC
from imgcls_desktop.core.dataset.recordio_writer import IndexedRecordWriter
from imgcls_desktop.core.runtime import mxnet

MAGIC = struct.pack("<I", RECORDIO_MAGIC)

# Every length modulo 4, and the magic word where MXNet's writer splits a record (at
# 4-aligned offsets: first, middle, twice in a row, last whole word) and where it does not.
PAYLOADS = [
    b"",
    b"a",
    b"ab",
    b"abc",
    b"abcd",
    b"abcde",
    MAGIC,
    MAGIC + b"xyz",
    b"1234" + MAGIC + b"56",
    b"1234" + MAGIC + MAGIC + b"5678" + MAGIC,
    b"12" + MAGIC + b"345678",
    b"123" + MAGIC + MAGIC[:3],
    bytes(range(256)) * 9 + MAGIC + b"tail",
]


def mxnet_files(folder: Path, records: list[bytes]) -> tuple[bytes, bytes]:
    """(.rec, .idx) bytes as MXNet's ``MXIndexedRecordIO`` writes ``records`` (key = i * 7)."""
    folder.mkdir()
    writer = mxnet().recordio.MXIndexedRecordIO(str(folder / "r.idx"), str(folder / "r.rec"), "w")
    for i, record in enumerate(records):
        writer.write_idx(i * 7, record)
    writer.close()
    return (folder / "r.rec").read_bytes(), (folder / "r.idx").read_bytes()


def our_files(folder: Path, records: list[bytes]) -> tuple[bytes, bytes]:
    folder.mkdir()
    with IndexedRecordWriter(folder / "r.idx", folder / "r.rec") as writer:
        for i, record in enumerate(records):
            writer.write(i * 7, record)
    return (folder / "r.rec").read_bytes(), (folder / "r.idx").read_bytes()


def test_the_bytes_equal_mxnets_writers_including_split_records(tmp_path):
    assert our_files(tmp_path / "ours", PAYLOADS) == mxnet_files(tmp_path / "mxnet", PAYLOADS)


@pytest.mark.parametrize("payload", PAYLOADS, ids=range(len(PAYLOADS)))
def test_mxnet_reads_every_record_back_by_key(tmp_path, payload):
    records = [b"before", payload, b"after!!"]
    our_files(tmp_path / "ours", records)
    mx = mxnet()
    reader = mx.recordio.MXIndexedRecordIO(
        str(tmp_path / "ours" / "r.idx"), str(tmp_path / "ours" / "r.rec"), "r"
    )
    assert [reader.read_idx(key) for key in reader.keys] == records
    reader.close()


def test_packed_images_equal_pack_img_and_image_record_iter_reads_them(tmp_path):
    mx = mxnet()
    images = [
        mx.image.imread(str(write_image(tmp_path / f"{i}.jpg", (30 * i, 90, 200), seed=i)))
        for i in range(5)
    ]
    with warnings.catch_warnings():  # pack_img calls numpy's deprecated tostring()
        warnings.simplefilter("ignore", DeprecationWarning)
        records = [
            mx.recordio.pack_img(mx.recordio.IRHeader(0, float(i % 3), i, 0), image.asnumpy())
            for i, image in enumerate(images)
        ]
    ours = our_files(tmp_path / "ours", records)
    assert ours == mxnet_files(tmp_path / "mxnet", records)

    batches = mx.io.ImageRecordIter(
        path_imgrec=str(tmp_path / "ours" / "r.rec"),
        path_imgidx=str(tmp_path / "ours" / "r.idx"),
        data_shape=(3, 32, 32),
        batch_size=1,
        shuffle=False,
        preprocess_threads=1,
    )
    labels = [float(batch.label[0].asnumpy()[0]) for batch in batches]
    assert labels == [float(i % 3) for i in range(5)]
