"""Differential pattern fuzzing: the core's policy patterns against Python's re.

Random patterns from the pattern language both sides read alike (literals,
escapes, classes, groups, quantifiers, anchors, `\\b` beside a literal) and
random texts biased toward the edges (case-folding oddities such as U+017F,
U+212A, U+0345, sigma; word and non-word neighbours; combining marks;
newlines) go through `pattern-diff` (the core, natively and with the lazy
DFA the browser uses) and through `re.search(p, t, re.IGNORECASE)`, the
reference's semantics (tests/corpus/reference.py). A pattern the core
refuses (`invalid_pattern`) is fine; an accepted pattern must answer every
text as Python does, except for the documented differences (U+0130 and
U+0131, which Python folds onto `i` and simple case folding does not).

    python3 tests/differential/patterns.py [--pairs N] [--seed S] [--bin PATH ...]

Prints a summary; exits 1 and prints each disagreement (pattern, text, the
two answers) when there is one. scripts/pattern-diff.sh builds both binaries
and runs this.
"""

import argparse
import json
import random
import re
import subprocess
import sys
import threading
import time
import warnings

# Python warns about possible future set syntax in classes; those patterns
# are not generated, and a warning must not end up in the output.
warnings.simplefilter("ignore", FutureWarning)

# Documented differences (docs/contract-notes.md): a pair containing one of
# these is counted, not compared.
DOCUMENTED = {"\u0130", "\u0131"}

# Python 3.11's re, with IGNORECASE, misses a character beyond the BMP that
# sits in a character set with other members: `[a\U00010400]` matches
# neither U+10400 nor U+10428, nor does `\U00010400|a`, which sre's
# optimizer turns into such a set (`[\U00010400]` and `\U00010400` alone
# match both). The core follows simple case folding there; a pattern with
# a character beyond the BMP and a set or an alternation is counted as
# Python's, not compared (docs/reliability.md).
def python_astral_set(p):
    astral = any(c > "\uffff" for c in p) or "\\U0001" in p
    return astral and ("[" in p or "|" in p)


# Characters whose case behaviour differs between tables or that sit at the
# word/non-word edge.
EDGE = [
    "\u017f",  # LATIN SMALL LETTER LONG S, folds with s
    "\u212a",  # KELVIN SIGN, folds with k
    "\u212b",  # ANGSTROM SIGN, folds with U+00E5
    "\u2126",  # OHM SIGN, folds with omega
    "\u0345",  # COMBINING YPOGEGRAMMENI (Mn), folds with iota
    "\u03b9", "\u0399", "\u1fbe",  # iota and its other folds
    "\u03c3", "\u03c2", "\u03a3",  # sigma, final sigma, capital sigma
    "\u03b8", "\u03d1", "\u03f4",  # theta and its variants
    "\u00b5", "\u03bc", "\u039c",  # micro sign and mu
    "\u00df", "\u1e9e",  # sharp s and its capital
    "\u01c4", "\u01c5", "\u01c6",  # DZ with caron: upper, title, lower
    "\u00e9", "\u00c9", "\u0065\u0301",  # e acute, precomposed and not
    "\u0301", "\u0308",  # combining marks
    "\u00b2", "\u2160", "\u2170",  # No, Nl (folds with U+2170)
    "\u203f", "\u200d", "\u00a0",  # connector punctuation, joiner, no-break space
    "\u30a2", "\u4e00", "\u0416",  # kana, ideograph, Cyrillic
    "\U00010400", "\U00010428",  # Deseret, a case pair beyond the BMP
    "\ufb00",  # ff ligature (full folding only)
]
ASCII = list("abcksxyzABCKSXYZ019_- .:<>/{}")
TEXT_POOL = ASCII + EDGE + ["\n", "\r", "\t", "\n"]
# The documented differences, rarely: enough to see them counted.
RARE = ["\u0130", "\u0131"]

