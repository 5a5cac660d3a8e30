"""Argument checks shared by the package: each raises ValueError saying what was wrong and what
the argument accepts. (Notebook *parameters* are checked by `aae.params`, before anything runs.)"""
from __future__ import annotations

import math
import numbers

import numpy as np

__all__ = ["positive_int", "non_negative_int", "positive", "non_negative", "fraction",
           "one_of"]


def _is_int(value):
    return isinstance(value, (numbers.Integral, np.integer)) and not isinstance(value, bool)


def positive_int(name, value):
    """`value` as an int, if it is an integer >= 1."""
    if not _is_int(value) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}.")
    return int(value)


def non_negative_int(name, value, what="the number"):
    """`value` as an int, if it is an integer >= 0."""
    if not _is_int(value) or value < 0:
        raise ValueError(f"{name} ({what}) must be an integer >= 0, got {value!r}.")
    return int(value)


def _real(value):
    return (isinstance(value, (numbers.Real, np.floating)) and not isinstance(value, bool)
            and math.isfinite(value))


def positive(name, value, hint=""):
    """`value` as a float, if it is a finite number > 0; `hint` says what it is."""
    if not _real(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}.{hint}")
    return float(value)


def non_negative(name, value, hint=""):
    """`value` as a float, if it is a finite number >= 0."""
    if not _real(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}.{hint}")
    return float(value)


def fraction(name, value, hint=""):
    """`value` as a float, if it lies strictly between 0 and 1."""
    if not _real(value) or not 0.0 < value < 1.0:
        raise ValueError(f"{name} must lie strictly between 0 and 1, got {value!r}.{hint}")
    return float(value)


def one_of(name, value, choices, hint=""):
    """`value`, if it is one of `choices`."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}.{hint}")
    return value
