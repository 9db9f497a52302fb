"""Where and why bytes are not JSON, in Sentinel's own words.

Only run once the fast decoder has refused a payload as malformed (or too deeply nested): the position a person
reads must not depend on a dependency's wording, which changes between releases (msgspec 0.23 stopped raising
UnicodeDecodeError for bad UTF-8). :func:`locate` scans the bytes with an explicit stack (no recursion, so a
nesting bomb costs one pass) against RFC 8259 and returns the byte offset and what is wrong there.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Deeper than this is refused (no message of the contract nests more than four levels).
MAX_DEPTH = 64

_WS = b" \t\n\r"
_DIGITS = b"0123456789"
_HEX = b"0123456789abcdefABCDEF"
_ESCAPES = b'"\\/bfnrt'
_LITERALS = (b"true", b"false", b"null")


@dataclass(frozen=True, slots=True)
class JsonFault:
    """``at``: the byte offset; ``what``: the words after ``malformed JSON at byte N:``. ``early``: the input ends
    before the JSON does (then ``at`` is its length)."""

    at: int
    what: str
    early: bool = False

    def describe(self) -> str:
        if self.early:
            return f"malformed JSON: input ends early at byte {self.at}"
        if self.what == "invalid UTF-8":
            return f"malformed JSON: invalid UTF-8 at byte {self.at}"
        return f"malformed JSON at byte {self.at}: {self.what}"


class _Fault(Exception):
    def __init__(self, fault: JsonFault) -> None:
        self.fault = fault


def _early(raw: bytes) -> _Fault:
    return _Fault(JsonFault(len(raw), "input ends early", early=True))


def _bad(at: int, what: str) -> _Fault:
    return _Fault(JsonFault(at, what))


def _skip_ws(raw: bytes, i: int) -> int:
    n = len(raw)
    while i < n and raw[i] in _WS:
        i += 1
    return i


def _string(raw: bytes, i: int) -> int:
    """``raw[i]`` is the opening quote; return the offset after the closing one."""
    n = len(raw)
    i += 1
    while True:
        if i >= n:
            raise _early(raw)
        c = raw[i]
        if c == 0x22:
            return i + 1
        if c < 0x20:
            raise _bad(i, "invalid character")
        if c == 0x5C:
            if i + 1 >= n:
                raise _early(raw)
            e = raw[i + 1]
            if e == 0x75:  # \uXXXX
                for k in range(i + 2, i + 6):
                    if k >= n:
                        raise _early(raw)
                    if raw[k] not in _HEX:
                        raise _bad(k, "invalid escape character in string")
                i += 6
                continue
            if e not in _ESCAPES:
                raise _bad(i + 1, "invalid escape character in string")
            i += 2
            continue
        i += 1


def _digits(raw: bytes, i: int) -> int:
    n = len(raw)
    if i >= n:
        raise _early(raw)
    if raw[i] not in _DIGITS:
        raise _bad(i, "invalid number")
    while i < n and raw[i] in _DIGITS:
        i += 1
    return i


def _number(raw: bytes, i: int) -> int:
    n = len(raw)
    if raw[i] == 0x2D:  # -
        i += 1
    if i >= n:
        raise _early(raw)
    if raw[i] == 0x30:  # a leading zero stands alone
        i += 1
        if i < n and raw[i] in _DIGITS:
            raise _bad(i, "invalid number")
    else:
        i = _digits(raw, i)
    if i < n and raw[i] == 0x2E:
        i = _digits(raw, i + 1)
    if i < n and raw[i] in b"eE":
        i += 1
        if i < n and raw[i] in b"+-":
            i += 1
        i = _digits(raw, i)
    return i


def _scalar(raw: bytes, i: int) -> int:
    c = raw[i]
    if c == 0x22:
        return _string(raw, i)
    if c == 0x2D or c in _DIGITS:
        return _number(raw, i)
    for word in _LITERALS:
        if raw[i] == word[0]:
            end = i + len(word)
            if raw[i:end] == word:
                return end
            if word.startswith(raw[i:end]):  # a prefix of the word, then the input ends
                raise _early(raw)
            break
    raise _bad(i, "invalid character")


def _scan(raw: bytes) -> None:
    n = len(raw)
    stack: list[int] = []  # 0x7B (object) or 0x5B (array)
    i = 0
    expect_value = True
    while True:
        i = _skip_ws(raw, i)
        if expect_value:
            if i >= n:
                raise _early(raw)
            c = raw[i]
            if c in b"[{":
                if len(stack) >= MAX_DEPTH:
                    raise _bad(i, f"nested more than {MAX_DEPTH} levels deep")
                stack.append(c)
                i = _skip_ws(raw, i + 1)
                if i >= n:
                    raise _early(raw)
                if raw[i] == (0x5D if c == 0x5B else 0x7D):  # empty container
                    stack.pop()
                    i += 1
                    expect_value = False
                    continue
                if c == 0x7B:
                    i = _key(raw, i)
                continue
            i = _scalar(raw, i)
            expect_value = False
            continue
        if not stack:
            if i < n:
                raise _bad(i, "trailing characters")
            return
        if i >= n:
            raise _early(raw)
        top = stack[-1]
        close = 0x5D if top == 0x5B else 0x7D
        c = raw[i]
        if c == close:
            stack.pop()
            i += 1
            continue
        if c != 0x2C:
            raise _bad(i, f"expected ',' or '{chr(close)}'")
        i = _skip_ws(raw, i + 1)
        if i >= n:
            raise _early(raw)
        if raw[i] == close:
            raise _bad(i, f"trailing comma in {'array' if top == 0x5B else 'object'}")
        if top == 0x7B:
            i = _key(raw, i)
        expect_value = True


def _key(raw: bytes, i: int) -> int:
    """A key and its colon at ``i``; return the offset where the value starts."""
    if raw[i] != 0x22:
        raise _bad(i, "object keys must be strings")
    i = _skip_ws(raw, _string(raw, i))
    if i >= len(raw):
        raise _early(raw)
    if raw[i] != 0x3A:
        raise _bad(i, "expected ':'")
    return i + 1


def locate(raw: bytes) -> JsonFault | None:
    """The first fault of ``raw`` as JSON (invalid UTF-8 first), or None when it is well-formed JSON nested at
    most :data:`MAX_DEPTH` levels."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return JsonFault(exc.start, "invalid UTF-8")
    try:
        _scan(raw)
    except _Fault as fault:
        return fault.fault
    return None
