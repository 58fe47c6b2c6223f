"""The model content digest and the canonical JSON of the ledger, as docs/audit-record.md defines them."""

import gzip
import hashlib
import io
import tarfile
from decimal import Decimal

import pytest

from common.audit_digests import (
    LEDGER_FIELDS,
    CanonicalJsonError,
    ContentDigestError,
    canonical_json,
    content_lines,
    digest_archive,
    ledger_body,
    ledger_key,
)

FILES = {"model.joblib": b"\x80\x05model bytes" * 1000, "vocab/words.txt": "naïve\ncafé\n".encode()}


def archive(
    files: dict[str, bytes],
    *,
    mtime: int = 0,
    order: list[str] | None = None,
    prefix: str = "",
    compress: bool = True,
    directories: bool = True,
    owner: tuple[int, str] = (0, "root"),
) -> bytes:
    """A model.tar.gz as a packer would write it; the options are what packers differ in."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        if directories:
            for folder in sorted({name.rpartition("/")[0] for name in files if "/" in name}):
                info = tarfile.TarInfo(prefix + folder)
                info.type, info.mtime = tarfile.DIRTYPE, mtime
                tar.addfile(info)
        for name in order or list(files):
            info = tarfile.TarInfo(prefix + name)
            info.size, info.mtime, info.mode = len(files[name]), mtime, 0o644
            info.uid, info.uname = owner
            tar.addfile(info, io.BytesIO(files[name]))
    data = raw.getvalue()
    return gzip.compress(data, mtime=mtime) if compress else data


def content_digest(data: bytes) -> str:
    return digest_archive(io.BytesIO(data)).content_sha256


def test_repacking_changes_the_tarball_sha256_but_not_the_content_digest() -> None:
    """Given the same model packed twice as SageMaker would, with other timestamps, owners and member order,
    then the tarball sha256 differs and the content digest does not."""
    first = archive(FILES, mtime=1_700_000_000)
    second = archive(FILES, mtime=1_800_000_000, order=list(reversed(FILES)), owner=(1000, "sagemaker-user"))

    a, b = digest_archive(io.BytesIO(first)), digest_archive(io.BytesIO(second))

    assert a.sha256 != b.sha256
    assert a.content_sha256 == b.content_sha256
    assert (a.files, b.files) == (2, 2)


def test_the_digests_are_exactly_as_documented() -> None:
    """Given an archive, then sha256 and size are of every byte of it (gzip trailer included), and the content
    digest is the sha256 of `<sha256>  <path>\\n` lines sorted by path, UTF-8."""
    data = archive(FILES, prefix="./")
    expected_lines = "".join(f"{hashlib.sha256(FILES[name]).hexdigest()}  {name}\n" for name in sorted(FILES)).encode()

    digest = digest_archive(io.BytesIO(data))

    assert digest.sha256 == hashlib.sha256(data).hexdigest()
    assert digest.size_bytes == len(data)
    assert digest.content_sha256 == hashlib.sha256(expected_lines).hexdigest()
    assert content_lines({name: hashlib.sha256(body).hexdigest() for name, body in FILES.items()}) == expected_lines


@pytest.mark.parametrize(
    ("variant", "same"),
    [
        ({"prefix": "./"}, True),
        ({"compress": False}, True),
        ({"directories": False}, True),
        ({"files": {**FILES, "model.joblib": FILES["model.joblib"] + b"!"}}, False),
        ({"files": {**FILES, "extra.txt": b""}}, False),
        ({"files": {"renamed.joblib": FILES["model.joblib"], "vocab/words.txt": FILES["vocab/words.txt"]}}, False),
    ],
    ids=["dot-slash", "uncompressed", "no-directory-entries", "changed-byte", "added-file", "renamed-file"],
)
def test_the_content_digest_follows_the_files_and_nothing_else(variant: dict[str, object], same: bool) -> None:
    """Given one change to the archive, then the content digest changes exactly when a file's path or bytes do."""
    files = variant.pop("files", FILES)
    assert isinstance(files, dict)
    changed = archive(files, **variant)  # type: ignore[arg-type]
    assert (content_digest(changed) == content_digest(archive(FILES))) is same


