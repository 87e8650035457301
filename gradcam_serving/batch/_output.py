"""The job's output folder: what a job writes there, refused when it already holds something, else cleared.

Apart from the pipeline so the driver prepares the folder, after everything else about the job is known
to be sound, in one visit.
"""

from __future__ import annotations

import os

from apache_beam.io.filesystems import FileSystems

__all__ = ["OUTPUT_NAMES", "prepare_output", "refuse_existing"]

OUTPUT_NAMES = ("results-*.parquet", "failed.jsonl", "summary.json", "summary.png", "overlays/**", "heatmaps/**")
"""What a job writes under its output folder (and what ``overwrite`` deletes first)."""


def refuse_existing(output: str, overwrite: bool) -> list[str]:
    """What ``output`` already holds; refused unless ``overwrite``.

    Raises:
        FileExistsError: the folder is not empty and ``overwrite`` is off.
    """
    existing = _existing(output)
    if existing and not overwrite:
        shown = ", ".join(sorted(os.path.basename(p.rstrip("/")) for p in existing)[:5])
        raise FileExistsError(f"output folder {output} is not empty ({shown}...); pass --overwrite to replace "
                              "the results in it, or choose another folder")
    return existing


def prepare_output(output: str, overwrite: bool) -> None:
    """Refuse a folder that already holds anything unless ``overwrite``; then delete a previous job's files only.

    Raises:
        FileExistsError: the folder is not empty and ``overwrite`` is off.
    """
    if refuse_existing(output, overwrite):
        patterns = [FileSystems.join(output, name) for name in OUTPUT_NAMES]
        stale = [m.path for result in FileSystems.match(patterns) for m in result.metadata_list]
        if stale:
            FileSystems.delete(stale)
    if "://" not in output:
        os.makedirs(output, exist_ok=True)


def _existing(output: str) -> list[str]:
    if "://" not in output:
        return [os.path.join(output, name) for name in os.listdir(output)] if os.path.isdir(output) else []
    (result,) = FileSystems.match([FileSystems.join(output, "*")])
    return [m.path for m in result.metadata_list]
