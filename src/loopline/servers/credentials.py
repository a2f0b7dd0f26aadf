"""The local servers' per-run credentials: generated passwords, files that only their
owner can read, and URLs with the password masked for output.

A password travels to a server in a file of mode 0600 or in its environment (which only
its user can read), never on its command line, which every user of the machine can read.
"""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit, urlunsplit

from loopline.files import write_private

__all__ = ["masked", "new_password", "write_private"]


def new_password() -> str:
    """A random password of 32 URL-safe characters (usable in a URL as it is)."""
    return secrets.token_urlsafe(24)


def masked(url: str) -> str:
    """``url`` with its password, if it has one, replaced by ``***``.

    >>> masked("redis://:s3cret@127.0.0.1:6379/0")
    'redis://:***@127.0.0.1:6379/0'
    >>> masked("kafka://127.0.0.1:9092")
    'kafka://127.0.0.1:9092'
    """
    try:
        parts = urlsplit(url)
    except ValueError:  # not a URL (an unbalanced "[" ...): nothing of it is shown
        return "***"
    if parts.password is None:
        return url
    userinfo, _, host = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
