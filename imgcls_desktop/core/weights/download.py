"""Fetching a backbone from the Gluon model zoo, only when the user asks: the one place in
the app that touches the network.

The file comes from where MXNet's ``gluon.model_zoo.model_store`` fetches it (its
``apache_repo_url``, or ``$MXNET_GLUON_REPO`` for a mirror, as gluon honours it): a ``.zip``
holding ``resnet18_v1-a0666292.params``. The body goes into ``<file>.zip.part`` in the
store; a later call resumes it with an HTTP Range request (a server that ignores Range sends
the whole file again, and the part restarts). The ``.params`` member is then extracted and
its SHA-1 checked against the model zoo's table before it is placed in the store. A wrong
checksum, a body that is not the zip, an HTML page or an HTTP error are refused with the
reason and leave nothing behind; a dropped connection, a truncated body or a cancel leave
the ``.part``, which the next call resumes.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from pathlib import Path

from imgcls_desktop.core.jobs import CancelFlag, ProgressFn, check_cancel, no_progress
from imgcls_desktop.core.weights.catalog import Backbone, ChecksumTable, WeightsError, model_store
from imgcls_desktop.core.weights.store import BackboneState, Origin, place, store_folder

REPOSITORY_VARIABLE = "MXNET_GLUON_REPO"
MAX_DOWNLOAD_BYTES = 1 << 30  # the largest zip (ResNet-152) is ~230 MB
MAX_ZIP_MEMBERS = 16
_CHUNK = 256 * 1024
_TIMEOUT_SECONDS = 30
_SCHEMES = ("http", "https", "file")


class DownloadError(WeightsError):
    """A download failed; the message says why and whether running it again resumes."""


def repository_url(repo: str | None = None) -> str:
    """The model zoo's address: ``repo``, else ``$MXNET_GLUON_REPO``, else MXNet's own."""
    url = repo or os.environ.get(REPOSITORY_VARIABLE) or model_store().apache_repo_url
    if urllib.parse.urlsplit(url).scheme not in _SCHEMES:
        raise DownloadError(f"{url} is not an http(s) address of a model zoo")
    return url if url.endswith("/") else url + "/"


def download_url(
    backbone: Backbone, repo: str | None = None, table: ChecksumTable | None = None
) -> str:
    """Where ``backbone``'s zip is, as gluon's ``get_model_file`` builds it."""
    return model_store()._url_format.format(
        repo_url=repository_url(repo), file_name=backbone.zoo_file_name(table)
    )


def partial_file(
    backbone: Backbone, folder: Path | None = None, table: ChecksumTable | None = None
) -> Path:
    """The resumable part of ``backbone``'s download, in the store."""
    return (folder or store_folder()) / f"{backbone.zoo_file_name(table)}.zip.part"


def download_backbone(
    backbone: Backbone,
    *,
    repo: str | None = None,
    table: ChecksumTable | None = None,
    folder: Path | None = None,
    progress: ProgressFn = no_progress,
    cancel: CancelFlag | None = None,
) -> BackboneState:
    """Download ``backbone`` into the store, resuming a partial download, and return its
    state. ``progress(bytes_done, bytes_total)``, ``bytes_total`` 0 while unknown."""
    folder = folder or store_folder()
    folder.mkdir(parents=True, exist_ok=True)
    url = download_url(backbone, repo, table)
    part = partial_file(backbone, folder, table)
    try:
        _fetch(url, part, progress, cancel)
    finally:
        with contextlib.suppress(OSError):
            if part.stat().st_size == 0:
                part.unlink()
    try:
        state = _place_from_zip(backbone, part, url, table, folder, cancel)
    except WeightsError:
        part.unlink(missing_ok=True)  # the whole body arrived and is wrong: start afresh
        raise
    part.unlink(missing_ok=True)
    return state


