"""The ranges of the command line's flags, as argparse ``type=`` functions that refuse anything else
in one line naming the range: ``argument --seq-len: must be an integer in [1, 10000], got 1000000000``.

Every bound is finite and chosen so that one flag at its bound, the others at their defaults, runs
on a laptop; several at once can still ask for more memory than there is, and the CLI turns that
MemoryError into one line naming the size flags (``Range(..., size=True)``) and their values.
"""
import argparse
import os

from visualize import format_of


def _shown(text, limit=40, quote=True):
    """What the user typed, quoted (unless ``quote`` is False) and cut short, so that a 5000-digit
    number or a control character stays one short line."""
    text = repr(text) if quote else text.strip()
    if not quote and not text.isprintable():
        text = repr(text)
    return text if len(text) <= limit else text[:limit - 4] + "…" + text[-3:]


def _number(value):
    """A bound as the help writes it: 1000000 (not 1e+06), 0.001, 1e-06."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return f"{value:g}" if isinstance(value, float) else str(value)


class Range:
    """argparse type: an int (``kind=int``) or a finite float (``kind=float``) in ``[low, high]``;
    ``low_open`` makes it ``(low, high]``. ``size`` marks a flag that sets how much memory a command
    asks for (named in the CLI's out-of-memory message)."""

    def __init__(self, kind, low, high, *, low_open=False, size=False):
        if kind not in (int, float):
            raise TypeError(f"Range: kind must be int or float, got {kind!r}")
        self.kind, self.low, self.high, self.low_open, self.size = kind, low, high, low_open, size
        self.__name__ = "integer" if kind is int else "number"   # argparse names a type by it

    @property
    def text(self):
        """The range as the messages and help write it: ``[1, 100000]``, ``(0, 10]``."""
        return f"{'(' if self.low_open else '['}{_number(self.low)}, {_number(self.high)}]"

    def __repr__(self):
        return f"{self.__name__} in {self.text}"

    def contains(self, value):
        """Whether the number ``value`` lies in the range."""
        above = value > self.low if self.low_open else value >= self.low
        return above and value <= self.high

    def __call__(self, text):
        word = "integer" if self.kind is int else "number"
        plain = f"an {word}" if self.kind is int else f"a {word}"
        positive = self.low > 0 or (self.low == 0 and self.low_open)
        noun = f"a positive {word}" if positive else plain
        try:
            value = self.kind(text)
        except (ValueError, OverflowError):
            value = None
        if value is None or value != value:   # not a number at all, or NaN
            shown = _shown(text) if value is None else "nan"
            raise argparse.ArgumentTypeError(f"must be {noun}, got {shown} (the range is {self.text})")
        if not self.contains(value):
            typed = _shown(text, quote=False)   # "1e-320" as typed, not the float it rounds to
            if positive and value <= 0:
                raise argparse.ArgumentTypeError(f"must be {noun}, got {typed} (the range is {self.text})")
            raise argparse.ArgumentTypeError(f"must be {plain} in {self.text}, got {typed}")
        return value


def integer(low, high, size=False):
    """An int flag in ``[low, high]``."""
    return Range(int, low, high, size=size)


def number(low, high, size=False):
    """A float flag in ``(low, high]`` for ``low == 0`` (a positive number), else ``[low, high]``."""
    return Range(float, low, high, low_open=low == 0, size=size)


SEED = integer(0, 2**32 - 1)        # numpy's seeds; the same seed gives the same run
THREADS = integer(1, 256)           # BLAS threads


def output_file(*formats):
    """argparse type: a path to write whose suffix names one of ``formats`` (``"svg"``, ``"png"``,
    ``"pdf"``, ``"dot"``, ``"html"``) and whose directory exists, checked before any work."""
    suffixes = [f".{f}" for f in formats if f != "html"] + ([".gv"] if "dot" in formats else []) + \
        ([".html"] if "html" in formats else [])
    allowed = ", ".join(suffixes[:-1]) + f" or {suffixes[-1]}" if len(suffixes) > 1 else suffixes[0]

    def output(text):
        try:
            format = format_of(text)
        except ValueError:
            format = None
        if format not in formats:
            raise argparse.ArgumentTypeError(f"the file name must end in {allowed}, got {_shown(text)}")
        folder = os.path.dirname(text) or "."
        if not os.path.isdir(folder):
            raise argparse.ArgumentTypeError(f"directory {_shown(folder)} does not exist (for "
                                             f"{_shown(text)})")
        return text
    output.__name__ = "output file"
    return output


def size_flags(parser):
    """``[(flag, dest)]`` of ``parser``'s options whose type is a ``Range`` marked ``size``."""
    return [(action.option_strings[-1] if action.option_strings[-1].startswith("--")
             else action.option_strings[0], action.dest)
            for action in parser._actions
            if isinstance(action.type, Range) and action.type.size and action.option_strings]
