"""Names and files of real executions: WfFormat files read plain or gzip-compressed, and an execution's
application and problem size from its WfInstances-style name (sizes are what leave-one-size-out holds out)."""

from __future__ import annotations

import gzip
import re
import shutil
import tempfile
from pathlib import Path

from planning.errors import ConfigError
from planning.workflow import Workflow


def read_execution(source: str | Path) -> Workflow:
    """A WfFormat execution file, plain (``.json``) or gzip-compressed (``.json.gz``, as WfInstances ships them)."""
    from planning.sources.wfformat import read_wfformat

    path = Path(source)
    if not path.exists():
        raise ConfigError(f"execution file {str(path)!r} does not exist", "give WfFormat JSON files (.json or .json.gz)")
    if path.suffix != ".gz":
        return read_wfformat(path)
    with tempfile.TemporaryDirectory(prefix="planlab-execution-") as tmp:
        plain = Path(tmp) / path.name[:-3]
        try:
            with gzip.open(path, "rb") as packed, open(plain, "wb") as out:
                shutil.copyfileobj(packed, out)
        except (OSError, EOFError) as exc:
            raise ConfigError(f"{path}: not a readable gzip file ({exc})", "give .json.gz files written by gzip") from None
        workflow = read_wfformat(plain)
    workflow.metadata["source_file"] = str(path)
    return workflow


def execution_name(path: str | Path) -> str:
    """A file's execution name: its name without ``.json`` / ``.json.gz``."""
    name = Path(path).name
    for suffix in (".gz", ".json"):
        name = name[: -len(suffix)] if name.endswith(suffix) else name
    return name


def application_of(name: str) -> str:
    """The application of an execution named like WfInstances files: ``srasearch-chameleon-10a-001`` -> ``srasearch``."""
    return execution_name(name).split("-")[0].lower()


def size_of(name: str) -> str:
    """The problem size of a WfInstances execution: its name without the application, the site and the run number.

    ``srasearch-chameleon-10a-003`` -> ``10a``; ``epigenomics-chameleon-hep-1seq-50k-001`` ->
    ``hep-1seq-50k``; ``helloworld-chain-5-chameleon`` -> ``chain-5``.  Executions of one size
    are repeats of one configuration (their spread is the noise floor).
    """
    parts = execution_name(name).split("-")[1:]
    if parts and re.fullmatch(r"\d{3}", parts[-1]):
        parts = parts[:-1]
    return "-".join(p for p in parts if p.lower() != "chameleon").lower() or execution_name(name).lower()
