"""Moving files: progress lines, streaming bodies, packing a file or folder as tar.gz.

Uploads pass an open file as the request body (with its ``Content-Length``),
so a large file is streamed from disk in blocks and never read into memory;
downloads are copied to disk in 1 MiB chunks through a ``.part`` file that is
renamed into place once complete.
"""

import gzip
import os
import stat
import sys
import tarfile
import tempfile
import time
from typing import IO, Any, BinaryIO, Callable, List, Optional, TextIO, Tuple

__all__ = ["Progress", "CountingReader", "copy_to_file", "pack_path", "human_size", "CHUNK"]

#: Bytes read or written at a time.
CHUNK = 1 << 20


def human_size(size: float) -> str:
    """``1536`` → ``"1.5 KB"`` (powers of 1024)."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(size) < 1024 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TB"  # pragma: no cover


class Progress:
    """Prints a line per file with a text bar of bytes done over the total.

    Each finished file prints ``Uploaded a/b.txt (2/5, 1.2 MB)  [######-------]
    30%  3.4 MB / 11.2 MB``. On a terminal the bar is also redrawn in place
    (``\r``) while a large file streams.

    Args:
        verb: ``Uploading`` or ``Downloading``.
        files: How many files will be moved.
        total: Their size in bytes.
        enabled: Print nothing when False.
        out: Where to print (default ``sys.stdout``).
    """

    WIDTH = 20

    def __init__(self, verb: str, files: int, total: int, enabled: bool = True,
                 out: Optional[TextIO] = None) -> None:
        self.verb = verb
        self.files = files
        self.total = total
        self.enabled = enabled
        self.out = out or sys.stdout
        self.done_files = 0
        self.done_bytes = 0
        self._file_start = 0
        self._live = enabled and _isatty(self.out)
        self._last_draw = 0.0
        if enabled and files:
            self._print(f"{verb} {files} file(s), {human_size(total)}")

    def bar(self) -> str:
        """The bar as text: ``[####------]  40%  4.0 KB / 10.0 KB``."""
        share = 1.0 if self.total <= 0 else min(1.0, self.done_bytes / self.total)
        filled = int(round(share * self.WIDTH))
        return (f"[{'#' * filled}{'-' * (self.WIDTH - filled)}] {share * 100:3.0f}%  "
                f"{human_size(self.done_bytes)} / {human_size(self.total)}")

    def advance(self, size: int) -> None:
        """Counts ``size`` more bytes; redraws the live bar at most 5 times a second."""
        self.done_bytes += size
        if self._live:
            now = time.monotonic()
            if now - self._last_draw >= 0.2:
                self._last_draw = now
                self.out.write("\r" + self.bar())
                self.out.flush()

    def file_done(self, path: str, size: int, skipped: Optional[str] = None) -> None:
        """A file is finished, or was ``skipped`` (the reason); prints its line."""
        self.done_files += 1
        # The file counts for its size, however much of it was read (a skipped
        # or cut upload), so the bar ends at the total.
        self.done_bytes = self._file_start + size
        self._file_start = self.done_bytes
        if not self.enabled:
            return
        past = self.verb[:-3] + "ed" if self.verb.endswith("ing") else self.verb
        counts = f"({self.done_files}/{self.files}, {human_size(size)})"
        line = f"Skipped {path} {counts}: {skipped}" if skipped is not None \
            else f"{past} {path} {counts}"
        self._print(f"{line}  {self.bar()}")

    def _print(self, line: str) -> None:
        if self._live:
            self.out.write("\r" + " " * (self.WIDTH + 40) + "\r")  # the live bar
        self.out.write(line + "\n")
        self.out.flush()


def _isatty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class CountingReader:
    """A binary file as a request body that reports each block read (for a progress bar).

    ``http.client`` sends a body that has ``read`` block by block; this reads
    up to 1 MiB at a time and calls ``on_read(len(block))``.
    """

    def __init__(self, handle: BinaryIO, on_read: Callable[[int], None]) -> None:
        self._handle = handle
        self._on_read = on_read

    def read(self, size: int = -1) -> bytes:
        block = self._handle.read(CHUNK if size is None or size < 0 else max(size, CHUNK))
        if block:
            self._on_read(len(block))
        return block

    def close(self) -> None:
        self._handle.close()


def copy_to_file(source: Any, target: str, on_write: Optional[Callable[[int], None]] = None
                 ) -> int:
    """Copies a readable stream to ``target`` in chunks, through ``target.part``.

    The folder is created when missing; the file appears only once complete.
    Returns the bytes written.
    """
    folder = os.path.dirname(os.path.abspath(target))
    os.makedirs(folder, exist_ok=True)
    partial = target + ".part"
    written = 0
    try:
        with open(partial, "wb") as out:
            while True:
                block = source.read(CHUNK)
                if not block:
                    break
                out.write(block)
                written += len(block)
                if on_write is not None:
                    on_write(len(block))
        os.replace(partial, target)
    except BaseException:
        try:
            os.remove(partial)
        except OSError:
            pass
        raise
    return written


def _regular_files(path: str) -> List[Tuple[str, str]]:
    """``(relative /-path, full path)`` of the regular files under a folder, sorted;
    symlinks are not followed."""
    found = []
    for root, dirs, files in os.walk(path, followlinks=False):
        dirs.sort()
        for name in files:
            full = os.path.join(root, name)
            if stat.S_ISREG(os.lstat(full).st_mode):
                found.append((os.path.relpath(full, path).replace(os.sep, "/"), full))
    return sorted(found)


def pack_path(path: str) -> Tuple[IO[bytes], int, List[str]]:
    """Packs a file (as its base name) or a folder's files (relative to it) as tar.gz.

    No ignore rules are applied (the server applies its snapshot rules).
    Entries are sorted with no times or owners. Returns ``(temporary file at
    position 0, its size, the paths packed)``.
    """
    if os.path.isdir(path):
        entries = _regular_files(path)
    elif os.path.isfile(path):
        entries = [(os.path.basename(os.path.abspath(path)), path)]
    else:
        raise FileNotFoundError(f"{path!r} is neither a file nor a folder")
    if not entries:
        raise ValueError(f"{path!r} holds no files")
    target = tempfile.TemporaryFile()
    with gzip.GzipFile(filename="", fileobj=target, mode="wb", mtime=0, compresslevel=6) as gz:
        with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for rel, full in entries:
                info = tarfile.TarInfo(rel)
                info.mtime = 0
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                st = os.stat(full)
                info.size = st.st_size
                info.mode = 0o755 if st.st_mode & 0o111 else 0o644
                with open(full, "rb") as handle:
                    tar.addfile(info, handle)
    size = target.tell()
    target.seek(0)
    return target, size, [rel for rel, _ in entries]
