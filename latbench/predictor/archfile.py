"""Architecture lists a user writes for ``--archs-file`` (``latbench predict``, ``predictor encodings compute``):
one architecture a line, blank lines and lines starting with ``#`` skipped, so a list can carry its own notes.

Each line is checked against the space where it is read, so a typo is named with its file and line number rather
than surfacing later, without either, from whatever consumes the list.
"""

from __future__ import annotations

from pathlib import Path

from latbench.errors import InvalidArchitecture
from latbench.predictor.errors import ArchsFileError
from latbench.spaces import get_space


def read_archs(path: str | Path, space: str) -> list[str]:
    """The architectures ``path`` lists, in order and as written; ``ArchsFileError`` for a missing file, one that
    lists none, or a line that is no architecture of ``space`` (``file:line: why``)."""
    path = Path(path)
    if not path.is_file():
        raise ArchsFileError(f"no such file: {path}")
    s = get_space(space)
    archs: list[str] = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        arch = line.strip()
        if not arch or arch.startswith("#"):
            continue
        try:
            s.canonical(arch)
        except InvalidArchitecture as exc:
            raise ArchsFileError(f"{path}:{number}: {exc}") from None
        archs.append(arch)
    if not archs:
        raise ArchsFileError(f"{path} lists no architecture (blank lines and # comments are skipped)")
    return archs
