"""All file I/O of proxytask: one small layer over fsspec with atomic writes.

Paths are plain strings: a local path (``/runs/x``), a ``file://`` URL, or any fsspec URL
(``memory://``, ``s3://bucket/x``, ``gs://bucket/x``). No other module talks to fsspec.

Atomicity: on a local disk a write goes to a temporary file in the same folder and is
renamed over the target (``os.replace``), so a reader sees the old or the new file, never a
torn one. Object stores (S3, GCS, memory) publish a whole object in one put, which is atomic
by their own contract, so the bytes are put directly.
"""

from __future__ import annotations

import errno
import inspect
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
    "create_exclusive",
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


# errno values meaning "this filesystem cannot make hard links" (FAT, some SMB and FUSE mounts).
_NO_HARD_LINKS = frozenset(
    {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS, errno.EMLINK, errno.EXDEV}
)
# fsspec packages whose own pipe_file(mode="create") is a server-side conditional put
# (S3 If-None-Match, GCS ifGenerationMatch=0). The generic fallback in fsspec is an
# exists-then-write, which is not exclusive, so it is refused.
_CONDITIONAL_PUT_PACKAGES = ("s3fs", "gcsfs")


def _create_exclusive_local(path: str, data: bytes) -> bool:
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    if os.path.lexists(path):  # the common losing case, without a temporary file
        return False
    # The bytes go to a private temporary file (mkstemp: O_CREAT | O_EXCL), then a hard link
    # publishes it: link() fails when the name exists, so it is exclusive, and the file
    # appears complete, so no reader sees a half-written one. link() is atomic on NFS too.
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".part", dir=folder)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)
            return True
        except FileExistsError:
            return False
        except OSError as exc:
            if exc.errno not in _NO_HARD_LINKS:
                raise
        # No hard links here: O_EXCL is still exclusive, but a reader may briefly see the
        # file before its bytes (readers of exclusive files must tolerate an empty file).
        try:
            out = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
        except FileExistsError:
            return False
        with os.fdopen(out, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        return True
    finally:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass


def _supports_exclusive_create(fs: Any) -> bool:
    from fsspec.implementations.memory import MemoryFileSystem

    cls = type(fs)
    if cls.pipe_file is MemoryFileSystem.pipe_file:
        return True  # memory:// is a one-process test store: check-and-store is exclusive there
    for name in ("_pipe_file", "pipe_file"):
        impl = getattr(cls, name, None)
        module = getattr(impl, "__module__", "") or ""
        if callable(impl) and module.split(".", 1)[0] in _CONDITIONAL_PUT_PACKAGES:
            try:
                return "mode" in inspect.signature(impl).parameters
            except (TypeError, ValueError):
                return False
    return False


def _is_precondition_failure(exc: BaseException) -> bool:
    """True for an object store's "the object exists" answer to a conditional put."""
    markers = ("PreconditionFailed", "Precondition Failed", "ConditionalRequestConflict")
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = str(response.get("Error", {}).get("Code", ""))
        if code == "412" or code in markers:
            return True
    return any(marker in str(exc) for marker in markers)


def create_exclusive(url: str, data: bytes) -> bool:
    """Create the file ``url`` holding ``data`` only if it does not exist yet.

    Returns True when this call created the file, False when it already existed. Exclusive
    (of several concurrent callers, on any machines sharing the storage, exactly one gets
    True) and atomic (readers see no file or the whole file). Used to claim work.

    Local disk: the bytes are written to a temporary file that is then hard-linked to the
    target name. fsspec: ``pipe_file(mode="create")`` where the filesystem implements it as a
    conditional put (memory://, s3fs and gcsfs versions that support it); any other
    filesystem raises StorageError, since a check-then-write would not be exclusive.

    Example::

        if storage.create_exclusive(storage.join(trial_dir, "LATENCY_CLAIM.json"), b"{}"):
            ...  # this process owns the trial
    """
    fs, path = _fs(url)
    if isinstance(fs, LocalFileSystem):
        return _create_exclusive_local(str(path), data)
    if not _supports_exclusive_create(fs):
        raise StorageError(
            f"storage for {url!r} must support exclusive create (a conditional put), got "
            f"{type(fs).__module__}.{type(fs).__name__}, which can only check and then "
            "write. Use a local or NFS path, memory://, or a recent s3fs/gcsfs (s3://, gs://)."
        )
    parent = posixpath.dirname(path)
    if parent:
        fs.makedirs(parent, exist_ok=True)
    try:
        fs.pipe_file(path, data, mode="create")
    except FileExistsError:
        return False
    except Exception as exc:
        if _is_precondition_failure(exc):
            return False
        raise
    return True
