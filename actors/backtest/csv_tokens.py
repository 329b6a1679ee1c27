"""Word-at-a-time (SWAR) parsing of the decimal tokens of a CSV buffer, bit-identical to ``float()``.

A token of at most 16 bytes is read as two unaligned little-endian 8-byte words ending at its separator;
bytes before its start are masked to '0', the dot is found and removed, and the digits are summed eight at
a time. The mantissa and the count of fractional digits come back with a flag for every token that needs
the slow path (longer, not a plain decimal, or too close to the buffer's start). See ``kline_files`` for
why the result equals ``float()``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt

_U: Final = np.uint64
_DOTS: Final = _U(0x2E2E2E2E2E2E2E2E)
_ONES: Final = _U(0x0101010101010101)
_HIGHS: Final = _U(0x8080808080808080)
_NIBBLE_HI: Final = _U(0xF0F0F0F0F0F0F0F0)
_SIXES: Final = _U(0x0606060606060606)
_THREES: Final = _U(0x3333333333333333)
# Index o = how many leading bytes of a little-endian word lie before the token (are masked to '0').
_KEEP: Final = np.array([(2**64 - 1) ^ (2 ** (8 * o) - 1) for o in range(9)], dtype=np.uint64)
_FILL: Final = np.array([int.from_bytes(b"0" * o, "little") for o in range(9)], dtype=np.uint64)
_POW10_INT: Final = 10 ** np.arange(17, dtype=np.uint64)
POW10_FLOAT: Final = 10.0 ** np.arange(17)
MAX_EXACT: Final = 2**53  # mantissas below this convert to float64 exactly


def words_of(data: bytes) -> npt.NDArray[np.uint64]:
    """Unaligned little-endian 8-byte words starting at every byte offset of ``data``; no copy."""
    return np.ndarray(shape=(len(data) - 7,), dtype=np.uint64, buffer=data, strides=(1,))


def parse_tokens(
    words: npt.NDArray[np.uint64], ends: npt.NDArray[np.intp], lengths: npt.NDArray[np.intp]
) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.intp], npt.NDArray[np.bool_]]:
    """(decimal mantissa, digits after the dot, needs-slow-path) of tokens of at most 16 bytes.

    Each token is read as two words ending at its separator; bytes before its start are masked to '0'.
    """
    near_start = ends < 16  # their window would begin before the buffer: leave them to the slow path
    hi = words[np.maximum(ends - 16, 0)]
    lo = words[np.maximum(ends - 8, 0)]
    before_hi = np.clip(16 - lengths, 0, 8)
    before_lo = np.clip(8 - lengths, 0, 8)
    hi &= _KEEP[before_hi]
    hi |= _FILL[before_hi]
    lo &= _KEEP[before_lo]
    lo |= _FILL[before_lo]
    dot_hi = _first_dot(hi)
    dot_lo = _first_dot(lo)
    has_hi = dot_hi != 0
    has_lo = dot_lo != 0
    hi ^= (dot_hi >> _U(7)) * _U(0x1E)  # '.' ^ 0x1E == '0': the dot reads as a zero digit, removed below
    lo ^= (dot_lo >> _U(7)) * _U(0x1E)
    bad = _not_digits(hi) | _not_digits(lo) | (has_hi & has_lo) | (lengths > 16) | (lengths == 0) | near_start
    value = _eight_digits(hi) * _U(100_000_000) + _eight_digits(lo)
    dot_byte = (np.frexp((dot_hi | dot_lo).astype(np.float64))[1] - 8) >> 3
    decimals = np.where(has_lo, 7 - dot_byte, np.where(has_hi, 15 - dot_byte, 0))
    scale = _POW10_INT[decimals]
    # value = q·10^(d+1) + r with the dot's zero at 10^d; the true mantissa is q·10^d + r.
    mantissa = np.where(has_hi | has_lo, value - value // (scale * _U(10)) * (_U(9) * scale), value)
    return mantissa, decimals, bad


def _first_dot(word: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """Lowest set bit marking the first '.' byte (0x80 at that byte), 0 when there is none."""
    x = word ^ _DOTS
    marks = (x - _ONES) & ~x & _HIGHS
    return marks & (~marks + _U(1))


def _not_digits(word: npt.NDArray[np.uint64]) -> npt.NDArray[np.bool_]:
    result: npt.NDArray[np.bool_] = (
        (word & _NIBBLE_HI) | (((word + _SIXES) & _NIBBLE_HI) >> _U(4))
    ) != _THREES
    return result


def _eight_digits(word: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """Value of eight ASCII digits, first digit in the lowest byte."""
    word = (word & _U(0x0F0F0F0F0F0F0F0F)) * _U(2561) >> _U(8)
    word = (word & _U(0x00FF00FF00FF00FF)) * _U(6553601) >> _U(16)
    return (word & _U(0x0000FFFF0000FFFF)) * _U(42949672960001) >> _U(32)
