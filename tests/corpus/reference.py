"""An independent implementation of SPEC.md, in Python's standard library.

It is the second opinion behind the conformance corpus: generate.py runs every
case through these functions and writes the expected answers, and
`generate.py --check` fails when the committed corpus and this implementation
disagree. It is written from SPEC.md (not from the Rust code): `re` decides
`\\b`, `unicodedata` decides categories and NFC, `json.dumps` decides the
cache-key text.
"""

import hashlib
import json
import math
import re
import unicodedata

# SPEC 3
MAX_MESSAGE_BYTES = 16_384
MAX_CONTROL_RATIO = 0.05
DISALLOWED = [
    r"<script\b",
    r"javascript:",
    r"\{\{.*\}\}",
    r"__import__",
    r"os\.system",
    r"subprocess\.",
]
DEFAULT_POLICY = {
    "maxMessageBytes": MAX_MESSAGE_BYTES,
    "disallowedPatterns": DISALLOWED,
    "maxControlRatio": MAX_CONTROL_RATIO,
}


def _category_is_control(ch):
    return unicodedata.category(ch).startswith("C") and ch not in "\n\r\t"


def check(message, policy=None):
    """(code, detail) of the first failing check, or (None, None)."""
    p = {**DEFAULT_POLICY, **(policy or {})}
    n_bytes = len(message.encode("utf-8"))
    if n_bytes > p["maxMessageBytes"]:
        return "too_large", (
            f"message is {n_bytes} bytes in UTF-8, over the limit of {p['maxMessageBytes']} bytes"
        )
    if "\x00" in message:
        return "null_byte", "message contains a null character (U+0000)"
    for source in p["disallowedPatterns"]:
        if re.search(source, message, re.IGNORECASE):
            return "disallowed_pattern", f"message contains the disallowed pattern {source}"
    controls = sum(1 for ch in message if _category_is_control(ch))
    ratio = p["maxControlRatio"]
    if controls > len(message) * ratio:
        return "control_chars", (
            f"message has {controls} control or unassigned code points out of {len(message)}, "
            f"over the allowed ratio of {float(ratio)}"
        )
    cjk = any(
        "\u4e00" <= c <= "\u9fff" or "\u3040" <= c <= "\u309f" or "\u30a0" <= c <= "\u30ff"
        for c in message
    )
    cyrillic = any("\u0400" <= c <= "\u04ff" for c in message)
    if cjk and cyrillic:
        return "mixed_script", "message mixes CJK (kana or ideographs) and Cyrillic characters"
    return None, None


# SPEC 4
_REMOVED = re.compile("[\u200b-\u200f\u2028-\u202f\ufeff]")
_WHITESPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680"
    + "".join(chr(c) for c in range(0x2000, 0x200B))
    + "\u2028\u2029\u202f\u205f\u3000"
)


def sanitize(message):
    cleaned = _REMOVED.sub("", message)
    cleaned = unicodedata.normalize("NFC", cleaned)
    return cleaned.strip(_WHITESPACE)


# SPEC 5
def estimate(text):
    jp = sum(1 for c in text if "\u3000" <= c <= "\u9fff")
    runs = re.findall(r"[A-Za-z]+", text)
    letters = sum(len(r) for r in runs)
    other = len(text) - jp - letters
    return int(jp * 1.5 + len(runs) * 0.75 + other * 0.5)


def check_report(message, policy=None):
    code, detail = check(message, policy)
    return {
        "valid": code is None,
        "code": code,
        "detail": detail,
        "sanitized": sanitize(message),
        "estimatedTokens": estimate(message),
    }


# SPEC 7
def error(code, message):
    return {"error": {"code": code, "message": message}}


def cache_key(body):
    if not isinstance(body, dict):
        return error("invalid_body", "a Claude body must be a JSON object")
    stable = {
        "system": body.get("system") or "",
        "messages": body.get("messages") or [],
        "max_tokens": body.get("max_tokens") or 4096,
    }
    payload = json.dumps(stable, sort_keys=True, ensure_ascii=False)
    return {"cacheKey": hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]}


