"""Keeping keys out of everything the tool writes: messages, the journal, the report, stdout.

Every key the process holds is registered (:func:`register`: the CLI registers each provider's
key variables that are set, each adapter its own key); :func:`redact` replaces them, and
anything shaped like a Gemini, OpenAI or fal key or a Google OAuth access token, with ``***``.
Project ids and locations (``GOOGLE_CLOUD_PROJECT``, ``GOOGLE_CLOUD_LOCATION``) are not secrets:
they are never registered, and Vertex's messages keep naming them. Text is always redacted before
it is cut (:func:`one_line`): a key echoed near the cut must not leave part of itself behind.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable

#: Keys shorter than this are not redacted by value (a test's "k" would mangle every message).
MIN_SECRET = 8
#: The longest message a provider error carries (characters), after redaction.
MAX_MESSAGE = 400

_PATTERNS = (
    re.compile(r"AIza[0-9A-Za-z_\-]{35}"),  # Google API keys
    re.compile(r"ya29\.[0-9A-Za-z_\-.]+"),  # Google OAuth access tokens (Vertex with ADC)
    re.compile(r"(?<=[?&]key=)[^&\s'\"]+"),  # a key in a URL query
    # OpenAI keys, also as OpenAI masks them; not inside a word ("task-list", "osk-meets-mara")
    re.compile(r"(?<![A-Za-z0-9_\-])sk-[A-Za-z0-9_\-*]{6,}"),
    re.compile(r"(?i)(?<=bearer )\S+"),
    re.compile(r"[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}:[0-9a-fA-F]{16,}"),  # fal
    re.compile(r"(?<=Key )\S+"),  # fal's Authorization header
)
_lock = threading.Lock()
_secrets: set[str] = set()


def register(*values: str | None) -> None:
    """Remember secrets to redact (a fal key ``id:secret`` also by its halves)."""
    with _lock:
        for value in values:
            if not value:
                continue
            value = value.strip()
            for part in (value, *value.split(":")):
                if len(part) >= MIN_SECRET:
                    _secrets.add(part)


def register_environment(names: Iterable[str]) -> None:
    """Register the values of the environment variables ``names`` that are set."""
    register(*(os.environ.get(name) for name in names))


def redact(text: str) -> str:
    """``text`` with every registered secret and every key-shaped string replaced by ``***``."""
    with _lock:
        known = sorted(_secrets, key=len, reverse=True)
    for secret in known:
        if secret in text:
            text = text.replace(secret, "***")
    for pattern in _PATTERNS:
        text = pattern.sub("***", text)
    return text


def one_line(text: str, limit: int = MAX_MESSAGE) -> str:
    """``text`` redacted, on one line, then cut to ``limit`` characters (with "...")."""
    text = " ".join(redact(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
