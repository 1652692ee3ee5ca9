"""Reading the encoded bytes of a data set's images, from files or from a ``.rec``."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

from imgcls_desktop.core.dataset.samples import Dataset, DatasetError, Sample
from imgcls_desktop.core.runtime import mxnet


class ImageReader:
    """Reads image bytes of one data set; one instance may be shared by many threads.

    A record file gets one open handle per thread (a handle's seek-then-read is not
    thread-safe). Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, dataset: Dataset) -> None:
        self._dataset = dataset
        self._local = threading.local()
        self._handles: list[Any] = []
        self._lock = threading.Lock()

    def read(self, sample: Sample) -> bytes:
        """The encoded image bytes of a sample (``OSError`` when its file cannot be read)."""
        if sample.record is None:
            return Path(sample.path).read_bytes()
        mx = mxnet()
        try:
            record = self._record_handle().read_idx(sample.record)
        except KeyError:
            raise OSError(f"record {sample.record} is not in the index") from None
        except mx.base.MXNetError:
            raise OSError(f"record {sample.record} is damaged or cut short") from None
        _header, payload = mx.recordio.unpack(record)
        return payload

    def _record_handle(self) -> Any:
        handle = getattr(self._local, "handle", None)
        if handle is None:
            handle = _open_indexed(self._dataset)
            self._local.handle = handle
            with self._lock:
                self._handles.append(handle)
        return handle

    def close(self) -> None:
        """Close every record handle opened by any thread."""
        with self._lock:
            for handle in self._handles:
                handle.close()
            self._handles.clear()
        self._local = threading.local()

    def __enter__(self) -> ImageReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _open_indexed(dataset: Dataset) -> Any:
    """Open the data set's ``.rec`` for random access by record key.

    Without a ``.idx`` file the offsets the importer found are used: the index is opened on
    the null device (so nothing is read from disk) and filled in memory.
    """
    if dataset.record_file is None:
        raise DatasetError("this data set has no record file")
    mx = mxnet()
    rec_path = str(dataset.record_file)
    idx_path = dataset.record_file.with_suffix(".idx")
    if idx_path.is_file() and not dataset.record_offsets:
        return mx.recordio.MXIndexedRecordIO(str(idx_path), rec_path, "r")
    handle = mx.recordio.MXIndexedRecordIO(os.devnull, rec_path, "r")
    handle.idx = dict(dataset.record_offsets)
    handle.keys = list(dataset.record_offsets)
    return handle
