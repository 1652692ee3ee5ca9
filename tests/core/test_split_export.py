"""Packing a scanned data set: its usable images split by class and exported, and the
duplicates that the split put on both sides."""

from __future__ import annotations

from pathlib import Path

from imgcls_desktop.core.dataset.folder import import_folder
from imgcls_desktop.core.dataset.scan import scan_dataset
from imgcls_desktop.core.dataset.split_export import SplitShares, pack


def test_pack_exports_the_usable_images_and_finds_duplicates_across_splits(
    class_folder: Path, tmp_path: Path
) -> None:
    (class_folder / "cat" / "broken.jpg").write_bytes(b"")
    for copy in range(5):  # one image six times: the split cannot keep them together
        (class_folder / "dog" / f"again_{copy}.jpg").write_bytes(
            (class_folder / "dog" / "dog_0.jpg").read_bytes()
        )
    dataset = import_folder(class_folder)
    report = scan_dataset(dataset)
    packed = pack(dataset, report, tmp_path / "out", shares=SplitShares(val_ratio=0.5))
    assert packed.result.written == len(report.usable_indices) == 23
    assert packed.result.counts["val"] > 0 and not packed.result.skipped
    (leak,) = packed.leaks
    assert set(leak.splits) == {"train", "val"}
    assert all(Path(path).parent.name == "dog" for path in leak.paths)
