"""What the user asked for: ``local:N[,servers=M]``, ``ssh:HOSTS_FILE[,servers=M]``, ``print``.

A spec is ``KIND[:ARGUMENT][,key=value...]``; a bad one raises :class:`LaunchSpecError`
with a one-line message saying what is accepted.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

KINDS = ("local", "ssh", "print")
SPEC_HELP = "local:N[,servers=M], ssh:HOSTS_FILE[,servers=M][,port=P] or print[:N][,servers=M]"
DEFAULT_PORT = 9091
"""The scheduler's port where we cannot pick a free one (another machine): dmlc's default."""


class LaunchSpecError(ValueError):
    """A launch spec or hosts file that cannot be used; the message is one line."""


@dataclass(frozen=True)
class LaunchPlan:
    """How many workers and servers to start, and where.

    ``local``: every process on this machine, the scheduler on a free loopback port. One
    server by default: on one machine the traffic is memory copies, and each more process
    takes a core from the workers. ``ssh``: one worker per host and, by default, one server
    per host, so each host's link carries 1/M of the parameter traffic; the scheduler runs
    on the first host at ``port``. ``print``: the commands only.
    """

    kind: str
    workers: int
    servers: int
    hosts: tuple[str, ...] = ()
    port: int = DEFAULT_PORT


def _positive(text: str, what: str, spec: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise LaunchSpecError(f"launch {spec!r}: {what} must be a whole number >= 1, not {text!r}")
    return int(text)


def read_hosts(path: str | Path) -> tuple[str, ...]:
    """The hosts of a hosts file: one ``host`` or ``user@host`` a line; ``#`` comments."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise LaunchSpecError(f"cannot read hosts file {path}: {error.strerror}") from None
    hosts = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if any(char.isspace() for char in line) or line.startswith("-"):
            raise LaunchSpecError(f"hosts file {path}, line {number}: not a host name: {line!r}")
        hosts.append(line)
    if not hosts:
        raise LaunchSpecError(f"hosts file {path} names no host")
    if len(set(hosts)) != len(hosts):
        raise LaunchSpecError(f"hosts file {path} names a host twice")
    return tuple(hosts)


def parse_launch(spec: str) -> LaunchPlan:
    """Parse ``local:N[,servers=M]``, ``ssh:HOSTS_FILE[,servers=M][,port=P]``, ``print...``."""
    head, *options = spec.strip().split(",")
    kind, _, argument = head.partition(":")
    if kind not in KINDS:
        raise LaunchSpecError(f"launch {spec!r}: expected {SPEC_HELP}")
    settings: dict[str, int] = {}
    for option in options:
        key, equals, value = option.strip().partition("=")
        if not equals or key not in ("servers", "port") or key in settings:
            raise LaunchSpecError(f"launch {spec!r}: unknown option {option!r}; {SPEC_HELP}")
        if key == "port" and kind == "local":
            raise LaunchSpecError(f"launch {spec!r}: local picks a free port itself")
        settings[key] = _positive(value, key, spec)
    port = settings.get("port", DEFAULT_PORT)
    if port > 65535:
        raise LaunchSpecError(f"launch {spec!r}: port must be at most 65535")
    if kind == "ssh":
        if not argument:
            raise LaunchSpecError(f"launch {spec!r}: ssh needs a hosts file: ssh:HOSTS_FILE")
        hosts = read_hosts(argument)
        return LaunchPlan("ssh", len(hosts), settings.get("servers", len(hosts)), hosts, port)
    if kind == "local" and not argument:
        raise LaunchSpecError(f"launch {spec!r}: say how many workers: local:N")
    workers = _positive(argument, "the number of workers", spec) if argument else 2
    return LaunchPlan(kind, workers, settings.get("servers", 1), (), port)
