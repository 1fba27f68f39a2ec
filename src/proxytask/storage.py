"""All file I/O of proxytask: one small layer over fsspec with atomic writes.

Paths are plain strings: a local path (``/runs/x``), a ``file://`` URL, or any fsspec URL
(``memory://``, ``s3://bucket/x``, ``gs://bucket/x``). No other module talks to fsspec.

Atomicity: on a local disk a write goes to a temporary file in the same folder and is
renamed over the target (``os.replace``), so a reader sees the old or the new file, never a
torn one. Object stores (S3, GCS, memory) publish a whole object in one put, which is atomic
by their own contract, so the bytes are put directly.
"""

from __future__ import annotations

import json
import os
import posixpath
import tempfile
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from proxytask.errors import StorageError, UsageError

__all__ = [
    "copy_file",
    "exists",
    "file_signature",
    "is_local",
    "join",
    "listdir",
    "makedirs",
    "move",
    "read_bytes",
    "read_json",
    "read_text",
    "remove",
    "to_local_path",
    "write_bytes_atomic",
    "write_json_atomic",
    "write_text_atomic",
]


def _fs(url: str) -> tuple[Any, str]:
    try:
        fs, path = fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as exc:
        protocol = url.split("://", 1)[0] if "://" in url else "file"
        raise UsageError(
            f"storage URL {url!r} must use an installed fsspec filesystem, got protocol "
            f"{protocol!r} ({exc}). Install its package (s3fs for s3://, gcsfs for gs://) "
            "or use a local path."
        ) from exc
    return fs, path


def is_local(url: str) -> bool:
    """Return True when ``url`` is a path on this machine's file system."""
    return isinstance(_fs(url)[0], LocalFileSystem)


def to_local_path(url: str) -> str:
    """Return the plain local path of a local ``url``; raise UsageError for a remote one."""
    fs, path = _fs(url)
    if not isinstance(fs, LocalFileSystem):
        raise UsageError(f"path {url!r} must be on the local disk for this use. Use a local path.")
    return str(path)


def join(base: str, *parts: str) -> str:
    """Join path parts with ``/``, keeping a URL's protocol intact."""
    if "://" in base:
        protocol, rest = base.split("://", 1)
        return f"{protocol}://{posixpath.join(rest, *parts)}"
    return os.path.join(base, *parts)


def makedirs(url: str) -> None:
    """Create a folder and its parents; a no-op on object stores without folders."""
    fs, path = _fs(url)
    fs.makedirs(path, exist_ok=True)


def exists(url: str) -> bool:
    """Return True when a file or folder exists at ``url``."""
    fs, path = _fs(url)
    return bool(fs.exists(path))


def listdir(url: str) -> list[str]:
    """Return the base names of the entries directly under ``url`` (sorted; [] if missing)."""
    fs, path = _fs(url)
    try:
        entries = fs.ls(path, detail=False)
    except FileNotFoundError:
        return []
    names = {posixpath.basename(str(e).rstrip("/")) for e in entries}
    names.discard("")
    return sorted(names)


_UMASK: list[int] = []


def _umask() -> int:
    if not _UMASK:  # os.umask can only be read by setting it; do it once
        current = os.umask(0o022)
        os.umask(current)
        _UMASK.append(current)
    return _UMASK[0]


def write_bytes_atomic(url: str, data: bytes) -> None:
    """Write ``data`` to ``url`` so that no reader ever sees a partial file."""
    fs, path = _fs(url)
    if isinstance(fs, LocalFileSystem):
        folder = os.path.dirname(path) or "."
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".part", dir=folder)
        try:
            os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; files are for everyone
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
        return
    parent = posixpath.dirname(path)
    if parent:
        fs.makedirs(parent, exist_ok=True)
    fs.pipe_file(path, data)


def write_text_atomic(url: str, text: str) -> None:
    """Write UTF-8 text atomically (see :func:`write_bytes_atomic`)."""
    write_bytes_atomic(url, text.encode("utf-8"))


def write_json_atomic(url: str, obj: Any) -> None:
    """Serialise ``obj`` as strict JSON (no NaN) and write it atomically."""
    try:
        text = json.dumps(obj, indent=2, sort_keys=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise StorageError(
            f"data for {url!r} must be JSON-serialisable with finite numbers, got an error: "
            f"{exc}. Convert values to str/int/float/list/dict and drop NaN."
        ) from exc
    write_text_atomic(url, text + "\n")


def read_bytes(url: str) -> bytes | None:
    """Return the bytes at ``url``, or None when there is no such file."""
    fs, path = _fs(url)
    try:
        return bytes(fs.cat_file(path))
    except FileNotFoundError:
        return None
    except IsADirectoryError as exc:
        raise StorageError(f"{url!r} must be a file, got a folder. Point at the file.") from exc


def read_text(url: str) -> str | None:
    """Return the UTF-8 text at ``url``, or None when there is no such file."""
    data = read_bytes(url)
    return None if data is None else data.decode("utf-8")


def read_json(url: str) -> Any | None:
    """Return the parsed JSON at ``url``, or None when there is no such file.

    Raises StorageError when the file exists but is not valid JSON.
    """
    data = read_bytes(url)
    if data is None:
        return None
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StorageError(
            f"{url!r} must hold valid JSON, got {len(data)} bytes that do not parse ({exc}). "
            "Delete or repair the file; proxytask writes it again."
        ) from exc


def file_signature(url: str) -> tuple[Any, ...] | None:
    """Return a cheap change marker (size, mtime or ETag) for ``url``, or None if missing.

    Used by the trial monitor to re-read a file only when it changed.
    """
    fs, path = _fs(url)
    if isinstance(fs, LocalFileSystem):
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return None
        return (st.st_size, st.st_mtime_ns, st.st_ino)
    try:
        info = fs.info(path)
    except FileNotFoundError:
        return None
    marker = info.get("ETag") or info.get("etag") or info.get("mtime") or info.get("created")
    return (info.get("size"), str(marker), id(fs.store.get(path)) if hasattr(fs, "store") else 0)


def copy_file(src: str, dst: str) -> None:
    """Copy one file from ``src`` to ``dst`` (across filesystems too), atomically at ``dst``."""
    data = read_bytes(src)
    if data is None:
        raise StorageError(f"file {src!r} must exist to be copied, got nothing there.")
    write_bytes_atomic(dst, data)


def move(src: str, dst: str) -> None:
    """Move a file or folder (recursively) to ``dst`` on the same filesystem."""
    fs, src_path = _fs(src)
    _, dst_path = _fs(dst)
    if isinstance(fs, LocalFileSystem):
        os.makedirs(os.path.dirname(dst_path) or ".", exist_ok=True)
        os.replace(src_path, dst_path)
        return
    fs.mv(src_path, dst_path, recursive=True)


def remove(url: str) -> None:
    """Delete the file at ``url``; a missing file is fine."""
    fs, path = _fs(url)
    try:
        fs.rm_file(path)
    except FileNotFoundError:
        pass
