"""All file I/O of proxytask: one small layer over fsspec with atomic writes.

Paths are plain strings: a local path (``/runs/x``), a ``file://`` URL, or any fsspec URL
(``memory://``, ``s3://bucket/x``, ``gs://bucket/x``). No other module talks to fsspec.
A Vertex AI Cloud Storage FUSE path ``/gcs/<bucket>/<path>`` means ``gs://<bucket>/<path>``
on a machine with no ``/gcs`` mount, as on Vertex (:func:`resolve_url`); where ``/gcs`` is
mounted it stays a local path.

Credentials and endpoints are each filesystem's usual ones; proxytask passes none. For
``s3://`` (s3fs): ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``,
``~/.aws`` or an instance role; an S3-compatible server through fsspec's configuration, e.g.
``FSSPEC_S3_ENDPOINT_URL=http://host:9000`` in the environment (read when fsspec is
imported, so set it before the process starts; trial processes inherit it). For ``gs://``
(gcsfs): ``GOOGLE_APPLICATION_CREDENTIALS`` or the machine's service account. Buckets must
exist: proxytask never creates one.

Atomicity: on a local disk a write goes to a temporary file in the same folder and is
renamed over the target (``os.replace``), so a reader sees the old or the new file, never a
torn one. Object stores (S3, GCS) publish a whole object in one PUT (or one completed
multipart upload), which is atomic by their own contract, so the bytes are put directly.

Freshness: several processes (controller, trainers, latency workers, on any machines) share
these files, so every read asks the storage itself. fsspec filesystems such as s3fs keep a
per-process cache of folder listings, which would hide files that other processes create
(and answer ``exists``/``info`` from a stale listing); each read here drops the cached
listings of its path first. S3 and GCS give read-after-write consistency, so a read then
sees every completed write.
"""

from __future__ import annotations

import errno
import functools
import inspect
import json
import logging
import os
import posixpath
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from proxytask.core.errors import CorruptFileError, StorageError, UsageError

__all__ = [
    "copy_file",
    "create_exclusive",
    "exists",
    "file_signature",
    "is_local",
    "is_shared",
    "join",
    "listdir",
    "makedirs",
    "move",
    "read_bytes",
    "read_json",
    "read_text",
    "remove",
    "resolve_url",
    "to_local_path",
    "url_protocol",
    "write_bytes_atomic",
    "write_json_atomic",
    "write_text_atomic",
]

logger = logging.getLogger(__name__)


#: Where Vertex AI mounts Cloud Storage buckets (Cloud Storage FUSE): ``/gcs/<bucket>/...``.
GCS_FUSE_ROOT = "/gcs/"


def _gcs_fuse_mounted() -> bool:
    return os.path.isdir(GCS_FUSE_ROOT)


def resolve_url(url: str) -> str:
    """The URL proxytask reads and writes for ``url``: ``/gcs/<bucket>/<path>`` becomes
    ``gs://<bucket>/<path>`` when this machine has no ``/gcs`` folder (no Cloud Storage FUSE
    mount), as Vertex AI maps it; everything else is returned unchanged.

    Example (on a machine without ``/gcs``)::

        >>> resolve_url("/gcs/my-bucket/runs")  # doctest: +SKIP
        'gs://my-bucket/runs'
    """
    fuse = url.startswith(GCS_FUSE_ROOT) and len(url) > len(GCS_FUSE_ROOT)
    if fuse and not _gcs_fuse_mounted():
        return "gs://" + url[len(GCS_FUSE_ROOT) :]
    return url


@functools.cache
def _local_fs() -> Any:
    return LocalFileSystem()


def _fs(url: str) -> tuple[Any, str]:
    url = resolve_url(url)
    if "://" not in url and "::" not in url and ".." not in url.split("/"):
        # a local path: what fsspec would resolve, without its URL parsing (a controller
        # with 1,000 trials asks this for every file it stats or reads, every step)
        return _local_fs(), os.path.abspath(os.path.expanduser(url))
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


