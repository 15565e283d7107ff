"""One exception hierarchy whose messages a user can act on.

Every error netvigil raises on purpose derives from NetvigilError. Its str() is one line
saying what happened, where (file:line, key, URL...) and, when useful, what to do. The CLI
prints that line and exits non-zero instead of showing a traceback.
"""

from __future__ import annotations


class NetvigilError(Exception):
    """Base class. `where` names the file, line, key or address the error is about."""

    exit_code = 1

    def __init__(self, message: str, *, where: str | None = None, hint: str | None = None):
        self.message = message
        self.where = where
        self.hint = hint
        super().__init__(str(self))

    def __str__(self) -> str:
        text = f"{self.where}: {self.message}" if self.where else self.message
        if self.hint:
            text += f" ({self.hint})"
        return text


class UsageError(NetvigilError):
    """A wrong command-line argument: unknown service, unreadable file, bad URL."""

    exit_code = 2


class ConfigError(NetvigilError):
    """A broken configuration or scenario file (names the key and line)."""

    exit_code = 2


class MeasurementError(NetvigilError):
    """A measurement that does not follow the data format."""


class IngestError(NetvigilError):
    """A corrupt or truncated input file."""


class StoreError(NetvigilError):
    """The store could not be opened, read or written."""


class AnalysisUnavailable(NetvigilError):
    """The analysis process is starting, restarting or has failed: reads answer 503."""


class LabError(NetvigilError):
    """The lab could not build, run or tear down its topology."""


class PrerequisiteError(LabError):
    """Something the lab or the browser needs is missing (root, namespaces, a binary)."""


class Rejected(Exception):
    """Bad input over HTTP: `str()` is the one-line reason sent back with the 4xx `status`.

    Apart from NetvigilError on purpose: it carries its own HTTP status and is answered (and
    counted as a rejection) by the collector's handler; a NetvigilError reaching a route is
    answered by its exit code (400 or 500)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status