def _fetch(url: str, part: Path, progress: ProgressFn, cancel: CancelFlag | None) -> None:
    """Append the rest of ``url``'s body to ``part`` (or restart it when the server does not
    resume)."""
    offset = part.stat().st_size if part.is_file() else 0
    response = _open(url, offset)
    if response is None:
        return  # the server has nothing past the part: it is whole
    with response:
        content_type = response.headers.get("Content-Type", "")
        if content_type.startswith(("text/html", "application/xhtml")):
            raise DownloadError(
                f"{url} answered with a web page ({content_type.split(';')[0]}), not the "
                f"weights: check the address (--repo, ${REPOSITORY_VARIABLE})"
            )
        resumed = offset > 0 and response.status == http.HTTPStatus.PARTIAL_CONTENT
        if resumed and not _range_starts_at(response, offset):
            part.unlink()
            raise DownloadError(f"{url} resumed at the wrong place; run the download again")
        done = offset if resumed else 0
        length = response.headers.get("Content-Length")
        total = done + int(length) if length and length.isdigit() else 0
        if total > MAX_DOWNLOAD_BYTES:
            raise DownloadError(f"{url} offers {_megabytes(total)}, far more than any backbone")
        with part.open("ab" if resumed else "wb") as file:
            progress(done, total)
            while True:
                check_cancel(cancel)
                try:
                    chunk = response.read(_CHUNK)
                except (OSError, http.client.HTTPException) as error:
                    raise DownloadError(
                        f"the connection dropped after {_megabytes(done)} "
                        f"({error or 'no reason'}): run the download again to resume"
                    ) from None
                if not chunk:
                    break
                file.write(chunk)
                done += len(chunk)
                if done > MAX_DOWNLOAD_BYTES:
                    break
                progress(done, total)
    if done > MAX_DOWNLOAD_BYTES:
        part.unlink()
        raise DownloadError(f"{url} sent more than {_megabytes(MAX_DOWNLOAD_BYTES)}; refused")
    if total and done < total:
        raise DownloadError(
            f"the server stopped after {_megabytes(done)} of {_megabytes(total)}: run the "
            "download again to resume"
        )


def _open(url: str, offset: int) -> http.client.HTTPResponse | None:
    """The response to a GET of ``url`` from byte ``offset``; None when there is nothing
    past it (416)."""
    headers = {"User-Agent": "imgcls-desktop"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        return urllib.request.urlopen(
            urllib.request.Request(url, headers=headers), timeout=_TIMEOUT_SECONDS
        )
    except urllib.error.HTTPError as error:
        error.close()
        if error.code == http.HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE and offset:
            return None
        raise DownloadError(
            f"{url} answered {error.code} {error.reason}: check the address (--repo, "
            f"${REPOSITORY_VARIABLE})"
        ) from None
    except (OSError, http.client.HTTPException, ValueError) as error:
        reason = getattr(error, "reason", None) or error
        host = urllib.parse.urlsplit(url).netloc or url
        raise DownloadError(
            f"cannot reach {host} ({reason}): check the network connection, or download the "
            "file on another computer and import it"
        ) from None


def _range_starts_at(response: http.client.HTTPResponse, offset: int) -> bool:
    """Whether a 206 answer's ``Content-Range: bytes START-END/SIZE`` starts at ``offset``."""
    unit, _, spans = response.headers.get("Content-Range", "").partition(" ")
    start = spans.partition("-")[0]
    return unit == "bytes" and start.isdigit() and int(start) == offset


def _place_from_zip(
    backbone: Backbone,
    part: Path,
    url: str,
    table: ChecksumTable | None,
    folder: Path,
    cancel: CancelFlag | None,
) -> BackboneState:
    """Extract the model zoo's ``.params`` from the downloaded zip into the store, checking
    its SHA-1 before it is placed."""
    wanted_sha1 = backbone.sha1(table)
    member_name = f"{backbone.zoo_file_name(table)}.params"
    try:
        archive = zipfile.ZipFile(part)
    except (zipfile.BadZipFile, OSError) as error:
        raise DownloadError(f"what {url} sent is not the model zoo's zip ({error})") from None
    with archive:
        members = archive.infolist()
        if len(members) > MAX_ZIP_MEMBERS:
            raise DownloadError(f"the zip from {url} holds {len(members)} files, not one")
        member = next((m for m in members if Path(m.filename).name == member_name), None)
        if member is None:
            raise DownloadError(f"the zip from {url} holds no {member_name}")
        if member.file_size > MAX_DOWNLOAD_BYTES:
            raise DownloadError(f"{member_name} in {url} is {_megabytes(member.file_size)}")

        def write(temporary: Path) -> None:
            try:
                with archive.open(member) as source, temporary.open("wb") as target:
                    while chunk := source.read(_CHUNK):
                        check_cancel(cancel)
                        target.write(chunk)
            except (zipfile.BadZipFile, zlib.error, EOFError) as error:
                raise DownloadError(f"the zip from {url} is damaged ({error})") from None

        def check(temporary: Path, sha1: str) -> Backbone:
            if sha1 != wanted_sha1:
                raise DownloadError(
                    f"{member_name} from {url} has SHA-1 {sha1[:8]}…, not the model zoo's "
                    f"{wanted_sha1[:8]}… (a damaged or altered file): nothing was kept"
                )
            return backbone

        return place(write, check, Origin("download", url), folder)


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB"
