"""Plausible song names, singer names and search terms: mostly Chinese, some pinyin, English, Japanese.

Names exercise UTF-8 the way the real dumps do (CJK, kana, `&` between duet singers,
`(Live)` suffixes); none holds a TAB, a newline or edge spaces, so a clean line stays clean.
"""

from __future__ import annotations

import numpy as np

# Characters common in Chinese song titles and given names.
TITLE_CHARS = (
    "爱情心你我的梦天夜风雨花月星光海泪时间世界回忆等待永远一生相思离别"
    "春秋冬夏雪云山河城故乡青春少年女孩男人未来明天昨日今晚孤单寂寞快乐"
    "幸福温柔伤痛美丽自由飞翔歌唱舞蹈红白蓝色黑暗黎明晨曦星空月亮太阳"
    "远方路上家人朋友知己情人恋曲之后不再如果可以没有只是因为所以最好"
    "想念思念怀念告别重逢遇见偶然缘分约定誓言承诺秘密故事传说童话天使"
    "魔鬼英雄江湖侠客剑酒茶烟火灯影镜子窗外门前桥边小巷街角咖啡屋顶"
)
SURNAMES = (
    "王李张刘陈杨黄赵周吴徐孙马朱胡郭何林高罗郑梁谢宋唐许韩冯邓曹彭曾萧田董潘袁蔡蒋余于杜叶"
    "程魏苏吕丁任卢姚沈钟姜崔谭陆范汪廖石金韦贾夏付方邹熊白孟秦邱侯江尹薛段雷龙黎史陶贺毛郝"
)
GIVEN_CHARS = (
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红鹏辉建文斌宇浩凯健俊帆帅旭宁龙林欣悦晨雪琳菲"
)
KANA = "あいうえおかきくけこさしすせそたちつてとなにぬねのはひふへほまみむめもやゆよらりるれろわをん"
SYLLABLES = (
    "xiao",
    "ming",
    "yu",
    "hua",
    "li",
    "na",
    "jie",
    "lun",
    "fei",
    "er",
    "mei",
    "lan",
    "long",
    "tian",
    "xing",
    "yue",
    "feng",
    "chen",
    "hao",
    "jia",
    "qing",
    "ai",
    "wen",
    "zi",
    "kai",
    "shan",
    "ning",
)
ENGLISH_WORDS = (
    "Love",
    "Night",
    "Blue",
    "Dream",
    "Paper",
    "Star",
    "Rain",
    "Summer",
    "Forever",
    "Heart",
    "Fire",
    "Moon",
    "Shadow",
    "Light",
    "Sky",
    "Ocean",
    "Home",
    "Story",
    "Time",
    "Young",
    "Wild",
    "Angel",
)
SUFFIXES = ("(Live)", "(DJ版)", "(伴奏)", "-Remix", "(Movie Ver.)", "(钢琴版)", "(抒情版)")
# Searches that name no song or singer: moods, genres, occasions (one is in the real dumps: 毯子舞).
GENERIC_QUERIES = (
    "伤感",
    "经典老歌",
    "广场舞",
    "儿歌",
    "车载音乐",
    "英文歌",
    "粤语",
    "纯音乐",
    "毯子舞",
    "DJ",
    "网络歌曲",
    "情歌对唱",
    "轻音乐",
    "摇滚",
    "民谣",
    "古风",
    "电音",
    "抖腿",
    "睡前故事",
    "相声",
)


def _pick(pool: str | tuple[str, ...], rng: np.random.Generator, n: int) -> list[str]:
    return [pool[i] for i in rng.integers(0, len(pool), n)]


def _chinese(rng: np.random.Generator, n: int, lo: int, hi: int) -> list[str]:
    lengths = rng.integers(lo, hi + 1, n)
    chars = _pick(TITLE_CHARS, rng, int(lengths.sum()))
    ends = np.cumsum(lengths)
    return ["".join(chars[e - k : e]) for e, k in zip(ends.tolist(), lengths.tolist(), strict=True)]


def person_names(rng: np.random.Generator, n: int) -> list[str]:
    """Singer names: 2-3 character Chinese names, some pinyin or English acts, a few duets."""
    given = [
        a + (b if two else "")
        for a, b, two in zip(
            _pick(GIVEN_CHARS, rng, n), _pick(GIVEN_CHARS, rng, n), rng.random(n) < 0.6, strict=True
        )
    ]
    names = [s + g for s, g in zip(_pick(SURNAMES, rng, n), given, strict=True)]
    kind = rng.random(n)
    for i in np.flatnonzero(kind < 0.12).tolist():  # pinyin stage names, e.g. "Xiao Yu"
        a, b = rng.integers(0, len(SYLLABLES), 2)
        names[i] = f"{SYLLABLES[a].capitalize()} {SYLLABLES[b].capitalize()}"
    for i in np.flatnonzero((kind >= 0.12) & (kind < 0.18)).tolist():  # English band names
        a, b = rng.integers(0, len(ENGLISH_WORDS), 2)
        names[i] = f"{ENGLISH_WORDS[a]} {ENGLISH_WORDS[b]}s"
    for i in np.flatnonzero((kind >= 0.18) & (kind < 0.22)).tolist():  # duets, joined by "&"
        names[i] = f"{names[i]}&{names[(i + 7) % n]}"
    return names


def song_titles(rng: np.random.Generator, n: int) -> list[str]:
    """Song titles: mostly 2-6 Chinese characters, some English or Japanese, some with a suffix."""
    titles = _chinese(rng, n, 2, 6)
    kind = rng.random(n)
    for i in np.flatnonzero(kind < 0.08).tolist():
        words = rng.integers(0, len(ENGLISH_WORDS), 1 + int(rng.integers(0, 3)))
        titles[i] = " ".join(ENGLISH_WORDS[w] for w in words)
    for i in np.flatnonzero((kind >= 0.08) & (kind < 0.11)).tolist():
        titles[i] = "".join(_pick(KANA, rng, int(rng.integers(3, 8))))
    for i in np.flatnonzero(rng.random(n) < 0.06).tolist():
        titles[i] += SUFFIXES[int(rng.integers(0, len(SUFFIXES)))]
    return titles
