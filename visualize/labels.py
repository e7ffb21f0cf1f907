"""User text made safe for a picture: names, scopes, loop names, titles and links, whatever they hold.

``dot`` refuses a picture whose labels hold control characters (XML forbids them in SVG, and a NUL
ends dot's strings), Python cannot write a lone surrogate as UTF-8, and ``dot`` reads at most 16384
bytes per string. So every piece of user text goes through here before it reaches the DOT source:

- ``printable``: control characters (C0, DEL, C1) are written out as ``\\xNN`` text, lone surrogates
  and the non-characters U+FFFE/U+FFFF as ``\\uXXXX`` text; everything else is kept as it is.
- ``label_text``: printable and cut to ``LABEL_CHARS`` characters with an ellipsis, for one line of
  a label. A node whose label had to be changed also gets a ``tooltip`` with the whole (printable)
  text, cut only to fit ``TOOLTIP_BYTES``: ``tooltip_text`` writes it with dot's escapes.
- ``url_text``: a link with the same characters (and spaces, quotes, backslashes, angle brackets)
  percent-encoded.

Text that needs none of this comes out unchanged, so ordinary pictures are byte-identical with or
without it.
"""
import re

import graphviz

LABEL_CHARS = 200      # one line of a label: longer text is cut, ending in "…"
TOOLTIP_BYTES = 8000   # a tooltip as written in the DOT text; dot reads at most 16384 bytes a string
URL_BYTES = 8000       # a link as written in the DOT text
ELLIPSIS = "…"

_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
_URL_UNSAFE = re.compile(r'[\x00-\x20\x7f-\x9f\ud800-\udfff\ufffe\uffff"\\<>]')


def _escape(match):
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text):
    """``text`` (made a str) with control characters as ``\\xNN`` and lone surrogates, U+FFFE and
    U+FFFF as ``\\uXXXX`` text: ``"a\\x1bb"`` -> ``"a\\\\x1bb"`` (a backslash, an x, 1, b)."""
    return _UNPRINTABLE.sub(_escape, str(text))


def shorten(text, limit=LABEL_CHARS):
    """``text`` cut to ``limit`` characters, the last one an ellipsis, if it is longer."""
    return text if len(text) <= limit else text[:limit - 1] + ELLIPSIS


def label_text(text):
    """One line of a label: ``printable(text)``, cut to ``LABEL_CHARS``."""
    return shorten(printable(text))


def altered(text):
    """Whether ``label_text`` changes ``text`` (so the label alone does not show all of it)."""
    text = str(text)
    return len(text) > LABEL_CHARS or _UNPRINTABLE.search(text) is not None


def tooltip_text(lines, limit=TOOLTIP_BYTES):
    """``lines`` (a text or a list of them), each ``printable``, one per line, as a DOT string value
    for a ``tooltip``, cut to at most ``limit`` bytes.

    dot unescapes a tooltip twice (as a quoted string, then for ``\\N``, ``\\G``...), so each
    backslash is written as four; quotes are escaped by graphviz when it quotes the value.
    """
    lines = [lines] if isinstance(lines, str) else lines
    out, size = [], 0
    for ch in "\n".join(printable(line) for line in lines):
        piece = "\\\\\\\\" if ch == "\\" else ch
        cost = len(piece.encode("utf-8")) + (ch == '"')
        if size + cost > limit - len(ELLIPSIS.encode("utf-8")):
            out.append(ELLIPSIS)
            break
        out.append(piece)
        size += cost
    return graphviz.nohtml("".join(out))   # quoted even when it looks like <html>


def url_text(url):
    """``url`` with controls, surrogates, spaces, quotes, backslashes and ``<>`` percent-encoded.

    Raises ValueError when the result is longer than ``URL_BYTES`` (a cut link leads nowhere)."""
    text = _URL_UNSAFE.sub(lambda m: "".join(f"%{b:02X}" for b in
                                             m.group().encode("utf-8", "surrogatepass")), str(url))
    if len(text.encode("utf-8")) > URL_BYTES:
        raise ValueError(f"link: a URL of {len(text.encode('utf-8'))} bytes is longer than the "
                         f"{URL_BYTES} a picture can hold: {shorten(printable(url), 60)!r}")
    return text
