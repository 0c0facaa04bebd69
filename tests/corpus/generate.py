#!/usr/bin/env python3
"""Writes (or, with --check, verifies) the conformance corpus.

Usage:
    python3 tests/corpus/generate.py          # rewrite tests/corpus/*.jsonl
    python3 tests/corpus/generate.py --check  # fail if any file is stale

Every case below is run through reference.py, an independent implementation
of SPEC.md. A few cases are marked `by: "spec"`: there Python's `re` differs
from SPEC 3 (its IGNORECASE folds U+0130 and U+0131 onto `i`; Unicode simple
case folding does not), or where the project refuses a policy pattern that
Python would compile (docs/contract-notes.md), so the expected answer is
reasoned from SPEC and the notes and written here by hand, with the reason
in `note`.

One vector per line: {"name", "input", "expected"[, "by", "note"]}.
Expected values are written compactly with keys in the engines' order, so
runners can compare the engines' output byte for byte.
"""

import json
import sys
import unicodedata
from pathlib import Path

import reference as ref

HERE = Path(__file__).resolve().parent

# Keep Python-checked text inside Unicode 14 (Python 3.11's tables): code
# points assigned later are Cn to Python and assigned to the Rust crates.
assert unicodedata.unidata_version.startswith("14."), unicodedata.unidata_version


def vec(name, inp, expected, **extra):
    return {"name": name, "input": inp, "expected": expected, **extra}


# --------------------------------------------------------------------------
# Messages
# --------------------------------------------------------------------------

CHAT = {
    "ja_greeting": "こんにちは！おすすめの漫画を教えてください。",
    "ja_title_lookup": "『鬼滅の刃』の最新巻はいつ発売されますか？",
    "ja_kanji_only": "漫画本屋店員推薦作品",
    "ja_katakana": "ワンピースのコミックスを全巻セットで買いたいです",
    "ja_halfwidth_katakana": "ﾜﾝﾋﾟｰｽ ｺﾐｯｸｽ ｾｯﾄ",
    "ja_halfwidth_dakuten": "ｶﾞｷﾞｸﾞｹﾞｺﾞ",
    "ja_combining_dakuten": "か\u3099き\u3099く\u3099",
    "ja_combining_handakuten": "は\u309aひ\u309aふ\u309a",
    "ja_precomposed": "がぎぐぱぴぷ",
    "ja_polite_order": "注文番号 12345 の配送状況を確認したいのですが、よろしいでしょうか。",
    "ja_ideographic_space": "進撃の巨人\u3000全巻",
    "ja_long_vowel": "ラーメンとカレーが出てくる漫画ありますか～？",
    "ja_mixed_en": "ONE PIECE の 105 巻は在庫ありますか?",
    "zh_greeting": "你好，我想买一些日本漫画。",
    "zh_traditional": "請問《進擊的巨人》有繁體中文版嗎？",
    "ko_greeting": "안녕하세요, 만화책을 찾고 있어요.",
    "ru_greeting": "Здравствуйте! Есть ли манга на русском?",
    "uk_text": "Привіт, чи є у вас ґрунтовні видання?",
    "en_short": "Hi!",
    "en_question": "Do you have the latest volume of Chainsaw Man in stock?",
    "en_order": "Where is my order #A-1029? It was due yesterday.",
    "en_contractions": "I'd like a recommendation; something like Mushishi, but lighter.",
    "emoji_simple": "Thanks! 😀📚",
    "emoji_skin_tone": "Great service 👍🏽👍🏿",
    "emoji_flag": "Shipping to 🇯🇵?",
    "emoji_zwj_family": "👨\u200d👩\u200d👧",
    "emoji_zwj_in_text": "We loved it as a family: 👨\u200d👩\u200d👧\u200d👦 thank you so much for the quick delivery!",
    "emoji_keycap": "1\ufe0f\u20e3 volume please",
    "accents_composed": "Café crème à Zürich",
    "accents_decomposed": "Cafe\u0301 cre\u0300me",
    "hangul_jamo": "\u1100\u1161\u11a8",
    "greek": "Καλημέρα",
    "arabic": "مرحبا",
    "hebrew": "שלום",
    "thai": "สวัสดีครับ",
    "devanagari": "नमस्ते",
    "math": "x² + y² = z²",
    "fullwidth_latin": "ＡＢＣ１２３",
    "tab_newline": "line one\n\tline two\r\nline three",
    "only_spaces": "   ",
    "empty": "",
    "single_char": "a",
    "single_kanji": "漫",
    "punctuation": "!?.,;:'\"()[]{}<>",
    "url": "https://example.com/manga?id=42&lang=ja",
    "email": "reader@example.jp",
    "numbers": "1234567890",
    "digits_and_words": "abc123def 456ghi",
    "underscore_words": "snake_case_word",
    "apostrophes": "it's isn't",
    "script_word_no_angle": "I love the script of this manga",
    "javascript_word": "Is javascript required to browse?",
    "braces_single": "{ not a template }",
    "braces_unclosed": "{{ unclosed",
    "import_word": "import this",
    "os_word": "my os is linux and system is fine",
    "subprocess_word": "subprocess without dot",
    "private_use_single": "abc\ue000def ghi jkl mno pqr stu vwx",
    "soft_hyphen": "super\u00adcalifragilistic expialidocious words here",
    "bom_inside": "漫画\ufeffを探しています。おすすめはありますか？ありがとうございます。",
    "lrm_inside": "abc\u200edef and a few more words to dilute the ratio",
    "word_joiner": "no\u2060break here with plenty of other characters",
    "nbsp_inside": "a\u00a0b",
    "line_separator": "line\u2028break and more text to keep the ratio low okay",
    "cjk_ext_a": "\u3400\u3401",
    "cjk_compat": "\uf900\uf901",
    "cjk_symbols": "「」『』【】〒",
    "boundary_3000": "\u3000",
    "boundary_9fff": "\u9fff",
    "boundary_a000": "\ua000",
    "boundary_2ffb": "\u2ffb",
}

CHECK_CASES = dict(CHAT)

# Each code point sanitize removes, inside text long enough to stay under 5 %.
REMOVED = [chr(c) for c in range(0x200B, 0x2010)] + [chr(c) for c in range(0x2028, 0x2030)] + ["\ufeff"]
for ch in REMOVED:
    CHECK_CASES[f"removed_U+{ord(ch):04X}_diluted"] = "おすすめの" + ch + "漫画を教えてください。よろしくお願いします。"
    CHECK_CASES[f"removed_U+{ord(ch):04X}_short"] = "a" + ch + "b"

