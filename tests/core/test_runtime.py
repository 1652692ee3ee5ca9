"""The core stays Qt-free, and MXNet gets every core unless the user chose otherwise."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap


def _run_python(code: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        timeout=120,
    )
    return result.stdout.strip()


def test_core_imports_no_qt() -> None:
    code = """
        import importlib, pkgutil, sys

        class BlockQt:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {"PySide6", "PyQt5", "PyQt6", "shiboken6", "pyqtgraph"}:
                    raise ImportError(f"core imported {name}")
                return None

        sys.meta_path.insert(0, BlockQt())
        import imgcls_desktop.core as core
        for module in pkgutil.walk_packages(core.__path__, "imgcls_desktop.core."):
            importlib.import_module(module.name)
        print(sorted(m for m in sys.modules if "Qt" in m or "PySide" in m))
    """
    assert _run_python(code) == "[]"


def test_omp_threads_default_to_core_count_before_mxnet_import() -> None:
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    code = """
        import os
        from imgcls_desktop.core.runtime import mxnet
        mxnet()
        print(os.environ["OMP_NUM_THREADS"], os.cpu_count())
    """
    threads, cores = _run_python(code, env).split()
    assert threads == cores


def test_user_choice_of_omp_threads_is_kept() -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    code = """
        import os
        from imgcls_desktop.core.runtime import mxnet
        mxnet()
        print(os.environ["OMP_NUM_THREADS"])
    """
    assert _run_python(code, env) == "1"