def _fresh_fs(url: str) -> tuple[Any, str]:
    """``_fs`` for a read: cached folder listings of ``url`` and its parents are dropped."""
    fs, path = _fs(url)
    if not isinstance(fs, LocalFileSystem):
        # s3fs/gcsfs answer ls, exists and info from listings cached in this process, which
        # never see files that other processes create later. Dropping them is a dict pop.
        fs.invalidate_cache(path)
    return fs, path


# fsspec protocols of object stores: no folders (a key is created with its whole "path"),
# so writes need no makedirs, which on s3fs costs a request and may even create a bucket.
_OBJECT_STORE_PROTOCOLS = frozenset({"s3", "s3a", "gs", "gcs", "abfs", "abfss", "az"})


def _is_object_store(fs: Any) -> bool:
    protocols = fs.protocol if isinstance(fs.protocol, (tuple, list)) else (fs.protocol,)
    return any(p in _OBJECT_STORE_PROTOCOLS for p in protocols)


# Protocols whose files only this machine (or only this process) can see.
_MACHINE_LOCAL_PROTOCOLS = frozenset({"file", "local"})
_PROCESS_LOCAL_PROTOCOLS = frozenset({"memory"})


def url_protocol(url: str) -> str:
    """Return the fsspec protocol of the storage that holds ``url``'s data.

    ``"file"`` for a plain path; for a chained URL (``simplecache::s3://b/x``) the protocol
    of the innermost target (``"s3"``); ``"gs"`` for a ``/gcs/`` path with no mount here
    (:func:`resolve_url`). No filesystem is imported or contacted.

    Example::

        >>> url_protocol("/runs/x"), url_protocol("s3://bucket/x")
        ('file', 's3')
    """
    target = resolve_url(url.rsplit("::", 1)[-1])
    protocol, _ = fsspec.core.split_protocol(target)
    return str(protocol) if protocol else "file"


def is_shared(url: str) -> bool:
    """Return True when other machines can reach ``url`` (any fsspec URL but local/memory).

    Pure (see :func:`url_protocol`). A local path is "not shared" even when it is an NFS
    mount, since proxytask cannot tell; ``memory://`` lives inside one process.

    Example::

        >>> is_shared("s3://bucket/runs"), is_shared("/runs"), is_shared("file:///runs")
        (True, False, False)
    """
    protocol = url_protocol(url)
    return protocol not in _MACHINE_LOCAL_PROTOCOLS | _PROCESS_LOCAL_PROTOCOLS


_CREDENTIAL_ERRORS = frozenset(
    {"NoCredentialsError", "PartialCredentialsError", "CredentialRetrievalError"}
)
_CONNECTION_ERRORS = frozenset({"EndpointConnectionError", "ConnectTimeoutError"})