# SPEC 6 and 8
DEFAULT_SYSTEM_PROMPT = (
    "You are MangaAssist, the shop assistant of an online manga store in Japan. "
    "Help customers discover series and volumes, answer questions about titles, authors, "
    "genres, formats and orders, and suggest what to read next. Reply in the customer's "
    "language; in Japanese, use polite keigo. Refer only to titles, ISBNs and prices you "
    "have been given, and say so plainly when you do not know."
)
CATALOG = {
    "sonnet": {"id": "anthropic.claude-3-sonnet-20240229-v1:0", "max_tokens": 4096, "temperature": 0.3},
    "haiku": {"id": "anthropic.claude-3-haiku-20240307-v1:0", "max_tokens": 2048, "temperature": 0.2},
}
AUTO_FAST_MAX_TOKENS = 200

# Current Claude models on Bedrock (docs/models.md): base id, geographies
# with an inference profile, max_tokens, temperature.
CURRENT_MODELS = {
    "sonnet": ("anthropic.claude-sonnet-4-6", ["global", "us", "eu", "jp"], 4096, 0.3),
    "opus": ("anthropic.claude-opus-4-6-v1", ["global", "us", "eu", "jp", "apac"], 4096, 0.3),
    "haiku": ("anthropic.claude-haiku-4-5-20251001-v1:0", ["global", "us", "eu"], 2048, 0.2),
}
PRESETS = ["spec", "current-global", "current-us", "current-eu", "current-jp"]


def preset(name):
    """A catalog preset; a model without a profile in the geography goes global."""
    if name == "spec":
        return CATALOG
    if name not in PRESETS:
        return None
    geography = name.removeprefix("current-")
    return {
        key: {"id": f"{geography if geography in geos else 'global'}.{base}", "max_tokens": mt, "temperature": t}
        for key, (base, geos, mt, t) in CURRENT_MODELS.items()
    }


def select_model(preference, message):
    if preference == "fast":
        return "haiku"
    if preference == "quality":
        return "sonnet"
    return "haiku" if estimate(message) <= AUTO_FAST_MAX_TOKENS else "sonnet"


def build_messages(message, history):
    """Last 10 turns, leading assistant turns dropped, same-role runs joined."""
    out = []
    for turn in history[-10:] + [{"role": "user", "content": message}]:
        if not out and turn["role"] == "assistant":
            continue
        if out and out[-1]["role"] == turn["role"]:
            out[-1]["content"] += "\n\n" + turn["content"]
        else:
            out.append({"role": turn["role"], "content": turn["content"]})
    return out


def body_report(inp):
    message = inp["message"]
    catalog = CATALOG
    if inp.get("catalog") is not None:
        catalog = preset(inp["catalog"])
        if catalog is None:
            return error("invalid_catalog", f'no catalog preset "{inp["catalog"]}"; the presets are {", ".join(PRESETS)}')
    history = inp.get("history", [])
    for i, turn in enumerate(history):
        if turn["role"] not in ("user", "assistant"):
            return error(
                "invalid_history",
                f'history turn {i} has role "{turn["role"]}"; expected "user" or "assistant"',
            )
    key = select_model(inp.get("modelPreference", "auto"), message)
    spec = catalog[key]
    max_tokens = inp.get("maxTokens", spec["max_tokens"])
    temperature = inp.get("temperature", spec["temperature"])
    if max_tokens == 0:
        return error("invalid_argument", "maxTokens must be at least 1")
    if not 0 <= temperature <= 1:
        return error("invalid_argument", f"temperature must be between 0 and 1, got {float(temperature)}")
    body = {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": max_tokens,
        "temperature": temperature,
        "system": inp.get("system", DEFAULT_SYSTEM_PROMPT),
        "messages": build_messages(message, history),
    }
    return {"model": {"key": key, "id": spec["id"]}, "body": body, **cache_key(body)}


# Continuing a cut stream
CONTINUE_PROMPT = (
    "Your previous reply was cut off in transit. Continue it "
    "from exactly where it stopped, in the same language and style: do not repeat any of it, "
    "do not add a preamble, and do not mention the interruption."
)
MAX_SEAM_CHARS = 200
MIN_SEAM_CHARS = 3
# Unicode White_Space (what Rust's trim_end removes; str.isspace adds U+001C-U+001F).
WHITE_SPACE = set(map(chr, [*range(0x09, 0x0E), 0x20, 0x85, 0xA0, 0x1680, *range(0x2000, 0x200B),
                            0x2028, 0x2029, 0x202F, 0x205F, 0x3000]))


