"""Files from a user's folder are data, never code: no pickle, no eval, anywhere in the package.

The code's tokens are read (not its comments or strings), so a docstring may explain why
pickle is not used.
"""

from __future__ import annotations

import io
import tokenize
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "imgcls_desktop"
# Modules and functions that turn bytes into running code.
FORBIDDEN_NAMES = {"pickle", "cPickle", "dill", "shelve", "marshal", "load_states", "save_states"}
BUILTINS_THAT_RUN_CODE = {"eval", "exec"}


def _code_tokens(path: Path) -> list[tokenize.TokenInfo]:
    source = path.read_text(encoding="utf-8")
    skipped = {tokenize.COMMENT, tokenize.STRING, tokenize.NL, tokenize.NEWLINE}
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    return [token for token in tokens if token.type not in skipped]


def code_loading_uses(path: Path) -> list[str]:
    """``file:line: what`` for every use of pickle and friends in a Python file."""
    tokens = _code_tokens(path)
    found = []
    for before, token, after, value in zip(
        [None, *tokens], tokens, [*tokens[1:], None], [*tokens[2:], None, None]
    ):
        text = token.string
        if token.type != tokenize.NAME:
            continue
        called = after is not None and after.string == "("
        is_attribute = before is not None and before.string == "."
        if text in FORBIDDEN_NAMES:
            found.append(f"{path}:{token.start[0]}: {text}")
        elif text in BUILTINS_THAT_RUN_CODE and called and not is_attribute:
            found.append(f"{path}:{token.start[0]}: {text}(")
        elif text == "allow_pickle" and (value is None or value.string != "False"):
            found.append(f"{path}:{token.start[0]}: allow_pickle other than False")
    return found


def test_the_package_never_loads_code_from_files() -> None:
    uses = [use for path in sorted(PACKAGE.rglob("*.py")) for use in code_loading_uses(path)]
    assert not uses, "\n".join(uses)


@pytest.mark.parametrize(
    "line",
    [
        "import pickle\n",
        "from mxnet import gluon as g; g.Trainer.load_states(t, 'x')\n",
        "trainer.save_states(path)\n",
        "numpy.load(path, allow_pickle=True)\n",
        "value = eval(text)\n",
        "exec(code)\n",
    ],
)
def test_the_check_finds_each_use(line: str, tmp_path: Path) -> None:
    module = tmp_path / "module.py"
    module.write_text(f'"""Mentions of pickle and eval( in text are fine."""\n{line}')
    assert len(code_loading_uses(module)) == 1


def test_the_check_leaves_text_and_other_methods_alone(tmp_path: Path) -> None:
    module = tmp_path / "module.py"
    module.write_text(
        '"""Never pickle; never eval(text)."""\n'
        "# exec(code) would be wrong\n"
        "app.exec()\n"
        "numpy.load(path, allow_pickle=False)\n"
    )
    assert code_loading_uses(module) == []