# Pattern literals: characters with no meaning in either syntax.
PLAIN = list("abcksxyzABCKSXYZ019_ :<>/=\"'") + [
    c for c in EDGE if len(c) == 1 and c != "\u00a0"
]
ESCAPED_META = [".", "*", "+", "?", "(", ")", "[", "]", "{", "}", "|", "\\", "^", "$", "-"]
CLASS_RANGES = ["a-z", "A-Z", "0-9", "a-f", "k-s", "\u03b1-\u03c9", "\u0391-\u03a9",
                "\u00c0-\u00ff", "\u0100-\u017f", "\u2160-\u2188", "\u1e00-\u1eff"]


def hex_escape(rng, c):
    n = ord(c)
    if n < 0x100 and rng.random() < 0.5:
        return f"\\x{n:02x}"
    if n < 0x10000:
        return f"\\u{n:04X}" if rng.random() < 0.5 else f"\\u{n:04x}"
    return f"\\U{n:08x}"


def literal(rng):
    r = rng.random()
    if r < 0.70:
        return rng.choice(PLAIN)
    if r < 0.85:
        return "\\" + rng.choice(ESCAPED_META)
    if r < 0.95:
        return hex_escape(rng, rng.choice(PLAIN + ["-", ".", "\n"]))
    return rng.choice(["\\t", "\\n", "\\r", "\\f", "\\v", "\\a"])


def klass(rng):
    items = []
    for _ in range(rng.randint(1, 4)):
        r = rng.random()
        if r < 0.35:
            items.append(rng.choice(CLASS_RANGES))
        elif r < 0.80:
            c = rng.choice(PLAIN)
            items.append("\\" + c if c in "[]^-\\&~|" else c)
        elif r < 0.90:
            items.append("\\" + rng.choice(["]", "[", "-", "^", "\\", "."]))
        else:
            items.append(hex_escape(rng, rng.choice(PLAIN)))
    body = "".join(items)
    # Doubled set-operation characters read as set syntax in regex-syntax.
    for op in ("--", "&&", "~~", "||", "[["):
        if op in body:
            return "[a]"
    return "[" + ("^" if rng.random() < 0.3 else "") + body + "]"


def quantifier(rng):
    r = rng.random()
    if r < 0.6:
        return ""
    q = rng.choice(["?", "*", "+", "{2}", "{1,3}", "{0,2}", "{2,}", "{0}", "{1}"])
    if rng.random() < 0.2:
        q += "?"
    return q


def atom(rng, depth):
    r = rng.random()
    if r < 0.60:
        return literal(rng)
    if r < 0.70:
        return "."
    if r < 0.85:
        return klass(rng)
    if depth < 2:
        opener = rng.choice(["(", "(?:"])
        return opener + alternation(rng, depth + 1) + ")"
    return literal(rng)


def sequence(rng, depth):
    parts = []
    for _ in range(rng.randint(1, 5)):
        r = rng.random()
        if r < 0.05:
            parts.append(rng.choice(["^", "$", "\\A"]))
        else:
            parts.append(atom(rng, depth) + quantifier(rng))
    return "".join(parts)


def alternation(rng, depth):
    branches = [sequence(rng, depth) for _ in range(rng.choice([1, 1, 1, 2, 3]))]
    return "|".join(branches)


def pattern(rng):
    branches = []
    for _ in range(rng.choice([1, 1, 2])):
        body = sequence(rng, 0)
        # `\b` beside a literal at a branch's edge: the places the core allows.
        if rng.random() < 0.25:
            body = "\\b" + rng.choice(PLAIN) + body
        if rng.random() < 0.25:
            body = body + rng.choice(PLAIN) + "\\b"
        # `$` at a branch's end: where the core allows it.
        if rng.random() < 0.1:
            body = body + "$"
        branches.append(body)
    p = "|".join(branches)
    r = rng.random()
    if r < 0.05:
        p = "(?s)" + p
    elif r < 0.10:
        p = "(?m)" + p
    elif r < 0.12:
        # Refused by the core (Python reads these differently or the
        # rewrites cannot see through them): counted, never compared.
        p = rng.choice(["(?x)", "(?m:a)", "(?i)(?-m:b)"]) + p
    return p


def pieces_of(p):
    """Characters a text can borrow from its pattern so that matches happen."""
    return [c for c in p if c not in "\\()[]{}|?*+^$"] or ["a"]