def continuation(inp):
    body, sent = inp["body"], inp["sent"]
    so_far = sent.rstrip("".join(WHITE_SPACE))
    # The body as the core reads it: its five fields (others are dropped),
    # the temperature a float.
    out = {"anthropic_version": body["anthropic_version"], "max_tokens": body["max_tokens"],
           "temperature": float(body["temperature"]), "system": body["system"],
           "messages": [{"role": t["role"], "content": t["content"]} for t in body["messages"]]}
    if so_far:
        out["messages"].append({"role": "assistant", "content": so_far})
        if not inp["prefill"]:
            out["messages"].append({"role": "user", "content": CONTINUE_PROMPT})
    return {"body": out}


def seam(inp):
    sent, cont, complete, prefill = inp["sent"], inp["continuation"], inp["complete"], inp["prefill"]
    for n in range(min(len(sent), MAX_SEAM_CHARS), 0, -1):
        suffix = sent[-n:]
        whitespace = all(c in WHITE_SPACE for c in suffix)
        if not (whitespace or (not prefill and n >= MIN_SEAM_CHARS)):
            continue
        if cont.startswith(suffix):
            return {"repeat": suffix, "rest": cont[len(suffix):]}
        if not complete and suffix.startswith(cont):
            return {"wait": True}
    return {"repeat": "", "rest": cont}


# The calibrated estimator
def _is_kana(c):
    o = ord(c)
    return 0x3040 <= o <= 0x30FF or 0x31F0 <= o <= 0x31FF or 0xFF66 <= o <= 0xFF9F


def _is_kanji(c):
    o = ord(c)
    return 0x3400 <= o <= 0x4DBF or 0x4E00 <= o <= 0x9FFF or 0xF900 <= o <= 0xFAFF or 0x20000 <= o <= 0x3134F


def script_counts(text):
    kana = kanji = words = other = 0
    in_word = False
    for c in text:
        if c.isascii() and c.isalpha():
            words += not in_word
            in_word = True
            continue
        in_word = False
        if _is_kana(c):
            kana += 1
        elif _is_kanji(c):
            kanji += 1
        else:
            other += 1
    return {"kana": kana, "kanji": kanji, "latinWords": words, "other": other}


def calibrated(inp):
    cal = inp["calibration"]
    for name in ["kana", "kanji", "latinWord", "other", "perRequest"]:
        w = float(cal[name])
        if not math.isfinite(w) or w < 0:
            return error("invalid_argument", f"calibration {name} must be a finite number of at least 0, got {w!r}")
    counts = script_counts(inp["text"])
    x = (0.0 + cal["kana"] * float(counts["kana"]) + cal["kanji"] * float(counts["kanji"])
         + cal["latinWord"] * float(counts["latinWords"]) + cal["other"] * float(counts["other"]))
    order = [("kana", counts["kana"]), ("kanji", counts["kanji"]), ("latin", counts["latinWords"]), ("other", counts["other"])]
    best = order[0]
    for entry in order[1:]:
        if entry[1] > best[1]:
            best = entry
    return {"estimatedTokens": math.floor(x + 0.5) if x > 0 else 0, "script": best[0], "counts": counts}


# SPEC 2
ACTIONS = ["sendMessage", "getHistory", "clearSession"]
LANGUAGES = ["ja", "en", "zh"]
PREFERENCES = ["auto", "fast", "quality"]
SESSION_ID = re.compile(r"[a-f0-9]{8}-[a-f0-9]{4}-4[a-f0-9]{3}-[89ab][a-f0-9]{3}-[a-f0-9]{12}")


