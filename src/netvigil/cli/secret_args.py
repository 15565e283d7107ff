"""Secrets given to a command: from a file or the environment, never from argv.

A command line is readable by every local user (`ps`, /proc/PID/cmdline) and lands in shell
history, so an option that takes a token or secret as its value is refused with the two ways
that keep it private: a file only its owner can read (`--...-file PATH`, as systemd's
LoadCredential= provides), or an environment variable (readable only by the same user and root).
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

from netvigil.errors import UsageError

MAX_SECRET_FILE = 64 << 10


def refuse_in_argv(option: str, file_option: str, env: str) -> UsageError:
    """The error for a secret given as `option VALUE`."""
    return UsageError(f"{option} VALUE is refused: a command line is visible to every user in `ps`",
                      hint=f"put it in a file readable only by you and give {file_option} PATH, "
                           f"or set the environment variable {env}")


def read_secret_file(path: Path, option: str) -> str:
    """The file's content without surrounding whitespace; a warning if others can read it."""
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            raise UsageError("is not a regular file", where=f"{option} {path}")
        if st.st_size > MAX_SECRET_FILE:
            raise UsageError(f"is {st.st_size} bytes; a secret file holds a token or a few lines",
                             where=f"{option} {path}")
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError("no such file", where=f"{option} {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read it: {getattr(exc, 'strerror', None) or exc}",
                         where=f"{option} {path}") from None
    if stat.S_IMODE(st.st_mode) & 0o077:
        print(f"warning: {path} is readable by other users (mode {stat.S_IMODE(st.st_mode):o}); "
              f"chmod 600 it", file=sys.stderr)
    return text.strip()


def secret_from(file: Path | None, env: str, option: str, *, min_length: int = 0) -> str | None:
    """The secret from `file` if given, else from the environment variable `env`, else None."""
    if file is not None:
        value, where = read_secret_file(file, option), f"{option} {file}"
    else:
        value, where = os.environ.get(env), env
        if value is None:
            return None
        value = value.strip()
    if not value:
        raise UsageError("is empty", where=where)
    if "\n" in value and min_length:
        raise UsageError("holds several lines; a token is one line", where=where)
    if len(value) < min_length:
        raise UsageError(f"the token is {len(value)} characters; use at least {min_length}",
                         where=where, hint="e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))'")
    return value


def token_list(file: Path | None, env: str, option: str) -> list[str]:
    """Several tokens: one a line in `file` (# comments), or comma-separated in `env`."""
    if file is not None:
        lines = read_secret_file(file, option).splitlines()
        return [t.strip() for t in lines if t.strip() and not t.strip().startswith("#")]
    return [t.strip() for t in os.environ.get(env, "").split(",") if t.strip()]
