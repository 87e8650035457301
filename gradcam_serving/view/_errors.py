"""What the page and the server log say when a request fails: one readable sentence, never a trace.

A graph assert arrives as TensorFlow's text: "Graph execution error:", "assertion failed:", the
message split into ``[bracketed] [fragments]`` by ``tf.debugging.Assert``, and a
``[[{{node ...}}]]`` trailer. :func:`readable_assert` keeps only the sentence.

PLACEHOLDER: the CLI's shared cleaner (issue 18, "fast, readable failures") is being written in
parallel; at merge :func:`readable_assert` is to be replaced by it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["ViewError", "readable_assert"]

_TRAILER = re.compile(r"\[\[\{\{(?:function_)?node [^}]*\}\}[^\]]*\]\]")
_PREFIXES = ("Graph execution error:", "assertion failed:")
_FRAGMENT = re.compile(r"\[([^\[\]]*)\]")


def readable_assert(message: str) -> str:
    """A graph error's text as one sentence: no node trailer, no fragment brackets, no prefixes."""
    text = _TRAILER.sub("", message)
    for prefix in _PREFIXES:
        text = text.replace(prefix, " ")
    text = _FRAGMENT.sub(lambda match: match.group(1), text)
    text = " ".join(text.split())
    return re.sub(r"\s+([),.;])", r"\1", re.sub(r"\(\s+", "(", text)) or message.strip()


@dataclass
class ViewError(Exception):
    """A failure the page shows as it is: an HTTP status and a sentence for a person."""

    status: int
    message: str

    def __str__(self) -> str:
        return self.message