# Disallowed patterns, their case variants and simple case folding.
DISALLOWED_CASES = {
    "script_lower": "<script>alert(1)</script>",
    "script_upper": "<SCRIPT>alert(1)</SCRIPT>",
    "script_mixed": "<ScRiPt src=x>",
    "script_end": "<script",
    "script_space": "<script type=text/javascript>",
    "script_long_s": "<\u017fcript>",
    "script_long_s_upper": "<\u017fCRIPT>",
    "script_in_japanese": "こんにちは<script>です",
    "script_after_word_char_a": "<scripta",
    "script_after_underscore": "<script_",
    "script_after_digit": "<script1",
    "script_after_superscript_two": "<script\u00b2",
    "script_after_roman_numeral": "<script\u2160",
    "script_after_a_umlaut": "<script\u00e4",
    "script_after_kanji": "<script漫",
    "script_after_combining_acute": "<script\u0301 and more words so the ratio is low",
    "script_after_undertie": "<script\u203f",
    "script_after_zwj": "<script\u200d",
    "script_after_ypogegrammeni": "<script\u0345",
    "script_after_nbsp": "<script\u00a0",
    "script_after_newline": "<script\n",
    "script_after_fullwidth_digit": "<script\uff11",
    "script_after_fraction": "<script\u00bd",
    "script_after_modifier_letter": "<script\u02b0",
    "script_after_hyphen": "<script-x",
    "script_split": "<scr ipt>",
    "javascript_lower": "javascript:alert(1)",
    "javascript_upper": "JAVASCRIPT:void(0)",
    "javascript_mixed": "JaVaScRiPt:",
    "javascript_long_s": "java\u017fcript:",
    "javascript_in_link": "click <a href='javascript:x'>",
    "javascript_no_colon": "javascript alert",
    "template_simple": "{{7*7}}",
    "template_spaces": "{{ user.name }}",
    "template_japanese": "こんにちは{{名前}}さん",
    "template_across_newline": "{{ a\n }}",
    "template_newline_only": "{{\n}}",
    "template_second_line": "hello\n{{x}}",
    "template_two_lines_each_open": "{{a\n}}{{b}}",
    "template_cr_inside": "{{a\rb}}",
    "template_empty": "{{}}",
    "template_triple": "{{{x}}}",
    "template_unclosed_then_closed": "{{ a }",
    "import_lower": "__import__('os')",
    "import_upper": "__IMPORT__",
    "import_mixed": "__ImPoRt__",
    "os_system": "os.system('ls')",
    "os_system_upper": "OS.SYSTEM",
    "os_system_long_s": "o\u017f.\u017fy\u017ftem",
    "os_system_no_dot": "osXsystem",
    "subprocess": "subprocess.run(['ls'])",
    "subprocess_upper": "SUBPROCESS.Popen",
    "subprocess_long_s": "\u017fubproce\u017f\u017f.",
    "subprocess_no_dot": "subprocess run",
    "two_patterns_order": "javascript: <script>",
    "pattern_then_null": "<script>\x00",
}
CHECK_CASES.update(DISALLOWED_CASES)

# Null bytes and check order.
CHECK_CASES.update({
    "null_only": "\x00",
    "null_inside": "abc\x00def",
    "null_end": "漫画\x00",
    "null_many": "\x00" * 10,
    "control_then_mixed": "漫Ж\x01\x02",
    "control_and_pattern": "\x01\x02\x03<script>",
    "mixed_cjk_cyrillic": "漫画 Привет",
    "mixed_hiragana_cyrillic": "ありがとう Спасибо",
    "mixed_katakana_cyrillic": "マンガ манга",
    "mixed_hangul_cyrillic": "만화 манга",
    "mixed_3040_range_edge": "\u309f Ж",
    "mixed_30a0": "\u30a0 Ж",
    "mixed_30ff": "\u30ff Ж",
    "mixed_04ff": "\u04ff 漫",
    "mixed_0400": "\u0400 漫",
    "not_mixed_0500": "\u0500 漫",
    "not_mixed_4dff": "\u4dff Ж",
    "not_mixed_a000": "\ua000 Ж",
    "not_mixed_3000_punct": "\u3001 Ж",
    "not_mixed_cjk_ext_a": "\u3400 Ж",
    "not_mixed_halfwidth_katakana": "ｶ Ж",
})

# Control-character threshold: count > len * 0.05, exactly as Python's float does it.
CONTROL_SAMPLES = ["\x01", "\x7f", "\x9f", "\u00ad", "\ue000", "\u0378", "\uffff", "\u200b", "\u2066"]
for n_len in (19, 20, 21, 39, 40, 41, 59, 60, 61, 99, 100, 101, 119, 120, 140, 160, 180, 200, 220, 260, 300, 340, 360, 400, 420, 460, 500, 540, 580, 1000, 1020, 1060):
    for extra in (0, 1):
        count = n_len // 20 + extra
        if count == 0 or count > n_len:
            continue
        ctl = CONTROL_SAMPLES[(n_len + extra) % len(CONTROL_SAMPLES)]
        text = "a" * (n_len - count) + ctl * count
        CHECK_CASES[f"controls_{count}_of_{n_len}_U+{ord(ctl):04X}"] = text
CHECK_CASES.update({
    "controls_tab_newline_not_counted": "\t\n\r" * 10,
    "controls_one_of_one": "\x01",
    "controls_one_in_japanese_20": "漫" * 19 + "\x07",
    "controls_one_in_japanese_19": "漫" * 18 + "\x07",
    "controls_c1_nel_is_control": "a" * 10 + "\x85",
    "controls_surrogate_free_noncharacter": "a" * 19 + "\ufdd0",
})