def _tar(*members: tuple[tarfile.TarInfo, bytes | None]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for info, body in members:
            if body is not None:
                info.size = len(body)
            tar.addfile(info, io.BytesIO(body) if body is not None else None)
    return raw.getvalue()


def _info(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    return info


def test_links_are_part_of_the_content() -> None:
    """A hard link digests as the file it links to (extracting it gives that file); a symbolic link as
    `symlink:` and the sha256 of its target, so retargeting it changes the digest."""
    body = b"weights"
    hard = _tar((_info("model.bin"), body), (_info("alias.bin", tarfile.LNKTYPE, "model.bin"), None))
    copy = _tar((_info("model.bin"), body), (_info("alias.bin"), body))
    assert content_digest(hard) == content_digest(copy)

    def symlinked(target: str) -> str:
        return content_digest(_tar((_info("model.bin"), body), (_info("latest", tarfile.SYMTYPE, target), None)))

    assert symlinked("model.bin") != symlinked("other.bin")
    expected = content_lines(
        {"model.bin": hashlib.sha256(body).hexdigest(), "latest": "symlink:" + hashlib.sha256(b"model.bin").hexdigest()}
    )
    assert symlinked("model.bin") == hashlib.sha256(expected).hexdigest()


@pytest.mark.parametrize(
    ("members", "problem"),
    [
        ([(_info("a.bin"), b"1"), (_info("./a.bin"), b"2")], "appears twice"),
        ([(_info("../outside.bin"), b"1")], "path the content digest does not allow"),
        ([(_info("/etc/passwd"), b"1")], "path the content digest does not allow"),
        ([(_info("fifo", tarfile.FIFOTYPE), None)], "neither a file, a link nor a directory"),
        ([(_info("alias", tarfile.LNKTYPE, "missing.bin"), None)], "not an earlier regular file"),
    ],
    ids=["duplicate", "escaping", "absolute", "fifo", "dangling-hard-link"],
)
def test_archives_the_digest_does_not_define_are_refused(
    members: list[tuple[tarfile.TarInfo, bytes | None]], problem: str
) -> None:
    with pytest.raises(ContentDigestError, match=problem):
        content_digest(_tar(*members))


# ------------------------------------------------------------------------------------------------ canonical JSON
def test_canonical_json_sorts_keys_drops_whitespace_and_keeps_unicode() -> None:
    value = {"b": [True, None, "x"], "a": {"z": "é", "y": 1}, "é": 'naïve "quoted"\n'}
    assert canonical_json(value) == '{"a":{"y":1,"z":"é"},"b":[true,null,"x"],"é":"naïve \\"quoted\\"\\n"}'.encode()


@pytest.mark.parametrize(
    ("number", "written"),
    [
        (Decimal("0.956140"), "0.95614"),
        (Decimal("9.5614E-1"), "0.95614"),
        (Decimal("100"), "100"),
        (Decimal("1E+2"), "100"),
        (Decimal("2.0"), "2"),
        (Decimal("-0"), "0"),
        (Decimal("0.0000001"), "0.0000001"),
        (Decimal("12345678901234567890123456789012345678"), "12345678901234567890123456789012345678"),
        (7, "7"),
    ],
)
def test_numbers_are_written_as_their_exact_value_whatever_their_spelling(number: Decimal | int, written: str) -> None:
    """DynamoDB numbers are decimals of up to 38 digits; the same value is written the same way however it is
    spelt, and never through a float."""
    assert canonical_json({"n": number}) == f'{{"n":{written}}}'.encode()


@pytest.mark.parametrize("value", [0.5, {"a"}, b"bytes", Decimal("NaN")], ids=["float", "set", "bytes", "nan"])
def test_values_without_a_canonical_form_are_refused(value: object) -> None:
    with pytest.raises(CanonicalJsonError, match=r"record\.field"):
        canonical_json({"field": value})


def test_the_ledger_body_is_the_record_without_exactly_its_ledger_fields() -> None:
    """Given a sealed record, then the ledger body leaves out the three ledger fields and keeps everything else,
    including a field whose name merely starts with ledger_."""
    record = {"run_id": "r1", "ledger_note": "kept", **dict.fromkeys(LEDGER_FIELDS, "x")}
    assert ledger_body(record) == b'{"ledger_note":"kept","run_id":"r1"}'
    assert ledger_key("r1") == "ledger/r1.json"
