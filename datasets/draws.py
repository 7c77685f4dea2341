"""Seeded, vectorised draws of columns: categorical codes, text columns, fake names and ids.

Each draw takes the caller's `numpy.random.Generator` and consumes it in a fixed order, so
the same seed gives the same table; each is whole-array numpy (byte matrices viewed as
fixed-width strings for phone numbers and ids), so a million rows cost a few draws per
column, not a million f-strings. The name tables are tuples: their order, and therefore the
seeded draws, never changes.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import pandas as pd

from datasets.base import FloatArray, IntArray

__all__ = [
    "as_str",
    "decode",
    "draw_codes",
    "draw_shared",
    "full_names",
    "id_width",
    "numbered",
    "numbered_array",
    "pattern_strings",
]

FIRST_NAMES_F: Final = (
    "Olivia", "Amelia", "Isla", "Ava", "Mia", "Ivy", "Lily", "Isabella", "Rosie", "Sophia",
    "Grace", "Freya", "Emily", "Ella", "Poppy", "Evie", "Charlotte", "Florence", "Sienna", "Ruby",
    "Sarah", "Emma", "Laura", "Rachel", "Hannah", "Jessica", "Claire", "Helen", "Priya", "Aisha",
    "Fatima", "Zara", "Chloe", "Megan", "Lucy", "Katie", "Nicola", "Joanne", "Susan", "Margaret",
)  # fmt: skip
FIRST_NAMES_M: Final = (
    "Noah", "Oliver", "George", "Arthur", "Leo", "Muhammad", "Harry", "Oscar", "Archie", "Henry",
    "Jack", "Charlie", "Freddie", "Theo", "Thomas", "James", "William", "Alfie", "Joshua", "Jacob",
    "Daniel", "David", "Michael", "Paul", "Mark", "Andrew", "Richard", "Stephen", "Arjun", "Omar",
    "Ryan", "Liam", "Callum", "Connor", "Samuel", "Matthew", "Christopher", "Peter", "John", "Ian",
)  # fmt: skip
LAST_NAMES: Final = (
    "Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Patel",
    "Robinson", "Wright", "Thompson", "Evans", "Walker", "White", "Roberts", "Green", "Hall",
    "Thomas", "Clarke", "Jackson", "Wood", "Harris", "Edwards", "Turner", "Martin", "Cooper",
    "Hill", "Ward", "Hughes", "Moore", "Clark", "King", "Harrison", "Lewis", "Baker", "Lee",
    "Allen", "Morris", "Khan", "Scott", "Watson", "Davis", "Parker", "James", "Bennett", "Young",
    "Phillips", "Richardson", "Mitchell", "Bailey", "Carter", "Cook", "Singh", "Shaw", "Bell",
    "Collins", "Morgan", "Kelly", "Begum", "Miller", "Cox", "Hussain", "Marshall", "Simpson",
    "Price", "Anderson", "Adams", "Wilkinson", "Ali", "Ahmed", "Foster", "Ellis", "Murphy",
    "Chapman", "Mason", "Gray", "Richards", "Webb", "Griffiths", "Hunt", "Palmer", "Campbell",
    "Holmes", "Mills", "Rogers", "Barnes", "Knight", "Matthews", "Barker", "Powell", "Stevens",
    "Kaur", "Fisher", "Butler", "Dixon", "Russell", "Harvey", "Pearson", "Graham", "Nowak",
    "Kowalski", "Okafor", "Mensah", "Nguyen", "Chen", "Wang", "Murray", "Reid", "Stewart",
)  # fmt: skip
INITIALS: Final = "ABCDEFGHIJKLMNOPRSTW"


def draw_codes(rng: np.random.Generator, weights: FloatArray) -> IntArray:
    """One categorical draw per row from row-specific weights (n, k), vectorised."""
    cumulative = np.cumsum(weights, axis=1)
    u = rng.random(len(weights)) * cumulative[:, -1]
    codes = (u[:, None] >= cumulative).sum(axis=1)
    return np.minimum(codes, weights.shape[1] - 1).astype(np.int64)


def draw_shared(rng: np.random.Generator, shares: tuple[float, ...], n: int) -> IntArray:
    """n categorical draws from one set of shares: a search in one cumulative table."""
    cumulative = np.cumsum(shares)
    codes = np.searchsorted(cumulative, rng.random(n) * cumulative[-1], side="right")
    return np.minimum(codes, len(shares) - 1).astype(np.int64)


def decode(codes: IntArray, levels: tuple[str, ...]) -> pd.Series:
    """The text column of `levels` that integer `codes` point at."""
    return as_str(np.asarray(levels, dtype=object)[codes])


def as_str(values: np.ndarray) -> pd.Series:
    """A pandas string column: the dtype pandas itself infers for text, whatever the version."""
    return pd.Series(values, dtype="str")


def full_names(rng: np.random.Generator, is_female: np.ndarray) -> np.ndarray:
    """'First I. Last' built from arrays of parts: no per-row Python, few repeats."""
    n = len(is_female)
    first_f = np.asarray(FIRST_NAMES_F, dtype=object)[rng.integers(0, len(FIRST_NAMES_F), n)]
    first_m = np.asarray(FIRST_NAMES_M, dtype=object)[rng.integers(0, len(FIRST_NAMES_M), n)]
    initial = np.asarray(list(INITIALS), dtype=object)[rng.integers(0, len(INITIALS), n)]
    last = np.asarray(LAST_NAMES, dtype=object)[rng.integers(0, len(LAST_NAMES), n)]
    first = np.where(is_female, first_f, first_m)
    return np.asarray(first + " " + initial + ". " + last, dtype=object)


def pattern_strings(
    rng: np.random.Generator, n: int, pattern: str, alphabets: dict[str, str]
) -> np.ndarray:
    """Fill each placeholder character of `pattern` with a random character of its alphabet.

    Built as an (n, len(pattern)) byte matrix and viewed as fixed-width strings, so a million
    phone numbers cost one random draw per placeholder position, not a million f-strings.
    """
    matrix = np.tile(np.frombuffer(pattern.encode("ascii"), dtype=np.uint8), (n, 1))
    for placeholder, alphabet in alphabets.items():
        positions = [i for i, char in enumerate(pattern) if char == placeholder]
        table = np.frombuffer(alphabet.encode("ascii"), dtype=np.uint8)
        matrix[:, positions] = table[rng.integers(0, len(table), size=(n, len(positions)))]
    return _bytes_to_str(matrix)


def id_width(count: int) -> int:
    """Digits of a zero-padded id for `count` rows: at least 7, so ids look alike."""
    return max(7, len(str(count)))


def numbered(prefix: str, n: int) -> pd.Series:
    """Unique ids in row order: prefix + zero-padded 1-based number (A0000001, ...)."""
    return as_str(numbered_array(prefix, np.arange(n, dtype=np.int64), id_width(n)))


def numbered_array(prefix: str, numbers: IntArray, width: int) -> np.ndarray:
    """prefix + zero-padded (numbers + 1), built digit by digit as a byte matrix."""
    values = numbers.astype(np.int64) + 1
    matrix = np.empty((len(values), len(prefix) + width), dtype=np.uint8)
    matrix[:, : len(prefix)] = np.frombuffer(prefix.encode("ascii"), dtype=np.uint8)
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    matrix[:, len(prefix) :] = (values[:, None] // powers) % 10 + ord("0")
    return _bytes_to_str(matrix)


def _bytes_to_str(matrix: np.ndarray) -> np.ndarray:
    width = matrix.shape[1]
    fixed = np.ascontiguousarray(matrix).view(f"S{width}").ravel()
    return np.asarray(fixed.astype(f"U{width}"), dtype=object)
