#!/usr/bin/env python3
"""The Python baseline: check + sanitize + estimate over bench/data/chat-corpus.jsonl.

Uses tests/corpus/reference.py, our stdlib implementation of SPEC, which does
the same work per message as the design note's Python sketches (six regex
searches, a category scan, NFC, strip, two regex counts).
"""

import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "corpus"))
import reference as ref  # noqa: E402

corpus = ROOT / "bench" / "data" / "chat-corpus.jsonl"
messages = [json.loads(line)["message"] for line in corpus.read_text(encoding="utf-8").splitlines()]
nbytes = sum(len(m.encode()) for m in messages)

best = float("inf")
for _ in range(5):
    start = time.perf_counter()
    for m in messages:
        ref.check(m)
        ref.sanitize(m)
        ref.estimate(m)
    best = min(best, time.perf_counter() - start)

per_msg_us = best / len(messages) * 1e6
print(f"python {sys.version.split()[0]}: {len(messages)} messages, {nbytes} bytes")
print(f"best of 5: {best * 1000:.1f} ms = {len(messages) / best:,.0f} messages/s, "
      f"{per_msg_us:.1f} us/message, {nbytes / best / 1e6:.2f} MB/s")
