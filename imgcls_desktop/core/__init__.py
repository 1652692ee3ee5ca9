"""All data, training and inference logic. Never imports Qt."""

from __future__ import annotations
