"""A log file as its uncompressed byte stream: plain, `.gz` or `.tar.gz`, damage included.

gzip is inflated here with zlib rather than through `gzip.GzipFile`, whose buffered reads fill
a whole buffer before returning: a file cut short there loses every line of its last megabyte
(a small file, all of them). `_Gunzip` hands out whatever inflated before a damage, then raises,
so the reader keeps every line it could decode and reports the damage where reading stopped.
"""

from __future__ import annotations

import io
import os
import tarfile
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from musicbox.rawlogs.errors import UnreadableLogError
from musicbox.rawlogs.names import LogFile

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

# What reading a damaged file raises: I/O, a compressed stream cut short (EOFError), a bad
# deflate block or checksum (zlib.error), a broken tar header (TarError), a tarball without a log.
READ_ERRORS = (OSError, EOFError, zlib.error, tarfile.TarError, UnreadableLogError)
_BUFFER = 1 << 20
_CHUNK = 1 << 16  # compressed bytes inflated at a time
_SALVAGE_STEP = 64  # compressed bytes a time when replaying a failed chunk: what a damage can cost
_GZIP_WBITS = 16 + zlib.MAX_WBITS  # a gzip header and trailer: zlib checks each member's CRC-32 and size
# Deflate cannot expand data by more than ~1032:1; a trailer claiming more is not a size.
_MAX_DEFLATE_RATIO = 1032


@contextmanager
def open_log(log: LogFile) -> Iterator[tuple[Iterable[bytes], int]]:
    """The file's uncompressed byte stream and its uncompressed size in bytes.

    Raises one of READ_ERRORS, when the file is damaged, at the line where reading stops; for a
    tarball, also after its log's last line (its gzip checksum is checked at the end). tarfile
    reads in 10 KB records, so a tarball's damage also takes the lines of the record it falls in."""
    if log.compression == "none":
        with open(log.path, "rb", buffering=_BUFFER) as stream:
            yield stream, os.fstat(stream.fileno()).st_size
    elif log.compression == "gz":
        size = gzip_size(log.path)
        with open(log.path, "rb") as packed, io.BufferedReader(_Gunzip(packed), _BUFFER) as stream:
            yield stream, size
    else:
        with (
            open(log.path, "rb") as packed,
            io.BufferedReader(_Gunzip(packed), _BUFFER) as tar_stream,
            tarfile.open(fileobj=tar_stream, mode="r|") as archive,
        ):
            for member in archive:
                name = os.path.basename(member.name)
                # "._x.log" are macOS resource forks that tar picks up beside the real file.
                if member.isfile() and name.endswith(".log") and not name.startswith("._"):
                    member_stream = archive.extractfile(member)
                    if member_stream is not None:
                        yield member_stream, member.size
                        # The rest of the tarball (padding, end blocks), for the gzip checksum.
                        while tar_stream.read(_BUFFER):
                            pass
                        return
        raise UnreadableLogError("it holds no .log file: a .log.tar.gz must hold exactly one")


def gzip_size(path: Path) -> int:
    """Uncompressed size: the gzip trailer's ISIZE, or a counting pass when ISIZE cannot be it.

    ISIZE is the size mod 2^32 of the last member only; text never comes out smaller than its
    compressed form, so an ISIZE below the compressed size means a wrapped (> 4 GiB) or
    multi-member file, and only decompressing tells the true size. An ISIZE beyond what deflate
    can expand to is no size at all (a file cut short ends in compressed data): the counting
    pass then gives the size of what can be read."""
    compressed = path.stat().st_size
    with open(path, "rb") as stream:
        stream.seek(max(compressed - 4, 0))
        isize = int.from_bytes(stream.read(4), "little")
    if compressed <= isize <= _MAX_DEFLATE_RATIO * compressed:
        return isize
    total = 0
    with open(path, "rb") as packed:
        inflated = _Gunzip(packed)
        try:
            while chunk := inflated.read(_BUFFER):
                total += len(chunk)
        except READ_ERRORS:
            pass  # the read itself reports the damage, at the line where it stops
    return total


class _Gunzip(io.RawIOBase):
    """The uncompressed bytes of a gzip file of one or more members, inflated as they are read.

    What inflated before a damage is handed out before the error is raised: zlib drops the
    output of a call that fails, so that call is replayed in small steps from a copy of the
    inflater taken before it. An empty file, a file cut inside a member and bytes after the last
    member that are not gzip are damage too."""

    def __init__(self, packed: BinaryIO) -> None:
        self._packed = packed
        self._inflater = zlib.decompressobj(_GZIP_WBITS)
        self._input = b""  # compressed bytes not yet inflated
        self._output = b""
        self._taken = 0  # bytes of _output already handed out
        self._in_member = False
        self._members = 0
        self._error: UnreadableLogError | None = None  # raised once the output before it is taken

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        while self._taken >= len(self._output):
            if self._error is not None:
                raise self._error
            if not self._inflate():
                return 0
        with memoryview(buffer) as view:
            n = min(len(view), len(self._output) - self._taken)
            view[:n] = self._output[self._taken : self._taken + n]
        self._taken += n
        return n

    def _inflate(self) -> bool:
        """Inflate the next piece into _output; False at the clean end of the file."""
        if not self._input:
            self._input = self._packed.read(_CHUNK)
            if not self._input:
                if self._in_member:
                    raise EOFError("the file ends inside its compressed data: it was cut short")
                if self._members == 0:
                    raise EOFError("the file is empty: no gzip data at all")
                return False
        if not self._in_member:
            self._inflater = zlib.decompressobj(_GZIP_WBITS)
            self._in_member = True
        before = self._inflater.copy()
        try:
            self._output, self._taken = self._inflater.decompress(self._input, _BUFFER), 0
        except zlib.error as exc:
            self._output, self._taken = _salvage(before, self._input), 0
            self._error = UnreadableLogError(_explain(exc))
            self._error.__cause__ = exc
            return True
        if self._inflater.eof:
            self._input = self._inflater.unused_data
            self._in_member = False
            self._members += 1
        else:
            self._input = self._inflater.unconsumed_tail
        return True


def _salvage(inflater: zlib._Decompress, data: bytes) -> bytes:
    """What `inflater` gives for `data` up to the byte where it fails, fed a few bytes at a time."""
    out = []
    try:
        for at in range(0, len(data), _SALVAGE_STEP):
            out.append(inflater.decompress(data[at : at + _SALVAGE_STEP]))
    except zlib.error:
        pass
    return b"".join(out)


def _explain(exc: zlib.error) -> str:
    """zlib's complaint in the reader's words."""
    # The gzip trailer's CRC-32 or size does not match what inflated.
    if "incorrect data check" in str(exc) or "incorrect length check" in str(exc):
        return (
            f"its gzip checksum does not match the data ({exc}): a corrupt byte somewhere in the file, "
            "so the lines read before this point may hold garbage from it"
        )
    return f"corrupt compressed data ({exc})"
