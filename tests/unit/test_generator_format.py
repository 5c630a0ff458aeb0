"""The generator writes the real raw format: names, fields, trailing spaces, shards, compression, bytes."""

from __future__ import annotations

import json
import re
import tarfile
from datetime import date
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest

from producers.generator.generate import GeneratorConfig, generate
from producers.generator.population import shard_of
from producers.generator.writer import read_back

START = date(2017, 3, 30)
NAME = re.compile(r"^(\d{8})_([1-3])_(play|down|search)\.log(\.gz|\.tar\.gz)?$")
FIELD_COUNT = {"play": 9, "down": 6, "search": 4}
CJK = re.compile(r"[\u4e00-\u9fff]")


def _run(out: Path, **kw: object) -> Path:
    args: dict[str, object] = {"users": 300, "days": 3, "start": START, "seed": 7, "compression": "none"}
    args.update(kw)
    generate(GeneratorConfig(**args), out)  # type: ignore[arg-type]
    return out


def _logs(out: Path) -> dict[str, bytes]:
    return {p.name: read_back(p) for p in sorted(out.iterdir()) if NAME.match(p.name)}


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    return _logs(_run(tmp_path_factory.mktemp("clean"), dirt=frozenset()))


def test_file_names_cover_every_day_shard_and_type(clean: dict[str, bytes]) -> None:
    # 3 days x 3 shards x 3 types, none missing: the real artefact days are not in this range.
    keys = {NAME.match(n).groups()[:3] for n in clean}  # type: ignore[union-attr]
    days = ("20170330", "20170331", "20170401")
    assert keys == {(d, str(k), t) for d in days for k in (1, 2, 3) for t in ("play", "down", "search")}


def test_every_clean_line_has_its_field_count_and_a_trailing_space_per_field(clean: dict[str, bytes]) -> None:
    for name, data in clean.items():
        file_type = NAME.match(name).group(3)  # type: ignore[union-attr]
        text = data.decode("utf-8")  # strict: the files are UTF-8
        assert text.endswith("\n")
        for line in text[:-1].split("\n"):
            fields = line.split("\t")
            assert len(fields) == FIELD_COUNT[file_type], line
            assert all(f.endswith(" ") and not f[:-1].endswith(" ") for f in fields), line
            assert fields[0][:-1].isdigit() and int(fields[0]) > 0
            assert fields[1].strip() in {"ar", "ip", "mc"}


def test_play_and_download_values_are_sane(clean: dict[str, bytes]) -> None:
    plays = [ln.split("\t") for n, d in clean.items() if "_play" in n for ln in d.decode().splitlines()]
    downs = [ln.split("\t") for n, d in clean.items() if "_down" in n for ln in d.decode().splitlines()]
    assert len(plays) > 1_000 and len(downs) > 20
    for f in plays:
        assert 1 <= int(f[2]) < 2**31  # a real song id: no sentinel, no 0
        assert f[3].strip() in {"0", "1", "2", "3"}
        assert 0 <= int(f[6]) <= int(f[7]) <= 4_800  # never more than the song
        assert f[8] == "0 "  # paid_flag: always 0
    for f in downs:
        assert int(f[2]) >= 1 and f[5] == "0 "
    titles = [f[4].strip() for f in plays] + [f[5].strip() for f in plays]
    assert sum(bool(CJK.search(t)) for t in titles) > 0.5 * len(titles)  # UTF-8 is exercised
    assert all(t and "\t" not in t for t in titles)


def test_searches_carry_the_file_date_sorted_clock_and_a_percent_encoded_query(
    clean: dict[str, bytes],
) -> None:
    for name, data in clean.items():
        if "_search" not in name:
            continue
        day = date(int(name[:4]), int(name[4:6]), int(name[6:8])).isoformat()
        lines = [ln.split("\t") for ln in data.decode().splitlines()]
        stamps = [f[2].strip() for f in lines]
        assert all(re.fullmatch(rf"{day} \d\d:\d\d:\d\d", s) for s in stamps)
        assert stamps == sorted(stamps)  # sorted by time within a file
        for f in lines:
            query = f[3].strip()
            assert re.fullmatch(r"[A-Za-z0-9%._~-]+", query), query  # nothing unencoded
            assert unquote(query, errors="strict")


def test_each_uid_lives_in_the_shard_its_hash_names(clean: dict[str, bytes]) -> None:
    for name, data in clean.items():
        shard = int(NAME.match(name).group(2))  # type: ignore[union-attr]
        uids = np.array([int(ln.split("\t", 1)[0]) for ln in data.decode().splitlines()], dtype=np.int64)
        assert (shard_of(uids, 3) == shard).all(), name


@pytest.mark.parametrize("compression", ["gz", "tar.gz"])
def test_compressed_files_hold_the_same_lines_as_plain_ones(
    tmp_path: Path, clean: dict[str, bytes], compression: str
) -> None:
    out = _run(tmp_path, dirt=frozenset(), compression=compression)
    packed = _logs(out)
    assert {n.removesuffix(f".{compression}") for n in packed} == set(clean)
    for name, data in packed.items():
        assert data == clean[name.removesuffix(f".{compression}")]
    if compression == "tar.gz":  # like the real dumps: a tarball holding one .log of the same name
        some = next(iter(packed))
        with tarfile.open(out / some) as archive:
            assert [m.name for m in archive.getmembers()] == [some.removesuffix(".tar.gz")]


@pytest.mark.parametrize("compression", ["none", "gz", "tar.gz"])
def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path, compression: str) -> None:
    a = _run(tmp_path / "a", users=120, compression=compression)
    b = _run(tmp_path / "b", users=120, compression=compression)
    c = _run(tmp_path / "c", users=120, compression=compression, seed=8)
    files_a = sorted(p.name for p in a.iterdir())
    assert files_a == sorted(p.name for p in b.iterdir())
    for name in files_a:  # compressed bytes too: no timestamps or names in the headers
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    differ = [n for n in files_a if n.endswith(".json") or (a / n).read_bytes() != (c / n).read_bytes()]
    assert len(differ) == len(files_a)


def test_a_dirt_class_changes_only_its_own_lines(tmp_path: Path, clean: dict[str, bytes]) -> None:
    # Dirt draws from its own random streams: turning one class on leaves every other line as is.
    out = _run(tmp_path, dirt=frozenset({"play_time_garbage"}))
    manifest = json.loads((out / "manifest.json").read_text())
    changed = 0
    for name, data in _logs(out).items():
        old, new = clean[name].decode().splitlines(), data.decode().splitlines()
        assert len(old) == len(new)
        for a, b in zip(old, new, strict=True):
            if a != b:
                changed += 1
                fa, fb = a.split("\t"), b.split("\t")
                assert fa[:6] + fa[7:] == fb[:6] + fb[7:]  # only play_time differs
    assert changed == manifest["dirt"]["play_time_garbage"] > 0


def test_a_short_run_is_the_first_days_of_a_longer_one(tmp_path: Path) -> None:
    # Arrivals are drawn over a fixed horizon and every draw is keyed by day: days 1-2 of a
    # 4-day run are byte for byte the 2-day run, so a small test data set is a true prefix.
    short = _logs(_run(tmp_path / "short", users=150, days=2))
    long = _logs(_run(tmp_path / "long", users=150, days=4))
    assert len(short) == 18 and len(long) == 36
    assert all(long[name] == data for name, data in short.items())
