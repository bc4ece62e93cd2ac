"""Source snapshots: the ignore rules and packing a folder as tar.gz.

The rules are the server's (``crates/trainyard-storage``): the defaults
``.git``, ``__pycache__/``, ``*.pyc``, ``.ipynb_checkpoints/``,
``.trainyard/``, ``/outputs/`` and ``/logs/``, followed by the lines of a
``.trainyardignore`` at the root of the source, in gitignore syntax. The
common subset of gitignore is implemented: ``*``, ``?``, ``[...]``, ``**``,
a trailing ``/`` for folders only, a leading (or inner) ``/`` anchoring to
the root, ``!`` negation, ``#`` comments and ``\\`` escapes. As in git, the
last matching line wins, and a path inside an ignored folder stays ignored
whatever a later ``!`` line says. The server applies the rules again, so
this is an optimisation (less to upload), not the authority.
"""

import gzip
import os
import re
import stat
import tarfile
import tempfile
import warnings
from typing import IO, List, NamedTuple, Optional, Pattern, Tuple

__all__ = ["IgnoreRules", "pack_directory", "IGNORE_FILE", "DEFAULT_PATTERNS"]

#: The file at a snapshot's root whose patterns add to the defaults.
IGNORE_FILE = ".trainyardignore"

#: Left out of every snapshot unless ``.trainyardignore`` negates them.
DEFAULT_PATTERNS = (
    ".git",
    "__pycache__/",
    "*.pyc",
    ".ipynb_checkpoints/",
    ".trainyard/",
    "/outputs/",
    "/logs/",
)


class _Rule(NamedTuple):
    regex: Pattern[str]
    negated: bool
    dir_only: bool


def _translate_glob(glob: str) -> str:
    """A gitignore glob (no leading/trailing slash) as a regular expression body."""
    out = []
    i, n = 0, len(glob)
    while i < n:
        c = glob[i]
        if c == "*":
            if glob.startswith("**", i):
                before_ok = i == 0 or glob[i - 1] == "/"
                after = i + 2
                if before_ok and after < n and glob[after] == "/":
                    out.append("(?:.*/)?")  # "**/": zero or more folders
                    i = after + 1
                    continue
                if before_ok and after == n:
                    out.append(".*")  # trailing "/**": everything inside
                    i = after
                    continue
                out.append("[^/]*")  # "**" elsewhere acts like "*"
                i = after
                continue
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(glob[i]))
        elif c == "[":
            j = i + 1
            if j < n and glob[j] in "!^":
                j += 1
            if j < n and glob[j] == "]":
                j += 1
            while j < n and glob[j] != "]":
                j += 1
            if j >= n:
                out.append(re.escape(c))  # no closing bracket: a literal "["
            else:
                body = glob[i + 1:j]
                if body[:1] in ("!", "^"):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = j
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


def _parse_line(line: str) -> Optional[_Rule]:
    """One gitignore line as a rule, or None for blanks and comments."""
    line = line.rstrip("\n").rstrip("\r")
    # Trailing spaces are dropped unless escaped with a backslash.
    stripped = line.rstrip(" ")
    if stripped.endswith("\\") and len(stripped) < len(line):
        stripped += " "
    line = stripped
    if not line or line.startswith("#"):
        return None
    negated = False
    if line.startswith("!"):
        negated, line = True, line[1:]
    elif line.startswith("\\!") or line.startswith("\\#"):
        line = line[1:]
    dir_only = False
    if line.endswith("/") and not line.endswith("\\/"):
        dir_only, line = True, line.rstrip("/")
    if not line:
        return None
    anchored = "/" in line
    line = line.lstrip("/")
    if not line:
        return None
    body = _translate_glob(line)
    regex = ("^" if anchored else "^(?:.*/)?") + body + "$"
    return _Rule(re.compile(regex, re.DOTALL), negated, dir_only)