def _explain_write_failure(url: str, exc: Exception) -> StorageError | None:
    """A teaching StorageError for a write to an object store that failed, or None."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    if isinstance(exc, PermissionError) or names & _CREDENTIAL_ERRORS:
        return StorageError(
            f"{url!r} must be writable with the credentials this process finds, got "
            f"{type(exc).__name__}: {exc}. Set the filesystem's usual credentials on every "
            "machine running the controller or trials (for s3: AWS_ACCESS_KEY_ID/"
            "AWS_SECRET_ACCESS_KEY, AWS_PROFILE or an instance role; for gs: "
            "GOOGLE_APPLICATION_CREDENTIALS)."
        )
    if isinstance(exc, FileNotFoundError):
        return StorageError(
            f"the bucket of {url!r} must exist, got {type(exc).__name__}: {exc}. Create it "
            "first (e.g. `aws s3 mb s3://BUCKET`) or fix the URL; proxytask never creates "
            "buckets."
        )
    if names & _CONNECTION_ERRORS:
        return StorageError(
            f"the storage endpoint of {url!r} must be reachable, got {exc}. Check the network "
            "and, for an S3-compatible server, FSSPEC_S3_ENDPOINT_URL."
        )
    return None


@contextmanager
def _explained_writes(fs: Any, url: str) -> Iterator[None]:
    if not _is_object_store(fs):
        yield
        return
    try:
        yield
    except Exception as exc:
        explained = _explain_write_failure(url, exc)
        if explained is None:
            raise
        raise explained from exc


def is_local(url: str) -> bool:
    """Return True when ``url`` is a path on this machine's file system.

    Unlike the pure :func:`is_shared`, this resolves the filesystem (so an unknown protocol
    raises UsageError): True exactly when :func:`to_local_path` works.
    """
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
    if _is_object_store(fs):
        return  # s3fs would send a request, and create the bucket if it is missing
    fs.makedirs(path, exist_ok=True)


def exists(url: str) -> bool:
    """Return True when a file or folder exists at ``url`` now (asking the storage)."""
    fs, path = _fresh_fs(url)
    return bool(fs.exists(path))


def listdir(url: str) -> list[str]:
    """Return the base names of the entries directly under ``url`` (sorted; [] if missing).

    The listing is fresh: files other processes created since the last call are in it.
    """
    fs, path = _fresh_fs(url)
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


def write_bytes_atomic(url: str, data: bytes, *, durable: bool = False) -> None:
    """Write ``data`` to ``url`` so that no reader ever sees a partial file.

    Local disk: temporary file + rename: a reader sees the old file or the new one, whatever
    happens to the writer. ``durable`` adds an ``fsync`` before the rename, so the new bytes
    also survive a power loss or a kernel crash: controller state files (the resume point)
    and exclusive claims use it; trial metrics, stop signals, heartbeats and event logs do
    not (a trainer reports again, a controller posts again). Object stores: one PUT (atomic
    per object, durable once it returns; see the module doc); a missing bucket, refused
    credentials or an unreachable endpoint raise StorageError saying what to fix.
    """
    fs, path = _fs(url)
    if isinstance(fs, LocalFileSystem):
        folder = os.path.dirname(path) or "."
        try:
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".part", dir=folder)
        except FileNotFoundError:  # the folder is new (checked only then: a mkdir per write
            os.makedirs(folder, exist_ok=True)  # cost a fifth of a replay's time)
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".part", dir=folder)
        try:
            os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; files are for everyone
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                if durable:
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
    with _explained_writes(fs, url):
        _makedirs_for(fs, path)
        fs.pipe_file(path, data)


def _makedirs_for(fs: Any, path: str) -> None:
    parent = posixpath.dirname(path)
    if parent and not _is_object_store(fs):
        fs.makedirs(parent, exist_ok=True)


def write_text_atomic(url: str, text: str, *, durable: bool = False) -> None:
    """Write UTF-8 text atomically (see :func:`write_bytes_atomic`)."""
    write_bytes_atomic(url, text.encode("utf-8"), durable=durable)


def write_json_atomic(url: str, obj: Any, *, durable: bool = False) -> None:
    """Serialise ``obj`` as strict JSON (no NaN) and write it atomically (``durable``: see
    :func:`write_bytes_atomic`)."""
    try:
        text = json.dumps(obj, indent=2, sort_keys=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise StorageError(
            f"data for {url!r} must be JSON-serialisable with finite numbers, got an error: "
            f"{exc}. Convert values to str/int/float/list/dict and drop NaN."
        ) from exc
    write_text_atomic(url, text + "\n", durable=durable)


def read_bytes(url: str) -> bytes | None:
    """Return the bytes at ``url``, or None when there is no such file."""
    fs, path = _fresh_fs(url)
    try:
        return bytes(fs.cat_file(path))
    except FileNotFoundError:
        return None
    except IsADirectoryError as exc:
        raise StorageError(f"{url!r} must be a file, got a folder. Point at the file.") from exc


def read_text(url: str) -> str | None:
    """Return the UTF-8 text at ``url``, or None when there is no such file.

    Raises CorruptFileError when the bytes are not UTF-8 text."""
    data = read_bytes(url)
    if data is None:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorruptFileError(
            f"{url!r} must be UTF-8 text, got bytes that are not (byte {exc.start}: "
            f"{data[exc.start : exc.start + 1]!r}). Save the file as UTF-8."
        ) from None


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
        raise CorruptFileError(
            f"{url!r} must hold valid JSON, got {len(data)} bytes that do not parse ({exc}). "
            "Repair the file, or restore it from a copy."
        ) from exc


def file_signature(url: str) -> tuple[Any, ...] | None:
    """Return a cheap change marker (size, mtime or ETag) for ``url``, or None if missing.

    Used by the trial monitor to re-read a file only when it changed. On object stores the
    marker comes from a fresh HEAD (ETag), never from a cached listing.
    """
    fs, path = _fresh_fs(url)
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
    """Move a file or folder (recursively) to ``dst`` on the same filesystem.

    Local disk: one ``os.replace`` (atomic). Object stores have no rename: each object is
    copied server-side, then the sources are deleted, so a crash in between leaves both
    copies and loses nothing; a missing ``src`` raises StorageError there.
    """
    fs, src_path = _fs(src)
    _, dst_path = _fs(dst)
    if isinstance(fs, LocalFileSystem):
        os.makedirs(os.path.dirname(dst_path) or ".", exist_ok=True)
        os.replace(src_path, dst_path)
        return
    if _is_object_store(fs):
        _move_objects(fs, src, src_path, dst_path)
        return
    fs.mv(src_path, dst_path, recursive=True)


def _move_objects(fs: Any, src: str, src_path: str, dst_path: str) -> None:
    # fs.mv(recursive=True) is broken on s3fs: it also copies the implied folders, which are
    # no objects, and fails. So: every object under src (or src itself), one by one.
    fs.invalidate_cache(src_path)
    root = src_path.rstrip("/")
    try:
        found = [str(name) for name in fs.find(root)]
    except FileNotFoundError:
        found = []
    pairs = [
        (name, dst_path if name == root else f"{dst_path.rstrip('/')}/{name[len(root) + 1 :]}")
        for name in found
        if name == root or name.startswith(root + "/")
    ]
    if not pairs:
        raise StorageError(f"{src!r} must exist to be moved, got nothing there.")
    fs.copy([a for a, _ in pairs], [b for _, b in pairs], on_error="raise")
    fs.rm([a for a, _ in pairs])


def remove_tree(url: str) -> None:
    """Delete the folder at ``url`` and everything under it; a missing folder is fine."""
    fs, path = _fs(url)
    if isinstance(fs, LocalFileSystem):
        shutil.rmtree(path, ignore_errors=True)
        return
    try:
        fs.rm(path, recursive=True)
    except FileNotFoundError:
        pass


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


def _error_codes(exc: BaseException) -> set[str]:
    """The object store's error codes carried by ``exc`` or the exceptions it came from."""
    codes: set[str] = set()
    seen: BaseException | None = exc
    for _ in range(5):  # s3fs wraps botocore's ClientError as the __cause__
        if seen is None:
            break
        response = getattr(seen, "response", None)
        if isinstance(response, dict):
            error = response.get("Error", {})
            if isinstance(error, dict):
                codes.add(str(error.get("Code", "")))
        seen = seen.__cause__ or seen.__context__
    codes.discard("")
    return codes


