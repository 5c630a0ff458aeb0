"""Day files on disk: names, compression (none, gz, tar.gz), atomic and byte-reproducible writes."""

from __future__ import annotations

import gzip
import json
import os
import re
import tarfile
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, Protocol

from producers.generator.errors import GeneratorError

COMPRESSIONS = ("none", "gz", "tar.gz")
FILE_TYPES = ("play", "down", "search")
GZIP_LEVEL = 3  # ~3x smaller than plain (the real tarballs: 12 GB -> 3.96 GB) at a fraction of level 9's cost
_OUR_FILES = re.compile(r"^\d{8}_\d+_(play|down|search)\.log(\.gz|\.tar\.gz|\.plain)?(\.part)?$")
MANIFEST = "manifest.json"


def log_name(day: date, shard: int, file_type: str) -> str:
    return f"{day:%Y%m%d}_{shard}_{file_type}.log"


def file_name(day: date, shard: int, file_type: str, compression: str) -> str:
    suffix = "" if compression == "none" else f".{compression}"
    return log_name(day, shard, file_type) + suffix


def prepare_out_dir(out: Path, force: bool) -> None:
    """Create `out`; refuse to mix with an earlier data set unless `force`, then remove only its files."""
    if out.exists() and not out.is_dir():
        raise GeneratorError(f"{out} is a file; give --out a directory")
    out.mkdir(parents=True, exist_ok=True)
    ours = [p for p in out.iterdir() if p.is_file() and (_OUR_FILES.match(p.name) or p.name == MANIFEST)]
    if ours and not force:
        raise GeneratorError(
            f"{out} already holds {len(ours)} log or manifest files; choose an empty directory "
            "or pass --force to replace them (a stale day file would silently join the new data set)"
        )
    for p in ours:
        p.unlink()


@dataclass
class _Tar:
    plain: BinaryIO
    plain_path: Path


class LogSink:
    """One log file, written in chunks to `<name>.part` and renamed into place on `close`.

    gzip headers carry no name and a zero mtime, and tar members a fixed owner and the day's
    date, so the same input gives the same bytes on any machine and at any time.
    """

    def __init__(self, out: Path, day: date, shard: int, file_type: str, compression: str) -> None:
        if compression not in COMPRESSIONS:
            raise GeneratorError(
                f"unknown compression {compression!r}; choose from {', '.join(COMPRESSIONS)}"
            )
        self.name = file_name(day, shard, file_type, compression)
        self.log_name = log_name(day, shard, file_type)
        self.path = out / self.name
        self._part = out / (self.name + ".part")
        self._day = day
        self._compression = compression
        self.raw_bytes = 0
        self._file: BinaryIO = open(self._part, "wb")  # noqa: SIM115 (closed in close())
        self._gz: gzip.GzipFile | None = None
        self._tar: _Tar | None = None
        if compression == "gz":
            self._gz = gzip.GzipFile(
                filename="", mode="wb", fileobj=self._file, compresslevel=GZIP_LEVEL, mtime=0
            )
        elif compression == "tar.gz":
            plain_path = out / (self.log_name + ".plain.part")
            self._tar = _Tar(open(plain_path, "w+b"), plain_path)  # noqa: SIM115

    def write(self, data: bytes) -> None:
        self.raw_bytes += len(data)
        if self._gz is not None:
            self._gz.write(data)
        elif self._tar is not None:
            self._tar.plain.write(data)
        else:
            self._file.write(data)

    def close(self) -> None:
        if self._gz is not None:
            self._gz.close()
        if self._tar is not None:
            self._write_tarball(self._tar)
        self._file.close()
        os.replace(self._part, self.path)

    def _write_tarball(self, tar: _Tar) -> None:
        info = tarfile.TarInfo(self.log_name)
        info.size = self.raw_bytes
        info.mtime = (
            int(datetime(self._day.year, self._day.month, self._day.day, tzinfo=UTC).timestamp()) + 86_399
        )
        info.mode = 0o644
        tar.plain.seek(0)
        with (
            gzip.GzipFile(
                filename="", mode="wb", fileobj=self._file, compresslevel=GZIP_LEVEL, mtime=0
            ) as gz,
            tarfile.open(fileobj=gz, mode="w", format=tarfile.GNU_FORMAT) as archive,
        ):
            archive.addfile(info, tar.plain)
        tar.plain.close()
        tar.plain_path.unlink()


class _Sized(Protocol):
    raw_bytes: int


class WriteQueue:
    """Compression and disk writes on one background thread (zlib and file I/O release the GIL),
    in submission order, at most `depth` chunks ahead of the generating thread."""

    def __init__(self, depth: int = 3) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="musicbox-generate-writer")
        self._pending: deque[Future[None]] = deque()
        self._depth = depth

    def _submit(self, fn: Any, *args: Any) -> None:
        self._pending.append(self._pool.submit(fn, *args))
        while len(self._pending) > self._depth:
            self._pending.popleft().result()  # re-raises a write error here, in the caller

    def write(self, sink: LogSink, data: bytes) -> None:
        self._submit(sink.write, data)

    def close(self, sink: LogSink, stat: _Sized) -> None:
        """Close `sink` after its writes, then record its uncompressed size in `stat`."""

        def finish() -> None:
            sink.close()
            stat.raw_bytes = sink.raw_bytes

        self._submit(finish)

    def drain(self) -> None:
        while self._pending:
            self._pending.popleft().result()

    def __enter__(self) -> WriteQueue:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if exc is None:
                self.drain()
        finally:
            self._pool.shutdown(wait=True, cancel_futures=exc is not None)


def write_file(out: Path, day: date, shard: int, file_type: str, compression: str, data: bytes) -> LogSink:
    """One whole file at once (tests and small files)."""
    sink = LogSink(out, day, shard, file_type, compression)
    sink.write(data)
    sink.close()
    return sink


def read_back(path: Path) -> bytes:
    """The plain bytes of a file this module wrote (tests, stats checks); not the project's reader."""
    if path.name.endswith(".tar.gz"):
        with tarfile.open(path, "r:gz") as archive:
            member = archive.getmembers()[0]
            extracted = archive.extractfile(member)
            return extracted.read() if extracted else b""
    if path.name.endswith(".gz"):
        return gzip.decompress(path.read_bytes())
    return path.read_bytes()


def write_manifest(out: Path, manifest: dict[str, Any]) -> Path:
    """`manifest.json`: the ground truth of what was written (no timings, so it is reproducible too)."""
    path = out / MANIFEST
    part = out / (MANIFEST + ".part")
    part.write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(part, path)
    return path
