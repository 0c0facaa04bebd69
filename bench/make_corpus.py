#!/usr/bin/env python3
"""Writes bench/data/chat-corpus.jsonl: a seeded, realistic mix of chat messages.

Mostly short Japanese and English turns, some medium mixed ones, 2 % near the
16 KiB limit, and a sprinkle of messages the checks refuse. The same file feeds
the Rust benchmark and the Python baseline (bench/python_baseline.py).
"""

import json
import random
from pathlib import Path

rng = random.Random(20261125)
JA = [
    "こんにちは！", "おすすめの漫画を教えてください。", "『鬼滅の刃』の最新巻はありますか？",
    "ワンピースの全巻セットはいくらですか。", "配送状況を確認したいです。", "ありがとうございます。",
    "少女漫画でおすすめはありますか？", "電子書籍版もありますか", "注文番号は 12345 です。",
    "ﾜﾝﾋﾟｰｽ", "か\u3099んば\u3099ります", "進撃の巨人\u3000全巻", "異世界ものが好きです。",
]
EN = [
    "Hi!", "Do you have the latest volume of Chainsaw Man?", "Where is my order?",
    "Can you recommend something like Frieren?", "Is the box set in stock?", "Thanks a lot",
    "What's the difference between the tankobon and kanzenban editions?", "Ship to Canada?",
]
BAD = ["<script>alert(1)</script>", "{{7*7}}", "javascript:void(0)", "漫画 Привет", "a\x00b"]


def short():
    pool = JA if rng.random() < 0.6 else EN
    return " ".join(rng.choice(pool) for _ in range(rng.randint(1, 3)))


def medium():
    parts = [rng.choice(JA + EN) for _ in range(rng.randint(15, 60))]
    return " ".join(parts)


def near_limit():
    text = ""
    while len((text + JA[1]).encode()) <= 16_300:
        text += rng.choice(JA)
    return text


messages = []
for i in range(2000):
    r = rng.random()
    if r < 0.02:
        messages.append(near_limit())
    elif r < 0.10:
        messages.append(medium())
    elif r < 0.12:
        messages.append(short() + rng.choice(BAD))
    elif r < 0.14:
        messages.append("\u200b " + short() + "\ufeff ")
    else:
        messages.append(short())

out = Path(__file__).resolve().parent / "data" / "chat-corpus.jsonl"
out.write_text("".join(json.dumps({"message": m}, ensure_ascii=False) + "\n" for m in messages), encoding="utf-8")
total = sum(len(m.encode()) for m in messages)
print(f"{len(messages)} messages, {total} bytes of UTF-8 -> {out}")