def _is_precondition_failure(exc: BaseException) -> bool:
    """True for an object store's "the object exists" answer (HTTP 412) to a conditional put."""
    markers = ("PreconditionFailed", "Precondition Failed")
    if _error_codes(exc) & {"412", *markers}:
        return True
    return any(marker in str(exc) for marker in markers)


def _is_conditional_conflict(exc: BaseException) -> bool:
    """True for S3's HTTP 409 ConditionalRequestConflict: a concurrent write; retry."""
    marker = "ConditionalRequestConflict"
    return marker in _error_codes(exc) or marker in str(exc)


# Retries of a conditional put that S3 answered with 409 (a concurrent conditional write
# was in flight): the retry gets 412 when the other one won, or succeeds when it failed.
_CONFLICT_RETRIES = 5
_CONFLICT_BACKOFF_SECS = 0.05

# (filesystem token, bucket) pairs whose server was seen to honour a conditional put.
_VERIFIED_CONDITIONAL_PUT: set[tuple[str, str]] = set()


def _conditional_put(fs: Any, path: str, data: bytes) -> bool:
    """One exclusive create through ``pipe_file(mode="create")``; True when it created."""
    for attempt in range(_CONFLICT_RETRIES):
        try:
            fs.pipe_file(path, data, mode="create")
            return True
        except FileExistsError:
            return False
        except Exception as exc:
            if _is_precondition_failure(exc):
                return False
            if not _is_conditional_conflict(exc) or attempt == _CONFLICT_RETRIES - 1:
                raise
            time.sleep(_CONFLICT_BACKOFF_SECS * 2**attempt)  # network retry, not a control loop
    raise AssertionError("unreachable")


