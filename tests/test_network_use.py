"""Nothing in the app touches the network except what the user asks for: the download of
backbone weights (``core/weights/download.py``) and distributed training, whose launcher picks
free ports and resolves the hosts the user names (``core/distributed/commands.py``)."""

from __future__ import annotations

from pathlib import Path

from tests.test_no_code_loading import PACKAGE, _code_tokens

ALLOWED = {
    PACKAGE / "core" / "weights" / "download.py",
    PACKAGE / "core" / "distributed" / "commands.py",
}
# Names of network code: modules, and the functions that open connections or fetch files.
NETWORK_NAMES = {
    "http", "urlopen", "build_opener", "urlretrieve", "HTTPConnection", "HTTPSConnection",
    "create_connection", "ssl", "requests", "httpx", "urllib3", "aiohttp", "ftplib",
    "smtplib", "get_model_file",
}  # fmt: skip
# ``socket`` is fine for the host name (the run lock) only.
SOCKET_USES = {"gethostname"}


def network_uses(path: Path) -> list[str]:
    """``file:line: name`` for every use of network code in a Python file."""
    tokens = [*_code_tokens(path), None, None]
    found = []
    for token, after, following in zip(tokens, tokens[1:], tokens[2:]):
        if token is None:
            break
        text = token.string
        next_text = after.string if after else ""
        following_text = following.string if following else ""
        # gluon's model zoo downloads on ``get_model(..., pretrained=True)``.
        downloads = text == "pretrained" and next_text == "=" and following_text == "True"
        if text in NETWORK_NAMES or downloads:
            found.append(f"{path}:{token.start[0]}: {text}")
        elif text == "socket" and next_text == "." and following_text not in SOCKET_USES:
            found.append(f"{path}:{token.start[0]}: socket.{following_text}")
    return found


def test_only_the_download_and_the_launcher_use_the_network() -> None:
    paths = sorted(PACKAGE.rglob("*.py"))
    uses = [use for path in paths if path not in ALLOWED for use in network_uses(path)]
    assert not uses, "\n".join(uses)
    for allowed in ALLOWED:
        assert network_uses(allowed), f"the check no longer sees {allowed.name}'s network use"


def test_the_check_finds_network_code(tmp_path: Path) -> None:
    module = tmp_path / "module.py"
    module.write_text(
        '"""Never urlopen here."""\n'
        "import urllib.request\n"
        "urllib.request.urlopen(url)\n"
        "vision.get_model('resnet18_v1', pretrained=True)\n"
        "socket.create_connection(address)\n"
        "host = socket.gethostname()\n"
    )
    assert [use.rsplit(": ", 1)[1] for use in network_uses(module)] == [
        "urlopen",
        "pretrained",
        "socket.create_connection",
        "create_connection",
    ]