def text(rng, borrow):
    out = []
    for _ in range(rng.randint(0, 10)):
        r = rng.random()
        if r < 0.45:
            out.append(rng.choice(borrow))
        elif r < 0.89:
            out.append(rng.choice(TEXT_POOL))
        elif r < 0.9:
            out.append(rng.choice(RARE))
        else:
            c = rng.choice(borrow)
            out.append(c.swapcase() if len(c.swapcase()) == 1 else c)
    if rng.random() < 0.1:
        out.append("\n")
    return "".join(out)


def python_answer(compiled, t):
    return compiled.search(t) is not None


def run(binary, cases, results, label):
    """Feeds `cases` to one binary; stores its answers in `results[label]`."""
    proc = subprocess.Popen([binary], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, encoding="utf-8", bufsize=1 << 20)

    def feed():
        for p, texts in cases:
            proc.stdin.write(json.dumps({"p": p, "t": texts}) + "\n")
        proc.stdin.close()

    writer = threading.Thread(target=feed)
    writer.start()
    answers = [json.loads(line) for line in proc.stdout]
    writer.join()
    if proc.wait() != 0 or len(answers) != len(cases):
        sys.exit(f"{binary} failed after {len(answers)} of {len(cases)} cases")
    results[label] = answers


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pairs", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--texts", type=int, default=20, help="texts per pattern")
    ap.add_argument("--bin", action="append", required=True,
                    help="a pattern-diff binary (give each engine's build)")
    args = ap.parse_args()

    rng = random.Random(args.seed)
    started = time.time()
    cases = []
    expected = []
    python_refused = 0
    while len(cases) * args.texts < args.pairs:
        p = pattern(rng)
        try:
            compiled = re.compile(p, re.IGNORECASE)
        except re.error:
            python_refused += 1
            continue
        borrow = pieces_of(p)
        texts = [text(rng, borrow) for _ in range(args.texts)]
        cases.append((p, texts))
        expected.append([python_answer(compiled, t) for t in texts])

    results = {}
    threads = [threading.Thread(target=run, args=(b, cases, results, b)) for b in args.bin]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if len(results) != len(args.bin):
        sys.exit("a pattern-diff binary failed")

    pairs = compared = documented = python_defect = matched = refused = 0
    disagreements = []
    for i, (p, texts) in enumerate(cases):
        answers = [results[b][i] for b in args.bin]
        refusals = {a["refused"] for a in answers}
        if len(refusals) > 1:
            disagreements.append((p, None, "engines", [a["refused"] for a in answers]))
            continue
        if answers[0]["refused"] is not None:
            refused += 1
            pairs += len(texts)
            continue
        for j, t in enumerate(texts):
            pairs += 1
            want = expected[i][j]
            got = [a["m"][j] for a in answers]
            if python_astral_set(p):
                python_defect += 1
                continue
            if DOCUMENTED & (set(p) | set(t)) or any(
                hex_escape_names(p, c) for c in DOCUMENTED
            ):
                documented += 1
                continue
            compared += 1
            matched += want
            if any(g != want for g in got):
                disagreements.append((p, t, want, got))

    summary = {
        "seed": args.seed,
        "patterns": len(cases),
        "pairs": pairs,
        "compared": compared,
        "python_matched": matched,
        "core_refused_patterns": refused,
        "python_refused_patterns": python_refused,
        "documented_difference_pairs": documented,
        "python_astral_class_pairs": python_defect,
        "disagreements": len(disagreements),
        "engines": len(args.bin),
        "seconds": round(time.time() - started, 1),
    }
    for p, t, want, got in disagreements[:50]:
        print(json.dumps({"pattern": p, "text": t, "python": want, "core": got},
                         ensure_ascii=True))
    print(json.dumps(summary))
    sys.exit(1 if disagreements else 0)


def hex_escape_names(p, c):
    """Whether `p` spells `c` as an escape (`\\u0130`): documented too."""
    n = ord(c)
    return f"\\u{n:04x}" in p.lower() or f"\\x{n:02x}" in p.lower()


if __name__ == "__main__":
    main()