def _check_conditional_put(fs: Any, url: str, path: str) -> None:
    """Once per bucket and process: prove the server refuses a second create of one key.

    Servers that ignore ``If-None-Match`` (or GCS's ``ifGenerationMatch``) would let every
    claimant win; a
    probe object next to ``path`` (created twice, then deleted) turns that into an error.
    """
    bucket = path.split("/", 1)[0]
    key = (str(getattr(fs, "_fs_token", id(fs))), bucket)
    if key in _VERIFIED_CONDITIONAL_PUT:
        return
    probe = posixpath.join(posixpath.dirname(path), f".proxytask-probe-{uuid.uuid4().hex}")
    try:
        if not _conditional_put(fs, probe, b"probe"):
            raise StorageError(f"the probe {probe!r} must be new, got an existing object.")
        honoured = not _conditional_put(fs, probe, b"probe again")
    finally:
        try:
            fs.rm_file(probe)
        except Exception:  # a left-over 5-byte probe is harmless; delete may be forbidden
            logger.debug("could not delete the probe %s", probe, exc_info=True)
    if not honoured:
        raise StorageError(
            f"storage for {url!r} must refuse a second create of one object (a conditional "
            "PUT with If-None-Match: *, or ifGenerationMatch=0 on GCS), got a server that "
            "overwrote it. Exclusive claims (latency workers) need it: use AWS S3 or Google "
            "Cloud Storage, or a compatible server that supports conditional writes (recent "
            "MinIO, Ceph RGW, fake-gcs-server), or a shared local/NFS path."
        )
    _VERIFIED_CONDITIONAL_PUT.add(key)


def create_exclusive(url: str, data: bytes) -> bool:
    """Create the file ``url`` holding ``data`` only if it does not exist yet.

    Returns True when this call created the file, False when it already existed. Exclusive
    (of several concurrent callers, on any machines sharing the storage, exactly one gets
    True) and atomic (readers see no file or the whole file). Used to claim work.

    Local disk: the bytes are written to a temporary file that is then hard-linked to the
    target name. fsspec: ``pipe_file(mode="create")`` where the filesystem implements it as a
    conditional put (memory://, s3fs and gcsfs versions that support it); any other
    filesystem raises StorageError, since a check-then-write would not be exclusive.

    On S3 this is one ``PUT`` with ``If-None-Match: *``: the server stores the object only
    if the key is absent and answers 412 otherwise, so exclusivity is the server's (AWS S3
    guarantees it); a 409 (a concurrent conditional write in flight) is retried. Servers
    that ignore the header would let every caller win, so the first call per bucket and
    process checks the server with a probe object and raises StorageError if it does.

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
    with _explained_writes(fs, url):
        _makedirs_for(fs, path)
        if _is_object_store(fs):
            _check_conditional_put(fs, url, path)
        return _conditional_put(fs, path, data)
