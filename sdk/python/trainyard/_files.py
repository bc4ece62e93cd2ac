"""Run files on the client side: walking a folder to upload, unpacking an archive."""

import os
import shutil
import tarfile
from typing import BinaryIO, List, Tuple

__all__ = ["walk_folder", "extract_archive"]


def walk_folder(path: str) -> List[Tuple[str, str]]:
    """Every regular file under ``path`` as ``(relative /-path, full path)``, sorted."""
    found = []
    for root, _, files in os.walk(path):
        for name in files:
            full = os.path.join(root, name)
            if os.path.isfile(full):
                found.append((os.path.relpath(full, path).replace(os.sep, "/"), full))
    return sorted(found)


def extract_archive(stream: BinaryIO, out: str, prefix: str = "") -> List[str]:
    """Unpacks a tar.gz read as a stream into ``out``, under ``prefix`` when given.

    Only regular files are written; entries that are absolute or climb out
    with ``..`` are skipped. Returns the paths written.
    """
    written = []
    with tarfile.open(fileobj=stream, mode="r|gz") as archive:
        for member in archive:
            name = member.name
            while name.startswith("./"):
                name = name[2:]
            parts = name.split("/")
            if not name or name.startswith("/") or ".." in parts or not member.isfile():
                continue
            if prefix:
                parts = prefix.split("/") + parts
            target = os.path.join(out, *parts)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            source = archive.extractfile(member)
            if source is None:
                continue
            with source, open(target, "wb") as handle:
                shutil.copyfileobj(source, handle, 1 << 20)
            written.append(target)
    return written