class IgnoreRules:
    """Decides which paths (relative to the snapshot root, ``/``-separated) are left out.

    Args:
        patterns: The text of a ``.trainyardignore``, applied after the defaults
            (so ``!/logs/`` can bring a default back).
    """

    def __init__(self, patterns: str = "") -> None:
        self.rules: List[_Rule] = []
        for line in list(DEFAULT_PATTERNS) + patterns.splitlines():
            rule = _parse_line(line)
            if rule is not None:
                self.rules.append(rule)

    @classmethod
    def for_dir(cls, directory: str) -> "IgnoreRules":
        """The defaults plus ``directory/.trainyardignore`` when it is a regular file."""
        path = os.path.join(directory, IGNORE_FILE)
        if os.path.isfile(path) and not os.path.islink(path):
            with open(path, encoding="utf-8") as handle:
                return cls(handle.read())
        return cls()

    def _matches(self, rel: str, is_dir: bool) -> bool:
        ignored = False
        for rule in self.rules:
            if rule.dir_only and not is_dir:
                continue
            if rule.regex.match(rel):
                ignored = not rule.negated
        return ignored

    def is_ignored(self, rel: str, is_dir: bool = False) -> bool:
        """Whether ``rel`` is left out: it matches, or one of its folders does."""
        rel = rel.replace(os.sep, "/").strip("/")
        if not rel:
            return False
        parts = rel.split("/")
        for depth in range(1, len(parts)):
            if self._matches("/".join(parts[:depth]), True):
                return True
        return self._matches(rel, is_dir)


def collect_files(directory: str, rules: Optional[IgnoreRules] = None
                  ) -> Tuple[List[Tuple[str, str, bool]], List[str]]:
    """Walks ``directory``: the kept entries as ``(rel, abs path, is_dir)``, sorted, and
    the symlinks and special files skipped (as the server skips them)."""
    rules = rules or IgnoreRules.for_dir(directory)
    kept: List[Tuple[str, str, bool]] = []
    skipped: List[str] = []
    for root, dirs, files in os.walk(directory, followlinks=False):
        rel_root = os.path.relpath(root, directory)
        rel_root = "" if rel_root == "." else rel_root.replace(os.sep, "/")
        keep_dirs = []
        for name in sorted(dirs):
            full = os.path.join(root, name)
            rel = f"{rel_root}/{name}" if rel_root else name
            if os.path.islink(full):
                if not rules.is_ignored(rel, False):
                    skipped.append(rel)
                continue
            if rules.is_ignored(rel, True):
                continue
            keep_dirs.append(name)
            kept.append((rel, full, True))
        dirs[:] = keep_dirs
        for name in files:
            full = os.path.join(root, name)
            rel = f"{rel_root}/{name}" if rel_root else name
            if rules.is_ignored(rel, False):
                continue
            mode = os.lstat(full).st_mode
            if not stat.S_ISREG(mode):
                skipped.append(rel)
                continue
            kept.append((rel, full, False))
    kept.sort(key=lambda item: item[0])
    return kept, skipped


def pack_directory(directory: str, out: Optional[IO[bytes]] = None) -> Tuple[IO[bytes], int, int]:
    """Packs ``directory`` as a tar.gz, leaving out what the ignore rules name.

    Entries are sorted, with no times or owners, so the same content packs to
    the same bytes. Returns ``(file positioned at 0, its size, files kept)``;
    by default the file is a temporary one, deleted when closed.
    """
    if not os.path.isdir(directory):
        raise NotADirectoryError(f"source_directory {directory!r} is not a folder")
    entries, skipped = collect_files(directory)
    if skipped:
        warnings.warn(
            f"{len(skipped)} symlink(s) or special file(s) are not uploaded "
            f"(as the server skips them): {', '.join(skipped[:5])}"
            + (" …" if len(skipped) > 5 else ""),
            stacklevel=3,
        )
    target = out if out is not None else tempfile.TemporaryFile()
    files = 0
    with gzip.GzipFile(filename="", fileobj=target, mode="wb", mtime=0, compresslevel=6) as gz:
        with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for rel, full, is_dir in entries:
                info = tarfile.TarInfo(rel)
                info.mtime = 0
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                if is_dir:
                    info.type = tarfile.DIRTYPE
                    info.mode = 0o755
                    tar.addfile(info)
                    continue
                st = os.stat(full)
                info.size = st.st_size
                info.mode = 0o755 if st.st_mode & 0o111 else 0o644
                with open(full, "rb") as handle:
                    tar.addfile(info, handle)
                files += 1
    size = target.tell()
    target.seek(0)
    return target, size, files
