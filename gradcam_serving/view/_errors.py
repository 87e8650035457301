"""What the page and the server log say when a request fails: one readable sentence, never a trace.

A graph assert arrives as TensorFlow's text; :func:`gradcam_serving.errors.readable_error` (the CLI's
cleaner too) keeps only the sentence.
"""

from __future__ import annotations

from dataclasses import dataclass

from gradcam_serving.errors import readable_error

__all__ = ["ViewError", "readable_error"]


@dataclass
class ViewError(Exception):
    """A failure the page shows as it is: an HTTP status and a sentence for a person."""

    status: int
    message: str

    def __str__(self) -> str:
        return self.message
