"""The package's two exceptions, in a module that imports nothing, so that the command line can
name them (and answer ``--help``) without importing torch."""

from __future__ import annotations


class DataError(ValueError):
    """Bad input data. The message names the file, the field and what was expected."""

    def __init__(self, source: str, field_name: str, expected: str, found: str | None = None):
        msg = f"{source}: field {field_name!r}: expected {expected}"
        if found is not None:
            msg += f", found {found}"
        super().__init__(msg)
        self.source, self.field, self.expected, self.found = source, field_name, expected, found


class NonFiniteLoss(RuntimeError):
    """A loss term became NaN or inf; training stopped and the best weights were kept."""
