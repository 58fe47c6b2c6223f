"""The two fingerprints of the audit trail: a model's content digest, and a record's canonical JSON.

Both are defined exactly in docs/audit-record.md ("The model's content digest", "The ledger"); this module is
that definition in code. It is pure (standard library only, no I/O but the stream it is given) because two
programs must compute the same bytes: the pipeline's functions (DigestArtifact, SealRecord), deployed from
functions/, and `sagepipe runs verify`, installed from the sagepipe package, which cannot import functions/.
The file therefore exists twice, byte for byte: functions/common/audit_digests.py and
sagepipe/runs/audit_digests.py. tests/static/test_audit_digests_copies.py fails when they differ; edit one,
then copy it over the other.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import IO, Any

CHUNK_BYTES = 1024 * 1024

LEDGER_FIELDS = ("ledger_uri", "ledger_version_id", "ledger_sha256")
"""The record's own pointers to its ledger object: the only fields the ledger object does not contain."""

LEDGER_PREFIX = "ledger/"


class ContentDigestError(ValueError):
    """The archive has a member the content digest does not define (a device, an escaping path, ...)."""


class CanonicalJsonError(ValueError):
    """The value holds something canonical JSON does not define (a float, a set, bytes)."""


# ----------------------------------------------------------------------------------------- model content digest
@dataclass(frozen=True)
class ArchiveDigest:
    """A model archive's two fingerprints: of its bytes, and of the files it holds."""

    sha256: str
    """sha256 of the archive's bytes (changes with every packing: timestamps, owners, member order)."""
    size_bytes: int
    content_sha256: str
    """sha256 of the content lines (see content_lines): the same files give the same digest."""
    files: int
    """How many lines the content digest covers (regular files and links)."""


class _HashingReader:
    """Hashes and counts every byte read through it, so the archive is read once for both digests."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._sha256 = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        chunk = self._stream.read(size)
        self._sha256.update(chunk)
        self.size += len(chunk)
        return chunk

    def drain(self) -> None:
        """Read what the tar reader left (end-of-archive padding, the gzip trailer): the sha256 is of every byte."""
        for _ in iter(lambda: self.read(CHUNK_BYTES), b""):
            pass

    def hexdigest(self) -> str:
        return self._sha256.hexdigest()


def member_path(name: str) -> str:
    """A member's path as the content digest writes it: relative, without `./`, normalised, never escaping."""
    path = name
    while path.startswith("./"):
        path = path[2:]
    path = posixpath.normpath(path) if path else "."
    if "\n" in path or path.startswith("/") or path == ".." or path.startswith("../"):
        raise ContentDigestError(f"archive member {name!r} has a path the content digest does not allow")
    return path


def _file_sha256(stream: IO[bytes]) -> str:
    sha256 = hashlib.sha256()
    for chunk in iter(lambda: stream.read(CHUNK_BYTES), b""):
        sha256.update(chunk)
    return sha256.hexdigest()


def content_lines(entries: Mapping[str, str]) -> bytes:
    """`<digest>  <path>\\n` for each (path, digest), sorted by path (code point order), UTF-8."""
    return "".join(f"{entries[path]}  {path}\n" for path in sorted(entries)).encode("utf-8")


def digest_archive(stream: IO[bytes]) -> ArchiveDigest:
    """Both digests of a tar archive (gzip or not), reading the stream once with memory bounded by one chunk.

    Directories are skipped. A regular file contributes the sha256 of its content; a hard link the digest of
    the file it links to (what extracting it gives); a symbolic link `symlink:` and the sha256 of its target
    text. Anything else, a path that escapes the archive, or the same path twice, raises ContentDigestError.
    """
    reader = _HashingReader(stream)
    entries: dict[str, str] = {}
    regular: dict[str, str] = {}
    with tarfile.open(fileobj=reader, mode="r|*") as archive:  # type: ignore[call-overload]
        for member in archive:
            if member.isdir():
                continue
            path = member_path(member.name)
            if path in entries:
                raise ContentDigestError(f"archive member {path!r} appears twice")
            if member.isreg():
                content = archive.extractfile(member)
                if content is None:  # pragma: no cover - tarfile returns a reader for every regular file
                    raise ContentDigestError(f"archive member {path!r} cannot be read")
                entries[path] = regular[path] = _file_sha256(content)
            elif member.islnk():
                target = member_path(member.linkname)
                if target not in regular:
                    raise ContentDigestError(f"hard link {path!r} points at {target!r}, not an earlier regular file")
                entries[path] = regular[target]
            elif member.issym():
                entries[path] = "symlink:" + hashlib.sha256(member.linkname.encode("utf-8")).hexdigest()
            else:
                raise ContentDigestError(f"archive member {path!r} is neither a file, a link nor a directory")
    reader.drain()
    return ArchiveDigest(
        sha256=reader.hexdigest(),
        size_bytes=reader.size,
        content_sha256=hashlib.sha256(content_lines(entries)).hexdigest(),
        files=len(entries),
    )


# ----------------------------------------------------------------------------------------- canonical JSON
def _number(value: Decimal | int, where: str) -> str:
    if isinstance(value, int):
        return str(value)
    if not value.is_finite():
        raise CanonicalJsonError(f"{where}: {value} is not a number canonical JSON can write")
    if value == value.to_integral_value():
        return str(int(value))
    # Plain decimal notation of the exact value, no exponent, no trailing zeros: 0.956140 and 9.5614E-1 agree.
    return format(value.normalize(), "f")


def _write(value: Any, out: list[str], where: str) -> None:
    if value is None:
        out.append("null")
    elif isinstance(value, bool):
        out.append("true" if value else "false")
    elif isinstance(value, int | Decimal):
        out.append(_number(value, where))
    elif isinstance(value, str):
        out.append(json.dumps(value, ensure_ascii=False))
    elif isinstance(value, Mapping):
        out.append("{")
        for index, key in enumerate(sorted(value)):
            if not isinstance(key, str):
                raise CanonicalJsonError(f"{where}: key {key!r} is not a string")
            out.append(("," if index else "") + json.dumps(key, ensure_ascii=False) + ":")
            _write(value[key], out, f"{where}.{key}")
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for index, item in enumerate(value):
            if index:
                out.append(",")
            _write(item, out, f"{where}[{index}]")
        out.append("]")
    else:
        # float (inexact), set (unordered), bytes: an audit record has none of them.
        raise CanonicalJsonError(f"{where}: a {type(value).__name__} has no canonical JSON form")


def canonical_json(value: Any) -> bytes:
    """UTF-8 JSON with keys sorted by code point, no whitespace, and numbers as exact decimals.

    Values are what a DynamoDB document client reads (str, Decimal, bool, None, maps and lists); int is
    accepted too. Floats, sets and bytes raise CanonicalJsonError.
    """
    out: list[str] = []
    _write(value, out, "record")
    return "".join(out).encode("utf-8")


def ledger_body(record: Mapping[str, Any]) -> bytes:
    """The ledger object of a record: the canonical JSON of the record without its ledger fields."""
    return canonical_json({name: value for name, value in record.items() if name not in LEDGER_FIELDS})


def ledger_key(run_id: str) -> str:
    return f"{LEDGER_PREFIX}{run_id}.json"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
