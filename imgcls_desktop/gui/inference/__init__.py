"""The Inference tab (:class:`InferenceTab`) and its pages."""

from imgcls_desktop.gui.inference.tab import InferenceTab

__all__ = ["InferenceTab"]
