"""The fault-injection suite: jobs killed, out of space or cut off mid-way (issue #9).

A package, so that its ``conftest.py`` does not shadow ``tests/conftest.py``, which other
test modules import as ``conftest``.
"""
