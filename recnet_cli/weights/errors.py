"""The errors of finding, loading and saving weights."""

from __future__ import annotations


class WeightsError(Exception):
    """A model that cannot be found, fetched, read or saved; the message is one line naming it."""


class ModelNotFoundError(WeightsError):
    """No model file, bundled model or Hub file answers to the reference."""