def _type_name(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


def _pointer(parent, key):
    return parent + "/" + key.replace("~", "~0").replace("/", "~1")


def _reporter():
    """A list of violations and the checks that add to it (the chat and the
    job contracts report the same way)."""
    out = []

    def add(path, code, message):
        out.append({"path": path, "code": code, "message": message})

    def want(path, v, kind, article):
        if _type_name(v) != kind:
            add(path, "wrong_type", f"expected {article} {kind}, got {_type_name(v)}")
            return False
        return True

    def unknown(path, obj, allowed):
        for key in sorted(k for k in obj if k not in allowed):
            add(_pointer(path, key), "unknown_property",
                f'unknown property "{key}"; allowed: {", ".join(allowed)}')

    def enum(path, v, allowed):
        if want(path, v, "string", "a"):
            if v in allowed:
                return v
            add(path, "not_in_enum", f'"{v}" is not one of {", ".join(allowed)}')
        return None

    return out, add, want, unknown, enum


def validate(doc):
    out, add, want, unknown, enum = _reporter()

    if not want("", doc, "object", "an"):
        return out
    unknown("", doc, ["action", "data", "metadata"])
    action = None
    if "action" in doc:
        action = enum("/action", doc["action"], ACTIONS)
    else:
        add("/action", "required", "action is required")
    if "data" not in doc:
        add("/data", "required", "data is required")
    elif want("/data", doc["data"], "object", "an"):
        data = doc["data"]
        unknown("/data", data, ["message", "sessionId", "preferredLanguage", "modelPreference"])
        if "message" in data:
            m = data["message"]
            if want("/data/message", m, "string", "a"):
                if len(m) < 1:
                    add("/data/message", "too_short", "message must have at least 1 character")
                elif len(m) > 4000:
                    add("/data/message", "too_long",
                        f"message has {len(m)} characters, over the limit of 4000")
        elif action == "sendMessage":
            add("/data/message", "required", "data.message (for sendMessage) is required")
        if "sessionId" in data:
            s = data["sessionId"]
            if want("/data/sessionId", s, "string", "a") and not SESSION_ID.fullmatch(s):
                add("/data/sessionId", "pattern_mismatch",
                    "sessionId must be a lowercase UUID version 4")
        elif action in ("getHistory", "clearSession"):
            add("/data/sessionId", "required",
                "data.sessionId (for getHistory and clearSession) is required")
        if "preferredLanguage" in data:
            enum("/data/preferredLanguage", data["preferredLanguage"], LANGUAGES)
        if "modelPreference" in data:
            enum("/data/modelPreference", data["modelPreference"], PREFERENCES)
    if "metadata" in doc and want("/metadata", doc["metadata"], "object", "an"):
        meta = doc["metadata"]
        if "clientVersion" in meta:
            want("/metadata/clientVersion", meta["clientVersion"], "string", "a")
        if "timestamp" in meta:
            want("/metadata/timestamp", meta["timestamp"], "integer", "an")
    return out


# Pre-check (the widget's view of a message about to be sent; the service's order)
EMPTY_MESSAGE_DETAIL = "the message is empty once invisible characters and outer whitespace are removed"


def precheck(inp):
    message = inp["message"]
    data = {"message": message}
    if "sessionId" in inp:
        data["sessionId"] = inp["sessionId"]
    if "modelPreference" in inp:
        data["modelPreference"] = inp["modelPreference"]
    violations = validate({"action": "sendMessage", "data": data})
    code, detail = check(message)
    sanitized = sanitize(message)
    preference = inp.get("modelPreference", "auto")
    if preference not in ("auto", "fast", "quality"):
        preference = "auto"
    key = select_model(preference, sanitized)
    if violations:
        refusal = {"code": violations[0]["code"], "detail": violations[0]["message"]}
    elif code is not None:
        refusal = {"code": code, "detail": detail}
    elif sanitized == "":
        refusal = {"code": "empty_message", "detail": EMPTY_MESSAGE_DETAIL}
    else:
        refusal = None
    return {
        "chars": len(message),
        "bytes": len(message.encode("utf-8")),
        "estimatedTokens": estimate(message),
        "sanitized": sanitized,
        "model": {"key": key, "id": CATALOG[key]["id"]},
        "refusal": refusal,
    }


# Screening (SPEC 10: what the service does with a request before anything else)
def screen(doc):
    """The service's outcome for a request document, in its refusal order."""
    violations = validate(doc)
    if violations:
        return {"outcome": "contract", "violations": violations}
    data = doc["data"]
    message = ""
    if doc["action"] == "sendMessage":
        code, detail = check(data["message"])
        if code is not None:
            return {"outcome": "refused", "code": code, "detail": detail}
        message = sanitize(data["message"])
        if not message:
            return {"outcome": "refused", "code": "empty_message", "detail": EMPTY_MESSAGE_DETAIL}
    return {
        "outcome": "accepted",
        "action": doc["action"],
        "sessionId": data.get("sessionId"),
        "message": message,
        "modelPreference": data.get("modelPreference", "auto"),
        "estimatedTokens": estimate(message),
    }


# Batch jobs (the asynchronous path; core/src/jobs.rs)
JOB_TASKS = ["synopsis", "enrich"]
JOB_PROPERTIES = ["task", "language", "items"]
ITEM_PROPERTIES = ["id", "title", "author", "description"]
MAX_JOB_ITEMS = 1000
ITEM_ID = re.compile(r"[A-Za-z0-9._:\-]*")
TASKS = {
    "synopsis": {
        "system": "You write product-page synopses for an online manga store in Japan. "
        "Write about three sentences that make a reader curious, with no spoilers. Use only the "
        "facts given; do not mention prices, stock or release dates.",
        "instruction": "Write the synopsis of this title in {language}.",
        "max_tokens": 400,
        "temperature": 0.3,
    },
    "enrich": {
        "system": "You label manga for an online store's catalog. Answer with one JSON "
        'object and nothing else: {"genres": [at most 3 strings], "audience": "kids" or '
        '"teens" or "adults", "keywords": [at most 5 strings]}. Use only the facts given.',
        "instruction": "Label this title for the catalog; write genres and keywords in {language}.",
        "max_tokens": 300,
        "temperature": 0.0,
    },
}
LANGUAGE_NAMES = {"ja": "Japanese", "en": "English", "zh": "Chinese"}


def validate_job(doc):
    out, add, want, unknown, enum = _reporter()

    def text(path, name, v, limit, prose=True):
        if not want(path, v, "string", "a"):
            return None
        if len(v) == 0:
            add(path, "too_short", f"{name} must have at least 1 character")
            return None
        if len(v) > limit:
            add(path, "too_long", f"{name} has {len(v)} characters, over the limit of {limit}")
            return None
        if prose and not sanitize(v):
            add(path, "too_short", f"{name} is empty once invisible characters and outer whitespace are removed")
            return None
        return v

    if not want("", doc, "object", "an"):
        return out
    unknown("", doc, JOB_PROPERTIES)
    if "task" in doc:
        enum("/task", doc["task"], JOB_TASKS)
    else:
        add("/task", "required", "task is required")
    if "language" in doc:
        enum("/language", doc["language"], LANGUAGES)
    if "items" not in doc:
        add("/items", "required", "items is required")
        return out
    items = doc["items"]
    if _type_name(items) != "array":
        add("/items", "wrong_type", f"expected an array, got {_type_name(items)}")
        return out
    if not items:
        add("/items", "too_short", "items must have at least 1 item")
    elif len(items) > MAX_JOB_ITEMS:
        add("/items", "too_long", f"items has {len(items)} entries, over the limit of {MAX_JOB_ITEMS}")
    seen = {}
    for i, item in enumerate(items):
        path = f"/items/{i}"
        if not want(path, item, "object", "an"):
            continue
        unknown(path, item, ITEM_PROPERTIES)
        if "id" not in item:
            add(path + "/id", "required", "id is required")
        else:
            item_id = text(path + "/id", "id", item["id"], 128, prose=False)
            if item_id is not None:
                if not (ITEM_ID.fullmatch(item_id) and item_id.isascii()):
                    add(path + "/id", "pattern_mismatch",
                        "id may contain only ASCII letters, digits, '.', '_', ':' and '-'")
                elif item_id in seen:
                    add(path + "/id", "duplicate_id", f'id "{item_id}" is also the id of item {seen[item_id]}')
                else:
                    seen[item_id] = i
        for name, limit, needed in (("title", 300, True), ("author", 200, False), ("description", 2000, False)):
            if name in item:
                text(f"{path}/{name}", name, item[name], limit)
            elif needed:
                add(f"{path}/{name}", "required", f"{name} is required")
    return out


def job_message(task, language, item):
    text = TASKS[task]["instruction"].replace("{language}", LANGUAGE_NAMES[language])
    text += "\n\nTitle: " + sanitize(item["title"])
    if item.get("author") is not None:
        text += "\nAuthor: " + sanitize(item["author"])
    if item.get("description") is not None:
        text += "\nDescription: " + sanitize(item["description"])
    return text


def job_body_report(inp):
    language = inp.get("language") or "ja"
    if language not in LANGUAGES:
        return error("invalid_argument", f'language "{language}" is not one of {", ".join(LANGUAGES)}')
    task = TASKS[inp["task"]]
    return body_report({
        "message": job_message(inp["task"], language, inp["item"]),
        "system": task["system"],
        "maxTokens": task["max_tokens"],
        "temperature": task["temperature"],
        "modelPreference": "fast",
    })
