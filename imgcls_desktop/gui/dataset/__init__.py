"""The Dataset tab: open a data set, see what the scan found, split and export RecordIO."""

from imgcls_desktop.gui.dataset.tab import DatasetTab

__all__ = ["DatasetTab"]
