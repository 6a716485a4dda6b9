"""Typed errors of sweeplab.

Library code raises these; only the CLI prints them (one line, exit status 2 for
:class:`ConfigError`). Each message names the key, the value and what is allowed, so a
user can fix the input without reading a traceback.
"""

from __future__ import annotations

from typing import Any


def show_value(value: Any) -> str:
    """A value as a user typed it: strings bare (``lp``), everything else as repr."""
    return value if isinstance(value, str) and value and " " not in value else repr(value)


def _rebuild(cls: type, state: dict, args: tuple) -> Exception:
    """Unpickle a sweeplab error without calling its ``__init__``."""
    exc = cls.__new__(cls)
    exc.__dict__.update(state)
    exc.args = args
    return exc


class SweeplabError(Exception):
    """Base class of every error sweeplab raises on purpose.

    Picklable whatever a subclass's ``__init__`` takes, so an error raised in a worker
    process or a Slurm task arrives intact in the process that runs the grid.
    """

    def __reduce__(self):
        return _rebuild, (type(self), dict(self.__dict__), self.args)


class ConfigError(SweeplabError, ValueError):
    """Bad input caught before any work starts.

    ``key`` is the offending parameter (or flag), ``value`` what was given and
    ``allowed`` a short description of the accepted values. ``where`` optionally names
    the context (a run of a grid, a file).
    """

    def __init__(self, key: str, value: Any, allowed: str, where: str | None = None):
        self.key = key
        self.value = value
        self.allowed = allowed
        self.where = where
        super().__init__(self._message())

    def _message(self) -> str:
        prefix = f"{self.where}: " if self.where else ""
        return f"{prefix}invalid {self.key}={show_value(self.value)}: {self.allowed}"

    def located(self, where: str) -> ConfigError:
        """This error with ``where`` (a run of a grid, a file) named in its message."""
        self.where = where
        self.args = (self._message(),)
        return self


class DataNotFoundError(ConfigError):
    """A dataset's files are missing; the message says where sweeplab looked."""

    def __init__(self, dataset: str, looked_in: list[str], hint: str):
        self.looked_in = looked_in
        self.hint = hint
        super().__init__("dataset", dataset, hint)

    def _message(self) -> str:
        places = ", ".join(self.looked_in) if self.looked_in else "(nowhere)"
        prefix = f"{self.where}: " if self.where else ""
        return (f"{prefix}dataset {self.value!r}: files not found; looked in {places}; "
                f"{self.hint}")


class UnknownStudyError(ConfigError):
    """A study name that is not registered; the message says how to name one's own."""

    def __init__(self, name: str, known: list[str]):
        from sweeplab.suggest import did_you_mean

        super().__init__("study", name, "unknown study" + did_you_mean(name, known)
                         + "; known studies: " + ", ".join(sorted(known))
                         + "; a study of your own: ./file.py:function or "
                         "package.module:function")


class InvalidField(ValueError):
    """Raised inside a config validator for a rule that spans fields.

    Pydantic wraps it; :func:`sweeplab.core.config.config_error_from` unwraps it into a
    :class:`ConfigError` that names ``key`` rather than the whole config.
    """

    def __init__(self, key: str, value: Any, allowed: str):
        self.key = key
        self.value = value
        self.allowed = allowed
        super().__init__(f"invalid {key}={show_value(value)}: {allowed}")


class NonFiniteError(SweeplabError, FloatingPointError):
    """Training produced a NaN or infinite value; the run is recorded as failed."""

    def __init__(self, what: str, step: int):
        self.what = what
        self.step = step
        super().__init__(f"{what} became non-finite at step {step}")
