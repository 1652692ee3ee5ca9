"""The health scan's findings, worded once: the command line prints them, the window lists
them.

Each finding is one line under a heading of its kind (``title``); ``path`` is the file it is
about, if any, so a face can show it. How a file's path is written is the face's choice
(``show_path``): in full in a terminal, relative to the data set's folder in the window,
where every class may hold an ``IMG_1001.jpg``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from imgcls_desktop.core.dataset.scan import (
    ClassCount,
    CrossSplitDuplicate,
    DuplicateGroup,
    ScanReport,
    cross_split_duplicates,
    median_class_size,
)

ShowPath = Callable[[str], str]


class FindingKind(Enum):
    """The kinds of things the scan finds, in the order they are listed."""

    UNUSABLE = "unusable"
    SMALL_IMAGE = "small image"
    CONVERTED = "converted"
    DUPLICATES = "duplicates"
    CROSS_SPLIT = "duplicates across splits"
    FEW_IMAGES = "few images"
    IMBALANCE = "imbalance"


@dataclass(frozen=True)
class Finding:
    """One thing the scan found: its kind, the heading of its kind, one line, and the file
    it is about (None for a class or the whole data set)."""

    kind: FindingKind
    title: str
    detail: str
    path: str | None = None


def relative_to(root: Path | None) -> ShowPath:
    """Show paths below ``root`` relative to it (``class/IMG_1001.jpg``), others as stored."""

    def show(path: str) -> str:
        if root is None:
            return path
        try:
            return Path(path).relative_to(root).as_posix()
        except ValueError:
            return path

    return show


def findings(
    report: ScanReport, leaks: Sequence[CrossSplitDuplicate] = (), show_path: ShowPath = str
) -> list[Finding]:
    """Everything ``report`` (and the duplicates ``leaks`` across splits) found, in order."""
    found = [
        Finding(
            FindingKind.UNUSABLE,
            "Unusable files, skipped",
            f"{show_path(f.path)}: {f.reason}",
            f.path,
        )
        for f in report.bad_files
    ]
    if report.min_size is not None:
        height, width = report.min_size
        title = f"Smaller than {height} high x {width} wide"
        found += [
            Finding(
                FindingKind.SMALL_IMAGE,
                title,
                f"{show_path(f.path)}: {f.height} high x {f.width} wide",
                f.path,
            )
            for f in report.small_images
        ]
    found += [
        Finding(
            FindingKind.CONVERTED,
            "Converted to 8-bit colour on export",
            f"{show_path(f.path)}: {f.conversion}",
            f.path,
        )
        for f in report.converted
    ]
    found += [
        Finding(
            FindingKind.DUPLICATES,
            "Exact duplicates",
            _describe_group(report, group, show_path),
            group.paths[0],
        )
        for group in report.duplicate_groups
    ]
    found += [
        Finding(
            FindingKind.CROSS_SPLIT,
            "Duplicates in more than one split",
            ", ".join(
                f"{show_path(path)} ({split})" for path, split in zip(leak.paths, leak.splits)
            ),
            leak.paths[0],
        )
        for leak in leaks
    ]
    median = median_class_size(report.classes())
    usable = sum(report.class_counts)
    found += [
        Finding(
            FindingKind.FEW_IMAGES,
            "Classes with few images",
            _describe_few(report, entry, median, usable),
        )
        for entry in report.few_images_classes
    ]
    if report.imbalance is not None:
        imbalance = report.imbalance
        found.append(
            Finding(
                FindingKind.IMBALANCE,
                "Class imbalance",
                f"{imbalance.largest.name} has {imbalance.largest.count} images, "
                f"{imbalance.smallest.name} only {imbalance.smallest.count} "
                f"({imbalance.ratio:g} times as many; the limit is {report.imbalance_ratio:g})",
            )
        )
    return found


def _describe_group(report: ScanReport, group: DuplicateGroup, show_path: ShowPath) -> str:
    text = f"{len(group.paths)} copies: {', '.join(show_path(path) for path in group.paths)}"
    if not group.labels_differ:
        return text
    names = [
        "+".join(report.class_names[label] for label in labels) or "(none)"
        for labels in group.labels
    ]
    return f"{text} (labelled differently: {' / '.join(names)})"


def _describe_few(report: ScanReport, entry: ClassCount, median: float, usable: int) -> str:
    share = f" ({entry.count / usable:.1%} of the images)" if usable else ""
    if entry.count < report.min_per_class:
        reason = f"fewer than {report.min_per_class}"
    else:
        reason = f"far below the median class of {median:g}; training may all but ignore it"
    return f"{entry.name}: {entry.count} images{share}, {reason}"


def format_text(
    report: ScanReport, *, assignment: Sequence[str] | None = None, limit: int | None = 20
) -> str:
    """The report as text for a terminal: a class table, then the findings under their
    headings, with full paths.

    With ``assignment`` (each sample's split), duplicates across splits are listed too.
    Each heading shows at most ``limit`` lines (None: all).
    """
    usable = len(report.usable_indices)
    lines = [
        f"Scanned {len(report.files)} images in {len(report.class_names)} classes: "
        f"{usable} usable, {len(report.bad_files)} unusable.",
        "",
        *_class_table(report, usable),
    ]
    leaks = cross_split_duplicates(report, assignment) if assignment is not None else []
    by_title: dict[str, list[str]] = {}
    for finding in findings(report, leaks):
        by_title.setdefault(finding.title, []).append(finding.detail)
    for title, entries in by_title.items():
        lines.extend(["", f"{title} ({len(entries)}):"])
        shown = entries if limit is None else entries[:limit]
        lines.extend(f"  {entry}" for entry in shown)
        if len(shown) < len(entries):
            lines.append(f"  ... and {len(entries) - len(shown)} more")
    if not by_title:
        lines.extend(["", "No problems found."])
    return "\n".join(lines)


def _class_table(report: ScanReport, usable: int) -> list[str]:
    """Id, name, usable images and share of every class, aligned in columns."""
    width = max([len("class"), *(len(name) for name in report.class_names)])
    lines = [f"  {'id':>3}  {'class':<{width}}  {'images':>7}  {'share':>6}"]
    for entry in report.classes():
        share = f"{100.0 * entry.count / usable:.1f}%" if usable else "-"
        lines.append(f"  {entry.class_id:>3}  {entry.name:<{width}}  {entry.count:>7}  {share:>6}")
    if report.multi_label:
        lines.append("  (a multi-label image counts once for each of its labels)")
    return lines