# The byte limit with 1-, 2-, 3- and 4-byte characters.
for width, ch in ((1, "a"), (2, "é"), (3, "あ"), (4, "😀")):
    for label, target in (("below", 16_383), ("at", 16_384), ("above", 16_385)):
        count, rest = divmod(target, width)
        text = ch * count + "a" * rest
        CHECK_CASES[f"bytes_{label}_{width}byte"] = text
    CHECK_CASES[f"bytes_above_by_one_char_{width}byte"] = ch * (16_384 // width) + ch
CHECK_CASES["bytes_at_with_edge_spaces"] = " " + "b" * 16_382 + " "

SPEC_ONLY_CHECK = [
    vec("script_dotted_capital_i", {"message": "<scr\u0130pt>"},
        {"valid": True, "code": None, "detail": None, "sanitized": "<scr\u0130pt>", "estimatedTokens": 3},
        by="spec", note="U+0130 has no simple case folding to 'i'; Python's IGNORECASE lowercases it to 'i' and matches"),
    vec("javascript_dotless_i", {"message": "javascr\u0131pt:"},
        {"valid": True, "code": None, "detail": None, "sanitized": "javascr\u0131pt:", "estimatedTokens": 2},
        by="spec", note="U+0131 has no simple case folding to 'i'; Python's IGNORECASE treats it as 'i'"),
]

# Configured policies: the same checks with other patterns and thresholds.
# Custom patterns let the corpus reach folds the defaults cannot (no default
# pattern has a `k`, so U+212A KELVIN SIGN needs one).
KILL = {"disallowedPatterns": [r"\bkill\b", r"drop[ \t]+table"]}
POLICY_CASES = [
    ("kelvin_sign_folds_to_k", KILL, "please \u212aill the process"),
    ("kelvin_sign_upper", KILL, "\u212aILL"),
    ("kill_plain", KILL, "kill it"),
    ("kill_inside_word", KILL, "skill tree"),
    ("kill_before_underscore", KILL, "kill_switch"),
    ("kill_after_combining_mark", KILL, "e\u0301kill now"),
    ("kill_before_combining_mark", KILL, "kill\u0301 x"),
    ("kill_japanese_around", KILL, "漫画kill漫画"),
    ("kill_space_japanese", KILL, "漫画 kill 漫画"),
    ("drop_table_spaces", KILL, "DROP   TABLE users"),
    ("drop_table_newline", KILL, "drop\ntable"),
    ("drop_table_ideographic_space", KILL, "drop\u3000table"),
    ("defaults_not_applied", KILL, "<script>"),
    ("long_s_custom", {"disallowedPatterns": ["sushi"]}, "\u017fu\u017fhi"),
    ("empty_pattern_list", {"disallowedPatterns": []}, "<script>{{x}}"),
    ("small_byte_limit_at", {"maxMessageBytes": 9}, "漫画本"),
    ("small_byte_limit_above", {"maxMessageBytes": 8}, "漫画本"),
    ("zero_byte_limit_empty", {"maxMessageBytes": 0}, ""),
    ("zero_byte_limit_one", {"maxMessageBytes": 0}, "a"),
    ("ratio_tenth_at", {"maxControlRatio": 0.1}, "a" * 9 + "\x01"),
    ("ratio_tenth_above", {"maxControlRatio": 0.1}, "a" * 8 + "\x01"),
    ("ratio_zero_refuses_any", {"maxControlRatio": 0.0}, "a" * 99 + "\u00ad"),
    ("ratio_zero_allows_none", {"maxControlRatio": 0.0}, "clean text"),
    ("ratio_one_allows_all", {"maxControlRatio": 1.0}, "\x01\x02\x03"),
    ("ratio_quarter", {"maxControlRatio": 0.25}, "ab\x01"),
    ("all_settings", {"maxMessageBytes": 100, "disallowedPatterns": ["manga"], "maxControlRatio": 0.5}, "I like MANGA"),
    # `\b` beside a literal that is always there (`+`, `{1,2}`) is translated.
    ("boundary_plus_literal_spaced", {"disallowedPatterns": [r"\bx+-"]}, "a xx-"),
    ("boundary_plus_literal_inside_word", {"disallowedPatterns": [r"\bx+-"]}, "ax-"),
    ("boundary_plus_literal_absent", {"disallowedPatterns": [r"\bx+-"]}, "a-"),
    ("boundary_count_literal_start", {"disallowedPatterns": [r"\bx{1,2}-"]}, "XX-"),
    ("boundary_count_literal_after_underscore", {"disallowedPatterns": [r"\bx{1,2}-"]}, "_x-"),
    # Python's `$` also matches before a final newline (the differential
    # pattern fuzzer's find, docs/reliability.md); `(?m)` before any.
    ("end_anchor_at_end", {"disallowedPatterns": ["rm -rf$"]}, "please RM -RF"),
    ("end_anchor_before_final_newline", {"disallowedPatterns": ["rm -rf$"]}, "rm -rf\n"),
    ("end_anchor_not_before_two_newlines", {"disallowedPatterns": ["rm -rf$"]}, "rm -rf\n\n"),
    ("end_anchor_not_before_crlf", {"disallowedPatterns": ["rm -rf$"]}, "rm -rf\r\n"),
    ("end_anchor_not_mid_text", {"disallowedPatterns": ["rm -rf$"]}, "rm -rf\nnow"),
    ("end_anchor_in_alternative", {"disallowedPatterns": ["x|rm$"]}, "rm\n"),
    ("end_anchor_multiline_any_line", {"disallowedPatterns": ["(?m)^drop$"]}, "x\nDROP\ny"),
    # `]` right after `[^` is a class member, so the `|` is top-level.
    ("boundary_after_bracket_class_hit", {"disallowedPatterns": [r"[^](]x|\bk"]}, "-k"),
    ("boundary_after_bracket_class_inside_word", {"disallowedPatterns": [r"[^](]x|\bk"]}, "ak"),
    ("boundary_after_bracket_class_members", {"disallowedPatterns": [r"[^](]x|\bk"]}, "(x ]x"),
    ("boundary_after_bracket_class_first_branch", {"disallowedPatterns": [r"[^](]x|\bk"]}, "ax"),
]

# Escapes every engine refuses when a policy is built (docs/contract-notes.md):
# Python's `re` and regex-syntax read them differently, and whether
# regex-syntax knows them depends on cargo features, so accepting them would
# let engines disagree. The error is the core's, the same text everywhere.
REFUSED_HINT = "write an explicit class such as `[ \\t]` or `[0-9]`"


def refused_pattern(name, pattern, escape, why, note):
    message = f"pattern {json.dumps(pattern)}: `\\{escape}` is not supported: {why}; {REFUSED_HINT}"
    return vec(name, {"policy": {"disallowedPatterns": [pattern]}, "message": "x"},
               ref.error("invalid_pattern", message), by="spec", note=note)


DISAGREE = "Python and regex-syntax disagree on its meaning"
SPEC_ONLY_POLICY = [
    refused_pattern("refused_unicode_property", "\\p{L}", "p",
                    "Unicode property classes are not supported (Python's `re` has none)",
                    "Python's re has no \\p; regex-syntax knows it only with a cargo feature"),
    refused_pattern("refused_property_in_class", "[x\\P{N}]", "P",
                    "Unicode property classes are not supported (Python's `re` has none)",
                    "inside a class too"),
    refused_pattern("refused_perl_digit_in_class", "[\\d]", "d", DISAGREE,
                    "Python's \\d and regex-syntax's differ on Unicode digits"),
    refused_pattern("refused_word_start", "a\\<", "<", DISAGREE,
                    "a literal '<' in Python, a Unicode word-start assertion in regex-syntax"),
]


# `\b` is rewritten into a class chosen from the one literal beside it; where
# that literal may be absent, folds across word-ness, or is not what it looks
# like, the policy is refused (docs/contract-notes.md). `shown` is the
# pattern as Rust's `{:?}` prints it, where that differs from json.dumps.
def refused_boundary(name, pattern, why, note, shown=None):
    shown = shown or json.dumps(pattern, ensure_ascii=False)
    return vec(name, {"policy": {"disallowedPatterns": [pattern]}, "message": "x"},
               ref.error("invalid_pattern", f"pattern {shown}: `\\b` {why}"), by="spec", note=note)


BOUNDARY_ABSENT = ("is not supported next to a literal that may be absent (`?`, `*`, `{0,n}`): "
                   "the boundary would then be beside another character")
BOUNDARY_PLACE = ("is supported only at the start or end of a pattern (or of a top-level "
                  "alternative), next to a literal character")
BOUNDARY_FOLDS = "is not supported next to U+{:04X}: its case-insensitive forms include both word and non-word characters"
SPEC_ONLY_POLICY += [
    refused_boundary("refused_boundary_optional_literal", r"\bx?-", BOUNDARY_ABSENT,
                     "Python matches 'a-' (x absent, boundary between 'a' and '-') and not ' -'; "
                     "a class keyed to the literal x answered both the other way"),
    refused_boundary("refused_boundary_starred_literal", r"\bx*-", BOUNDARY_ABSENT, "as with `?`"),
    refused_boundary("refused_boundary_zero_count_literal", r"\bx{0,2}-", BOUNDARY_ABSENT, "as with `?`"),
    refused_boundary("refused_boundary_iota_folds_with_mark", "\\b\u03b9", BOUNDARY_FOLDS.format(0x3B9),
                     "U+03B9 folds with U+0345, a mark (not a word character): Python matches 'x\\u0345'"),
    refused_boundary("refused_boundary_ypogegrammeni_folds_with_letters", "\u0345\\b", BOUNDARY_FOLDS.format(0x345),
                     "U+0345 (Mn) folds with U+0399, U+03B9, U+1FBE (letters): Python matches "
                     "'\\u03b9!' and not '\\u03b9a'", shown=r'"\u{345}\\b"'),
    vec("refused_boundary_verbose_mode", {"policy": {"disallowedPatterns": [r"(?x)k \b"]}, "message": "x"},
        ref.error("invalid_pattern", 'pattern "(?x)k \\\\b": verbose mode (flag `x`) is not supported: '
                  "Python and regex-syntax ignore different whitespace and read `#` comments differently"),
        by="spec",
        note="the space is ignored: Python matches 'k!'; read as the neighbour it chose the wrong class. "
             "Verbose mode is refused outright: `#` comments could also hide a `[`, `)` or `$` from the rewrites"),
    refused_boundary("refused_boundary_after_hex_escape", r"\x2D\b", BOUNDARY_PLACE,
                     "`\\x2D` is '-': Python matches '-a'; read as a literal 'D' it chose the wrong class"),
    refused_boundary("refused_boundary_in_group_after_bracket_class", r"a([^])]|\bk)", BOUNDARY_PLACE,
                     "`]` right after `[^` is a member, so `\\b` is inside the group: Python finds no "
                     "match in 'a)k'; read as top-level it was rewritten and matched"),
]


END_ANCHOR_PLACE = ("`$` is supported only at the end of a pattern (or of a top-level alternative), "
                    "where it can mean what Python's `$` means (the end, or before a final newline)")
END_ANCHOR_FLAGS = ("`$` is not supported where multiline mode (flag `m`) is switched on or off "
                    "inside the pattern: set `(?m)` at its start, or leave it out")


def refused_end_anchor(name, pattern, why, note):
    return vec(name, {"policy": {"disallowedPatterns": [pattern]}, "message": "x"},
               ref.error("invalid_pattern", f"pattern {json.dumps(pattern)}: {why}"),
               by="spec", note=note)


SPEC_ONLY_POLICY += [
    refused_end_anchor("refused_end_anchor_mid_pattern", "a$\\n", END_ANCHOR_PLACE,
                       "Python matches 'a\\n' (`$` before the final newline, then the newline); "
                       "rewritten to consume that newline it would not"),
    refused_end_anchor("refused_end_anchor_in_group", "(a$)", END_ANCHOR_PLACE,
                       "inside a group something may follow it"),
    refused_end_anchor("refused_end_anchor_scoped_multiline", "(?m:a)b$", END_ANCHOR_FLAGS,
                       "the flag holds inside the group only; the `$` is Python's non-multiline one"),
    vec("astral_in_class_folds", {"policy": {"disallowedPatterns": ["[a\U00010400]"]},
                                  "message": "\U00010428"},
        {"valid": False, "code": "disallowed_pattern",
         "detail": "message contains the disallowed pattern [a\U00010400]",
         "sanitized": "\U00010428", "estimatedTokens": 0},
        by="spec",
        note="simple case folding: U+10428 is U+10400's lower case. Python 3.11's re answers no "
             "match: with IGNORECASE it misses a character beyond the BMP in a set with other "
             "members (the differential pattern fuzzer's find, docs/reliability.md)"),
]


# --------------------------------------------------------------------------
# Sanitize and estimate
# --------------------------------------------------------------------------

WHITESPACE = sorted(set(ref._WHITESPACE))
NOT_TRIMMED = ["\u180e", "\u200b", "\u2060", "\u00ad", "\u3164", "\ufeff", "x"]

SANITIZE_CASES = dict(CHAT)
for ch in WHITESPACE:
    SANITIZE_CASES[f"ws_U+{ord(ch):04X}_leading"] = ch + "漫画"
    SANITIZE_CASES[f"ws_U+{ord(ch):04X}_trailing"] = "manga" + ch
    SANITIZE_CASES[f"ws_U+{ord(ch):04X}_both"] = ch + ch + "a b" + ch
    SANITIZE_CASES[f"ws_U+{ord(ch):04X}_inside_kept"] = "a" + ch + "b"
for ch in NOT_TRIMMED:
    SANITIZE_CASES[f"edge_U+{ord(ch):04X}_not_whitespace"] = ch + "x" + ch
for ch in REMOVED:
    SANITIZE_CASES[f"removed_U+{ord(ch):04X}"] = "a" + ch + "b" + ch
    SANITIZE_CASES[f"removed_U+{ord(ch):04X}_exposes_space"] = " " + ch + " manga " + ch + " "
SANITIZE_CASES.update({
    "nfc_dakuten_after_zero_width": "か\u200b\u3099",
    "nfc_hangul_jamo": "\u1100\u1161",
    "nfc_angstrom": "\u212b",
    "nfc_ohm": "\u2126",
    "nfc_cjk_compat_ideograph": "\uf900",
    "nfc_ordering": "a\u0323\u0307",
    "nfkc_not_applied": "ｶﾞ①ﬁ",
    "all_whitespace_mix": "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u3000",
    "trim_then_inner_nbsp": "\u3000a\u00a0b\u3000",
})

ESTIMATE_CASES = dict(CHAT)
ESTIMATE_CASES.update({
    "words_only": "the quick brown fox",
    "word_runs_split_by_digits": "a1b2c3",
    "word_runs_split_by_accents": "caféteria",
    "fullwidth_letters_are_other": "ＡＢＣ",
    "jp_range_start": "\u3000\u3001",
    "jp_range_end": "\u9ffe\u9fff",
    "just_outside_jp": "\u2ffb\ua000",
    "odd_other": "!",
    "three_other": "!!!",
    "one_word": "a",
    "four_words": "a b c d",
    "mixed_rounding": "漫 a !",
    "long_japanese": "漫画" * 500,
    "long_english": "manga " * 500,
    "long_mixed": ("おすすめ manga 123 " * 200),
})


# --------------------------------------------------------------------------
# Cache keys
# --------------------------------------------------------------------------

def turn(role, content):
    return {"role": role, "content": content}


CACHE_CASES = {
    "full_body": {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 4096, "temperature": 0.3,
                  "system": "You are helpful.", "messages": [turn("user", "こんにちは")]},
    "temperature_ignored_a": {"max_tokens": 100, "temperature": 0.0, "system": "s", "messages": [turn("user", "x")]},
    "temperature_ignored_b": {"max_tokens": 100, "temperature": 1.0, "system": "s", "messages": [turn("user", "x")]},
    "empty_body": {},
    "only_messages": {"messages": [turn("user", "hello")]},
    "max_tokens_zero_is_default": {"max_tokens": 0},
    "max_tokens_null_is_default": {"max_tokens": None},
    "max_tokens_false_is_default": {"max_tokens": False},
    "max_tokens_float": {"max_tokens": 4096.0},
    "max_tokens_float_fraction": {"max_tokens": 0.5},
    "max_tokens_string": {"max_tokens": "100"},
    "max_tokens_big": {"max_tokens": 9223372036854775807},
    "max_tokens_u64": {"max_tokens": 18446744073709551615},
    "max_tokens_negative": {"max_tokens": -1},
    "system_null": {"system": None, "messages": []},
    "system_empty": {"system": ""},
    "system_false": {"system": False},
    "system_zero": {"system": 0},
    "system_list": {"system": [{"type": "text", "text": "s"}]},
    "system_empty_list": {"system": []},
    "system_empty_object": {"system": {}},
    "messages_empty_object": {"messages": {}},
    "messages_string": {"messages": "not a list"},
    "keys_sorted_nested": {"messages": [{"role": "user", "content": "x", "a": 1, "Z": 2, "é": 3, "漫": 4, "~": 5}]},
    "keys_non_ascii_order": {"messages": [{"\u00e9": 1, "\u00ea": 2, "e": 3, "\uff41": 4, "\U0001f600": 5, "\uffff": 6}]},
    "escapes": {"system": "quote\" backslash\\ nl\n cr\r tab\t bs\b ff\f"},
    "low_controls": {"system": "".join(chr(c) for c in range(0, 32))},
    "del_and_c1": {"system": "\x7f\x80\x9f"},
    "line_separators_literal": {"system": "\u2028\u2029"},
    "non_bmp": {"system": "😀𠮷"},
    "japanese_all": {"system": "あなたは漫画店の店員です。", "messages": [turn("user", "ﾜﾝﾋﾟｰｽ"), turn("assistant", "はい")]},
    "nested_content_blocks": {"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "image", "source": {"data": "AAA=", "media_type": "image/png"}}]}]},
    "numbers_in_content": {"messages": [{"n": [0, -0, 1, -1, 1.5, -2.25, 0.1, 1e-07, 1e16, 1e15, 123456789.125, 1e100, 5e-324, 0.0001, 0.00001]}]},
    "negative_zero_float": {"messages": [{"z": -0.0}]},
    "bools_and_null": {"messages": [{"t": True, "f": False, "n": None}]},
    "empty_containers": {"messages": [{"a": [], "o": {}, "s": ""}]},
    "deep_nesting": {"messages": [[[[[[[[[[{"deep": "yes"}]]]]]]]]]]},
    "many_turns": {"messages": [turn("user" if i % 2 == 0 else "assistant", f"turn {i}") for i in range(20)]},
    "unicode_keys_escape": {"messages": [{"ke\"y": 1, "k\\ey": 2, "k\ney": 3}]},
    "extra_fields_ignored": {"anthropic_version": "x", "top_p": 0.9, "stop_sequences": ["\n"], "messages": [turn("user", "q")]},
    "big_message": {"messages": [turn("user", "漫画" * 4000)]},
}
SPEC_ONLY_CACHE = []


# --------------------------------------------------------------------------
# Bodies
# --------------------------------------------------------------------------

def alternating(n, start="user"):
    roles = ["user", "assistant"] if start == "user" else ["assistant", "user"]
    return [turn(roles[i % 2], f"{roles[i % 2]} turn {i}") for i in range(n)]


BODY_CASES = {
    "defaults_short_message": {"message": "こんにちは"},
    "defaults_english": {"message": "Any new isekai titles this week?"},
    "system_given": {"message": "hi", "system": "Be brief."},
    "system_empty": {"message": "hi", "system": ""},
    "fast": {"message": "漫画" * 300, "modelPreference": "fast", "system": "s"},
    "quality": {"message": "hi", "modelPreference": "quality", "system": "s"},
    "auto_at_threshold": {"message": "漫" * 133 + "a", "system": "s"},
    "auto_just_over": {"message": "漫" * 134, "system": "s"},
    "auto_long_english": {"message": "manga " * 300, "system": "s"},
    "max_tokens_given": {"message": "hi", "maxTokens": 512, "system": "s"},
    "temperature_given": {"message": "hi", "temperature": 0.7, "system": "s"},
    "temperature_zero": {"message": "hi", "temperature": 0.0, "system": "s"},
    "temperature_one": {"message": "hi", "temperature": 1.0, "system": "s"},
    "history_empty": {"message": "hi", "history": [], "system": "s"},
    "history_one_exchange": {"message": "次は？", "history": [turn("user", "おすすめは？"), turn("assistant", "『ワンピース』です。")], "system": "s"},
    "history_alternating_4": {"message": "new", "history": alternating(4), "system": "s"},
    "history_alternating_10": {"message": "new", "history": alternating(10), "system": "s"},
    "history_alternating_12": {"message": "new", "history": alternating(12), "system": "s"},
    "history_alternating_20": {"message": "new", "history": alternating(20), "system": "s"},
    "history_odd_11_window_starts_assistant": {"message": "new", "history": alternating(11), "system": "s"},
    "history_starts_assistant": {"message": "new", "history": alternating(3, "assistant"), "system": "s"},
    "history_only_assistant": {"message": "new", "history": [turn("assistant", "a1"), turn("assistant", "a2")], "system": "s"},
    "history_ends_user": {"message": "new", "history": alternating(3), "system": "s"},
    "history_consecutive_users": {"message": "new", "history": [turn("user", "u1"), turn("user", "u2"), turn("assistant", "a")], "system": "s"},
    "history_consecutive_assistants": {"message": "new", "history": [turn("user", "u"), turn("assistant", "a1"), turn("assistant", "a2")], "system": "s"},
    "history_all_users": {"message": "new", "history": [turn("user", f"u{i}") for i in range(12)], "system": "s"},
    "history_empty_contents": {"message": "", "history": [turn("user", ""), turn("assistant", "")], "system": "s"},
    "history_japanese": {"message": "ありがとう", "history": [turn("user", "鬼滅の刃は何巻まで？"), turn("assistant", "全23巻です。")], "system": "あなたは店員です。"},
    "invalid_role": {"message": "x", "history": [turn("user", "a"), turn("system", "b")], "system": "s"},
    "invalid_role_outside_window": {"message": "x", "history": [turn("tool", "t")] + alternating(10), "system": "s"},
    "max_tokens_zero": {"message": "x", "maxTokens": 0, "system": "s"},
    "temperature_too_high": {"message": "x", "temperature": 1.5, "system": "s"},
    "temperature_negative": {"message": "x", "temperature": -0.5, "system": "s"},
}


for _name in ["current-global", "current-us", "current-eu", "current-jp", "spec"]:
    _short = _name.replace("-", "_")
    BODY_CASES[f"preset_{_short}_auto"] = {"message": "こんにちは", "catalog": _name, "system": "s"}
    BODY_CASES[f"preset_{_short}_quality"] = {"message": "hi", "catalog": _name, "modelPreference": "quality", "system": "s"}
BODY_CASES["preset_current_us_history_ends_user"] = {
    "message": "続きは？", "catalog": "current-us", "modelPreference": "quality",
    "history": [turn("assistant", "a0")] + alternating(4), "system": "s"}
BODY_CASES["preset_unknown"] = {"message": "hi", "catalog": "current-mars", "system": "s"}
BODY_CASES["preset_unknown_with_quotes"] = {"message": "hi", "catalog": 'cur"rent\\', "system": "s"}
BODY_CASES["preset_null_is_absent"] = {"message": "hi", "catalog": None, "system": "s"}


# --------------------------------------------------------------------------
# Continuing a cut stream
# --------------------------------------------------------------------------

def _body(*turns):
    return {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 4096, "temperature": 0.3,
            "system": "s", "messages": list(turns)}


_Q = turn("user", "おすすめは？")
CONTINUATION_CASES = {}
for _prefill in (True, False):
    _p = "prefill" if _prefill else "no_prefill"
    CONTINUATION_CASES.update({
        f"{_p}_nothing_sent": {"body": _body(_Q), "sent": "", "prefill": _prefill},
        f"{_p}_only_whitespace_sent": {"body": _body(_Q), "sent": " \n\u3000", "prefill": _prefill},
        f"{_p}_japanese": {"body": _body(_Q), "sent": "おすすめは『ワンピース』（尾田", "prefill": _prefill},
        f"{_p}_trailing_space_trimmed": {"body": _body(_Q), "sent": "You may enjoy ", "prefill": _prefill},
        f"{_p}_trailing_ideographic_space": {"body": _body(_Q), "sent": "はい。\u3000", "prefill": _prefill},
        f"{_p}_unit_separator_kept": {"body": _body(_Q), "sent": "x\x1f", "prefill": _prefill},
        f"{_p}_with_history": {"body": _body(turn("user", "a"), turn("assistant", "b"), turn("user", "c")),
                                "sent": "Frieren by", "prefill": _prefill},
        f"{_p}_other_fields_dropped_integer_temperature": {
            "body": {**_body(_Q), "temperature": 1, "top_p": 0.9, "stop_sequences": ["x"]},
            "sent": "はい", "prefill": _prefill},
    })

_SENT = "you may enjoy One Piece by "
SEAM_CASES = {
    "two_words_repeated": {"sent": _SENT, "continuation": "Piece by Oda and", "complete": False, "prefill": False},
    "nothing_repeated": {"sent": _SENT, "continuation": "Oda and", "complete": False, "prefill": False},
    "held_back_space_repeated": {"sent": _SENT, "continuation": " Oda", "complete": False, "prefill": False},
    "two_letters_are_a_coincidence": {"sent": "a bo", "continuation": "ok", "complete": False, "prefill": False},
    "three_letters_count": {"sent": "a boo", "continuation": "book", "complete": False, "prefill": False},
    "japanese_repeat": {"sent": "おすすめは『ワンピース", "continuation": "ワンピース』と", "complete": False, "prefill": False},
    "japanese_no_repeat": {"sent": "おすすめは『ワンピース", "continuation": "』と『鬼滅", "complete": False, "prefill": False},
    "prefix_of_a_repeat_waits": {"sent": _SENT, "continuation": "Pie", "complete": False, "prefill": False},
    "empty_waits": {"sent": _SENT, "continuation": "", "complete": False, "prefill": False},
    "prefix_of_a_repeat_complete": {"sent": _SENT, "continuation": "Pie", "complete": True, "prefill": False},
    "empty_complete": {"sent": _SENT, "continuation": "", "complete": True, "prefill": False},
    "nothing_sent": {"sent": "", "continuation": "abc", "complete": False, "prefill": False},
    "whole_text_repeated": {"sent": "One Piece", "continuation": "One Piece by Oda", "complete": False, "prefill": False},
    "longest_repeat_wins": {"sent": "la la la ", "continuation": "la la la la!", "complete": False, "prefill": False},
    "repeat_beyond_window_not_seen": {"sent": "x" + "y" * 200, "continuation": "x" + "y" * 200 + "z", "complete": False, "prefill": False},
    "repeat_at_window_edge": {"sent": "x" + "y" * 199, "continuation": "x" + "y" * 199 + "z", "complete": False, "prefill": False},
    "astral_characters": {"sent": "𠮷野家の😀", "continuation": "家の😀です", "complete": False, "prefill": False},
    "combining_marks": {"sent": "cafe\u0301 au", "continuation": "e\u0301 au lait", "complete": False, "prefill": False},
    "prefill_table_row_not_a_repeat": {"sent": "| Title | Vol |\n|---", "continuation": "|---|\n", "complete": False, "prefill": True},
    "no_prefill_table_row_taken_as_repeat": {"sent": "| Title | Vol |\n|---", "continuation": "|---|\n", "complete": False, "prefill": False},
    "prefill_held_back_space": {"sent": _SENT, "continuation": " Oda", "complete": False, "prefill": True},
    "prefill_words_kept": {"sent": _SENT, "continuation": "Piece by Oda", "complete": False, "prefill": True},
    "prefill_waits_for_whitespace_only": {"sent": "you may \u3000", "continuation": " ", "complete": False, "prefill": True},
    "prefill_empty_waits_after_whitespace": {"sent": "you may ", "continuation": "", "complete": False, "prefill": True},
    "prefill_empty_decided_without_whitespace": {"sent": "you may", "continuation": "", "complete": False, "prefill": True},
}


# --------------------------------------------------------------------------
# The calibrated estimator
# --------------------------------------------------------------------------

_REF = {"kana": 1.5, "kanji": 1.5, "latinWord": 0.75, "other": 0.5, "perRequest": 0.0}
_FIT = {"kana": 0.93, "kanji": 1.27, "latinWord": 1.21, "other": 0.61, "perRequest": 7.4}
CALIBRATED_CASES = {}
for _cname, _cal in [("reference_weights", _REF), ("fitted_weights", _FIT)]:
    for _tname, _text in [
        ("ja_greeting", "こんにちは！おすすめの漫画を教えてください。"),
        ("ja_title", "『鬼滅の刃』の最新巻はいつ発売されますか？"),
        ("en_question", "Any new isekai titles this week?"),
        ("mixed", "ワンピースの新刊 One Piece 1巻!"),
        ("halfwidth_katakana", "ﾜﾝﾋﾟｰｽ ｺﾐｯｸｽ"),
        ("kanji_extensions", "㐀𠮷豈漫"),
        ("digits_and_symbols", "1234 !?#$"),
        ("empty", ""),
        ("hangul_is_other", "만화 추천"),
    ]:
        CALIBRATED_CASES[f"{_cname}_{_tname}"] = {"text": _text, "calibration": _cal}
CALIBRATED_CASES["rounds_half_up"] = {"text": "a", "calibration": {**_REF, "latinWord": 2.5}}
CALIBRATED_CASES["rounds_below_half_down"] = {"text": "a", "calibration": {**_REF, "latinWord": 2.499}}
CALIBRATED_CASES["zero_weights"] = {"text": "漫画 manga", "calibration": {k: 0.0 for k in _REF}}
CALIBRATED_CASES["negative_weight_refused"] = {"text": "x", "calibration": {**_REF, "other": -1.0}}
CALIBRATED_CASES["negative_per_request_refused"] = {"text": "x", "calibration": {**_REF, "perRequest": -0.5}}
CALIBRATED_CASES["tie_goes_to_kana"] = {"text": "あ漫", "calibration": _REF}
CALIBRATED_CASES["tie_latin_over_other"] = {"text": "ab !", "calibration": _REF}


# --------------------------------------------------------------------------
# Request contract
# --------------------------------------------------------------------------

SID = "123e4567-e89b-42d3-a456-426614174000"
CONTRACT_CASES = {
    "send_minimal": {"action": "sendMessage", "data": {"message": "こんにちは"}},
    "send_full": {"action": "sendMessage", "data": {"message": "hi", "sessionId": SID, "preferredLanguage": "en", "modelPreference": "fast"}, "metadata": {"clientVersion": "1.2.3", "timestamp": 1732500000}},
    "send_zh_quality": {"action": "sendMessage", "data": {"message": "你好", "preferredLanguage": "zh", "modelPreference": "quality"}},
    "send_auto_ja": {"action": "sendMessage", "data": {"message": "x", "preferredLanguage": "ja", "modelPreference": "auto"}},
    "history": {"action": "getHistory", "data": {"sessionId": SID}},
    "history_with_message": {"action": "getHistory", "data": {"sessionId": SID, "message": "ignored"}},
    "clear": {"action": "clearSession", "data": {"sessionId": SID}},
    "message_4000": {"action": "sendMessage", "data": {"message": "漫" * 4000}},
    "message_4000_astral": {"action": "sendMessage", "data": {"message": "😀" * 4000}},
    "message_4001": {"action": "sendMessage", "data": {"message": "a" * 4001}},
    "message_4001_astral": {"action": "sendMessage", "data": {"message": "😀" * 4001}},
    "message_empty": {"action": "sendMessage", "data": {"message": ""}},
    "message_one_astral": {"action": "sendMessage", "data": {"message": "😀"}},
    "message_number": {"action": "sendMessage", "data": {"message": 42}},
    "message_null": {"action": "sendMessage", "data": {"message": None}},
    "message_missing": {"action": "sendMessage", "data": {}},
    "message_empty_on_history": {"action": "getHistory", "data": {"sessionId": SID, "message": ""}},
    "session_missing_history": {"action": "getHistory", "data": {}},
    "session_missing_clear": {"action": "clearSession", "data": {"message": "x"}},
    "session_uppercase": {"action": "getHistory", "data": {"sessionId": SID.upper()}},
    "session_v1": {"action": "getHistory", "data": {"sessionId": "123e4567-e89b-12d3-a456-426614174000"}},
    "session_bad_variant": {"action": "getHistory", "data": {"sessionId": "123e4567-e89b-42d3-c456-426614174000"}},
    "session_short": {"action": "getHistory", "data": {"sessionId": SID[:-1]}},
    "session_long": {"action": "getHistory", "data": {"sessionId": SID + "0"}},
    "session_trailing_newline": {"action": "getHistory", "data": {"sessionId": SID + "\n"}},
    "session_no_dashes": {"action": "getHistory", "data": {"sessionId": SID.replace("-", "")}},
    "session_fullwidth_digit": {"action": "getHistory", "data": {"sessionId": "１" + SID[1:]}},
    "session_number": {"action": "getHistory", "data": {"sessionId": 7}},
    "session_on_send_ok": {"action": "sendMessage", "data": {"message": "x", "sessionId": SID}},
    "session_on_send_bad": {"action": "sendMessage", "data": {"message": "x", "sessionId": "nope"}},
    "action_missing": {"data": {"message": "x"}},
    "action_unknown": {"action": "dance", "data": {"message": "x"}},
    "action_case": {"action": "SendMessage", "data": {"message": "x"}},
    "action_number": {"action": 1, "data": {"message": "x"}},
    "action_null": {"action": None, "data": {"message": "x"}},
    "data_missing": {"action": "sendMessage"},
    "data_array": {"action": "sendMessage", "data": ["x"]},
    "data_string": {"action": "sendMessage", "data": "x"},
    "data_null": {"action": "sendMessage", "data": None},
    "both_missing": {},
    "top_array": [],
    "top_string": "sendMessage",
    "top_number": 3,
    "top_null": None,
    "top_bool": True,
    "unknown_top": {"action": "sendMessage", "data": {"message": "x"}, "extra": 1},
    "unknown_top_many": {"action": "sendMessage", "data": {"message": "x"}, "zz": 1, "aa": 2, "a/b": 3, "t~x": 4, "": 5},
    "unknown_data": {"action": "sendMessage", "data": {"message": "x", "lang": "ja"}},
    "unknown_data_japanese_key": {"action": "sendMessage", "data": {"message": "x", "言語": "ja"}},
    "language_bad": {"action": "sendMessage", "data": {"message": "x", "preferredLanguage": "fr"}},
    "language_upper": {"action": "sendMessage", "data": {"message": "x", "preferredLanguage": "JA"}},
    "language_number": {"action": "sendMessage", "data": {"message": "x", "preferredLanguage": 1}},
    "preference_bad": {"action": "sendMessage", "data": {"message": "x", "modelPreference": "best"}},
    "preference_null": {"action": "sendMessage", "data": {"message": "x", "modelPreference": None}},
    "metadata_ok_extra_fields": {"action": "sendMessage", "data": {"message": "x"}, "metadata": {"clientVersion": "w", "timestamp": 0, "other": True}},
    "metadata_empty": {"action": "sendMessage", "data": {"message": "x"}, "metadata": {}},
    "metadata_array": {"action": "sendMessage", "data": {"message": "x"}, "metadata": []},
    "metadata_null": {"action": "sendMessage", "data": {"message": "x"}, "metadata": None},
    "timestamp_float": {"action": "sendMessage", "data": {"message": "x"}, "metadata": {"timestamp": 1.5}},
    "timestamp_negative": {"action": "sendMessage", "data": {"message": "x"}, "metadata": {"timestamp": -5}},
    "timestamp_string": {"action": "sendMessage", "data": {"message": "x"}, "metadata": {"timestamp": "1732500000"}},
    "timestamp_bool": {"action": "sendMessage", "data": {"message": "x"}, "metadata": {"timestamp": True}},
    "client_version_number": {"action": "sendMessage", "data": {"message": "x"}, "metadata": {"clientVersion": 2}},
    "everything_wrong": {"action": "dance", "x/y": 1, "data": {"message": "", "sessionId": "NOPE", "preferredLanguage": "fr", "modelPreference": 3, "z": 0}, "metadata": {"timestamp": 1.5, "clientVersion": None}},
    "everything_wrong_2": {"action": [], "data": {"message": ["x"], "sessionId": None}, "metadata": "m", "q": None},
}


# --------------------------------------------------------------------------

# Cn code points a Python-checked vector may hold: ones no later Unicode
# version assigns (noncharacters) or that stay unassigned in the Rust crates'
# newer tables too (checked by the native run of the corpus).
STABLE_UNASSIGNED = {0x0378, 0xFFFF, 0xFDD0}


def assert_unicode14_safe(name, value):
    """Refuse Python-checked text with code points Python sees as Cn (see SPEC 4)."""
    text = json.dumps(value, ensure_ascii=False)
    for ch in text:
        if unicodedata.category(ch) == "Cn" and ord(ch) not in STABLE_UNASSIGNED:
            sys.exit(f"vector {name}: U+{ord(ch):04X} is unassigned in Unicode 14; keep it out")


# --------------------------------------------------------------------------
# Pre-check (what a client shows before sending; the service's refusal order)
# --------------------------------------------------------------------------

def precheck_cases():
    cases = {f"message_{n}": {"message": m} for n, m in CHECK_CASES.items()}
    cases.update({
        "with_session": {"message": "在庫はありますか", "sessionId": SID},
        "bad_session": {"message": "在庫はありますか", "sessionId": "123E4567-E89B-42D3-A456-426614174000"},
        "fast": {"message": "漫画" * 200, "modelPreference": "fast"},
        "quality": {"message": "hi", "modelPreference": "quality"},
        "auto_long": {"message": "漫画" * 200, "modelPreference": "auto"},
        "bad_preference": {"message": "hi", "modelPreference": "best"},
        "empty": {"message": ""},
        "only_whitespace": {"message": " \u3000\t "},
        "only_zero_width_is_control": {"message": "\u200b"},
        "too_long_chars": {"message": "a" * 4001},
        "too_long_and_script": {"message": "<script>" + "a" * 4000},
        "script_with_bad_session": {"message": "<script>", "sessionId": "x"},
        "decomposed_sanitized": {"message": "  か\u3099んは\u309aる\u3000"},
        "four_thousand_emoji": {"message": "😀" * 4000},
    })
    return cases


# --------------------------------------------------------------------------
# Screening (the service's admission of a request: contract, checks, empty)
# --------------------------------------------------------------------------

def send(message, **data):
    return {"action": "sendMessage", "data": {"message": message, **data}}


def screen_cases():
    # Every check message a sendMessage can carry (over 4000 code points the
    # contract refuses first; a few of those are kept below).
    cases = {f"send_{n}": send(m) for n, m in CHECK_CASES.items() if len(m) <= 4000}
    cases.update({
        # Accepted, each action, and what the typed request carries.
        "send_with_session": send("在庫はありますか", sessionId=SID),
        "send_fast": send("漫画" * 200, modelPreference="fast"),
        "send_quality": send("hi", modelPreference="quality"),
        "send_auto_explicit": send("hi", modelPreference="auto"),
        "send_preference_default": send("おすすめは？"),
        "send_language_and_metadata": {**send("你好", preferredLanguage="zh"), "metadata": {"clientVersion": "1.0", "timestamp": 1732500000}},
        "send_sanitized_nfc_trimmed": send("  か\u3099んは\u309aる\u3000"),
        "send_removed_inside": send("漫\u200b画\ufeffを探しています。おすすめはありますか？ありがとうございます。"),
        "send_4000_chars": send("漫" * 4000),
        "send_4000_emoji": send("😀" * 4000),
        "history": {"action": "getHistory", "data": {"sessionId": SID}},
        "clear": {"action": "clearSession", "data": {"sessionId": SID}},
        "clear_with_preference": {"action": "clearSession", "data": {"sessionId": SID, "modelPreference": "quality"}},
        # Other actions' messages are not checked, and not carried.
        "history_script_not_checked": {"action": "getHistory", "data": {"sessionId": SID, "message": "<script>alert(1)</script>"}},
        "history_null_byte_not_checked": {"action": "getHistory", "data": {"sessionId": SID, "message": "\x00"}},
        "clear_whitespace_not_checked": {"action": "clearSession", "data": {"sessionId": SID, "message": "   "}},
        "history_mixed_script_not_checked": {"action": "getHistory", "data": {"sessionId": SID, "message": "漫画 Привет"}},
        # The contract still applies to their message.
        "history_empty_message_contract": {"action": "getHistory", "data": {"sessionId": SID, "message": ""}},
        "clear_message_number_contract": {"action": "clearSession", "data": {"sessionId": SID, "message": 1}},
        # Refused: the first failing check, then nothing left.
        "refused_null_before_pattern": send("<script>\x00"),
        "refused_pattern_japanese": send("こんにちは{{名前}}さん", sessionId=SID),
        "refused_control_before_mixed": send("漫Ж\x01\x02"),
        "refused_mixed_script_fast": send("マンガ манга", modelPreference="fast"),
        "refused_zero_width_only_is_control": send("\u200b\u200b\u200b"),
        "refused_bom_only_is_control": send("\ufeff"),
        "empty_separators_only": send("\u2028\u2029\u202f"),
        "empty_whitespace_only": send(" \u3000\t\n "),
        "empty_ideographic_spaces": send("\u3000" * 10),
        "empty_separators_and_spaces": send(" \u2028 \u202f "),
        # Contract first: every violation, even when the message would fail a check too.
        "contract_before_pattern": send("<script>", sessionId="x"),
        "contract_before_null": send("\x00", preferredLanguage="fr"),
        "contract_before_empty": send(" ", modelPreference="best"),
        "contract_too_long_not_too_large": send("😀" * 4097),
        "contract_too_long_and_pattern": send("<script>" + "a" * 4000),
        "contract_too_long_japanese": send("漫画" * 2001),
        "contract_empty_message": send(""),
        "contract_message_missing": {"action": "sendMessage", "data": {}},
        "contract_message_number": send(42),
        "contract_session_missing": {"action": "getHistory", "data": {}},
        "contract_session_uppercase": {"action": "clearSession", "data": {"sessionId": SID.upper()}},
        "contract_action_unknown": {"action": "dance", "data": {"message": "hi"}},
        "contract_action_missing": {"data": {"message": "<script>"}},
        "contract_unknown_properties": {**send("hi", lang="ja"), "extra": True},
        "contract_everything_wrong": {"action": [], "data": {"message": ["x"], "sessionId": None, "modelPreference": 3}, "metadata": "m", "q": None},
        "contract_metadata_timestamp_float": {**send("hi"), "metadata": {"timestamp": 1.5}},
        "contract_top_array": [send("hi")],
        "contract_top_string": "sendMessage",
        "contract_top_null": None,
    })
    return cases


# --------------------------------------------------------------------------
# Batch jobs: the job contract and each task's prompt
# --------------------------------------------------------------------------

def item(i, **fields):
    return {"id": f"isbn:978-4-08-{i:06d}", "title": f"ONE PIECE {i}", **fields}


JOB_CASES = {
    "synopsis_minimal": {"task": "synopsis", "items": [item(1)]},
    "enrich_full": {"task": "enrich", "language": "en", "items": [item(1, author="尾田栄一郎", description="海賊王を目指す少年の冒険。"), item(2)]},
    "max_items": {"task": "enrich", "items": [item(i) for i in range(1000)]},
    "too_many_items": {"task": "enrich", "items": [item(i) for i in range(1001)]},
    "no_items": {"task": "synopsis", "items": []},
    "items_object": {"task": "synopsis", "items": {"id": "a"}},
    "items_missing": {"task": "synopsis"},
    "task_missing": {"items": [item(1)]},
    "task_unknown": {"task": "translate", "items": [item(1)]},
    "task_number": {"task": 1, "items": [item(1)]},
    "language_unknown": {"task": "synopsis", "language": "fr", "items": [item(1)]},
    "unknown_top": {"task": "synopsis", "items": [item(1)], "priority": "high"},
    "top_array": [],
    "top_null": None,
    "item_not_object": {"task": "synopsis", "items": ["ONE PIECE"]},
    "item_unknown_field": {"task": "synopsis", "items": [item(1, price=500)]},
    "id_missing": {"task": "synopsis", "items": [{"title": "x"}]},
    "id_empty": {"task": "synopsis", "items": [{"id": "", "title": "x"}]},
    "id_number": {"task": "synopsis", "items": [{"id": 7, "title": "x"}]},
    "id_128": {"task": "synopsis", "items": [{"id": "a" * 128, "title": "x"}]},
    "id_129": {"task": "synopsis", "items": [{"id": "a" * 129, "title": "x"}]},
    "id_space": {"task": "synopsis", "items": [{"id": "a b", "title": "x"}]},
    "id_fullwidth": {"task": "synopsis", "items": [{"id": "ａ", "title": "x"}]},
    "id_slash": {"task": "synopsis", "items": [{"id": "a/b", "title": "x"}]},
    "id_duplicate": {"task": "synopsis", "items": [item(1), item(2), item(1)]},
    "id_duplicate_twice": {"task": "synopsis", "items": [item(1), item(1), item(1)]},
    "title_missing": {"task": "synopsis", "items": [{"id": "a"}]},
    "title_empty": {"task": "synopsis", "items": [{"id": "a", "title": ""}]},
    "title_300": {"task": "synopsis", "items": [{"id": "a", "title": "漫" * 300}]},
    "title_301_astral": {"task": "synopsis", "items": [{"id": "a", "title": "😀" * 301}]},
    "author_201": {"task": "synopsis", "items": [item(1, author="a" * 201)]},
    "author_null": {"task": "synopsis", "items": [item(1, author=None)]},
    "description_2000": {"task": "synopsis", "items": [item(1, description="あ" * 2000)]},
    "description_2001": {"task": "synopsis", "items": [item(1, description="あ" * 2001)]},
    "title_blank": {"task": "synopsis", "items": [{"id": "a", "title": " \u3000\u200b\n"}]},
    "author_blank_description_blank": {"task": "synopsis", "items": [item(1, author="\ufeff", description="  ")]},
    "title_blank_around_text": {"task": "synopsis", "items": [{"id": "a", "title": " \u200bナルト "}]},
    "invalid_then_duplicate_id": {"task": "synopsis", "items": [{"id": "a b", "title": "x"}, {"id": "a b", "title": "y"}, {"id": "ok", "title": "z"}, {"id": "ok", "title": "w"}]},
    "everything_wrong": {"task": "x", "language": 3, "items": [{"id": "a", "title": ""}, {"id": "a", "title": 1, "x": 1}, None], "extra": True},
}

JOB_BODY_CASES = {
    "synopsis_ja": {"task": "synopsis", "item": item(1, author="尾田栄一郎")},
    "synopsis_en_description": {"task": "synopsis", "language": "en", "item": item(2, description="A boy sets out to sea.")},
    "enrich_zh": {"task": "enrich", "language": "zh", "item": item(3)},
    "enrich_sanitized_fields": {"task": "enrich", "item": {"id": "x", "title": "  ワンピース\u200b  ", "author": "尾田\u3000栄一郎 ", "description": "か\u3099ん\n\n\nば"}},
    "long_description": {"task": "synopsis", "item": item(4, description="海" * 2000)},
    "language_unknown": {"task": "synopsis", "language": "fr", "item": item(5)},
    "language_null": {"task": "synopsis", "language": None, "item": item(6)},
    "author_null": {"task": "enrich", "item": item(7, author=None, description=None)},
}


def build():
    suites = {}
    suites["check"] = [vec(n, {"message": m}, ref.check_report(m)) for n, m in CHECK_CASES.items()] + SPEC_ONLY_CHECK
    suites["policy"] = [
        vec(n, {"policy": p, "message": m}, ref.check_report(m, p)) for n, p, m in POLICY_CASES
    ] + SPEC_ONLY_POLICY
    suites["sanitize"] = [vec(n, m, ref.sanitize(m)) for n, m in SANITIZE_CASES.items()]
    suites["estimate"] = [vec(n, m, ref.estimate(m)) for n, m in ESTIMATE_CASES.items()]
    suites["cache_key"] = [vec(n, b, ref.cache_key(b)) for n, b in CACHE_CASES.items()] + [
        vec("body_is_array", [1, 2], ref.cache_key([1, 2])),
        vec("body_is_string", "body", ref.cache_key("body")),
        vec("body_is_null", None, ref.cache_key(None)),
    ] + SPEC_ONLY_CACHE
    suites["body"] = [vec(n, b, ref.body_report(b)) for n, b in BODY_CASES.items()]
    suites["contract"] = [vec(n, d, ref.validate(d)) for n, d in CONTRACT_CASES.items()]
    suites["precheck"] = [vec(n, i, ref.precheck(i)) for n, i in precheck_cases().items()]
    suites["screen"] = [vec(n, d, ref.screen(d)) for n, d in screen_cases().items()]
    suites["job"] = [vec(n, d, ref.validate_job(d)) for n, d in JOB_CASES.items()]
    suites["job_body"] = [vec(n, i, ref.job_body_report(i)) for n, i in JOB_BODY_CASES.items()]
    suites["continuation"] = [vec(n, i, ref.continuation(i)) for n, i in CONTINUATION_CASES.items()]
    suites["seam"] = [vec(n, i, ref.seam(i)) for n, i in SEAM_CASES.items()]
    suites["calibrated"] = [vec(n, i, ref.calibrated(i)) for n, i in CALIBRATED_CASES.items()]
    for vectors in suites.values():
        for v in vectors:
            if v.get("by") != "spec":
                assert_unicode14_safe(v["name"], v["input"])
    return suites


def render(vectors):
    lines = [json.dumps(v, ensure_ascii=False, separators=(",", ":")) for v in vectors]
    return "\n".join(lines) + "\n"


def main(argv):
    check_only = "--check" in argv
    suites = build()
    stale = []
    total = 0
    for suite, vectors in suites.items():
        names = [v["name"] for v in vectors]
        dupes = {n for n in names if names.count(n) > 1}
        if dupes:
            sys.exit(f"{suite}: duplicate vector names {sorted(dupes)}")
        total += len(vectors)
        path = HERE / f"{suite}.jsonl"
        text = render(vectors)
        if check_only:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(path.name)
        else:
            path.write_text(text, encoding="utf-8")
        print(f"{suite:10} {len(vectors):4} vectors", file=sys.stderr)
    print(f"{'total':10} {total:4} vectors", file=sys.stderr)
    if stale:
        sys.exit(
            f"stale corpus files (Python reference disagrees or cases changed): {', '.join(stale)}; "
            "run python3 tests/corpus/generate.py and review the diff"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
