"""Walking messy image trees (which files are images, which folders exist, what was skipped), and
keying caches by the files they were computed from."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"})


def _hidden(name: str) -> bool:
    # '.DS_Store', '.ipynb_checkpoints', macOS '._x.png' resource forks, '__MACOSX' zip debris
    return name.startswith(".") or name == "__MACOSX"


def is_image_name(name: str) -> bool:
    return not _hidden(name) and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def child_dirs(folder: Path) -> dict[str, Path]:
    """Sub-folders keyed by lower-cased name (datasets differ in case), hidden ones skipped."""
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return {}
    return {e.name.lower(): Path(e.path) for e in entries if e.is_dir() and not _hidden(e.name)}


class ImageFinder:
    """Lists image files under labelled folders (`leaves`) and remembers what it skipped, once per kind
    with a count and an example: stray files, and symlinks that are broken, loop, reach a folder or image
    already listed, or reach into another labelled folder (where its images count, once, with that label)."""

    def __init__(self, leaves=()) -> None:
        self._skipped: dict[tuple[str, str], tuple[int, str]] = {}  # (verb, what) -> (count, first example)
        self._listed: dict[Path, list[str]] = {}  # real folders shared by subsets are walked once
        self._leaves = {os.path.realpath(leaf) for leaf in leaves}

    def images(self, folder: Path) -> list[str]:
        """All image files below `folder` (recursive, symlinks followed, each real folder and image once)."""
        if folder not in self._listed:
            self._listed[folder] = self._walk(folder)
        return self._listed[folder]

    def _walk(self, folder: Path) -> list[str]:
        """Depth first in name order, like os.walk, but a real folder is entered once: a symlink loop is a
        skip line, not ~40 levels of the same images."""
        found, top = [], os.path.realpath(folder)
        folders, files = {top}, set()  # real paths listed so far
        stack = [(str(folder), top)]
        while stack:
            path, real = stack.pop()
            try:
                entries = sorted(os.scandir(path), key=lambda e: e.name)
            except OSError:
                continue
            below = []
            for entry in entries:
                target = self._follow(entry, top) if entry.is_symlink() else os.path.join(real, entry.name)
                if target is None:
                    continue
                if entry.is_dir():
                    if _hidden(entry.name):
                        continue
                    if target in folders:
                        looped = real == target or real.startswith(target + os.sep)
                        self._note("symlink(s) that loop back to a folder above them" if looped else
                                   "symlink(s) to a folder already listed by another path", entry.path, target)
                        continue
                    folders.add(target)
                    below.append((entry.path, target))
                elif not is_image_name(entry.name):
                    self._note_stray(entry.name, entry.path)
                elif target in files:
                    self._note("symlink(s) to an image already listed by another path", entry.path, target)
                else:
                    files.add(target)
                    found.append(entry.path)
            stack.extend(reversed(below))
        return found

    def _follow(self, link: os.DirEntry, top: str) -> str | None:
        """The real path a symlink leads to, or None (noted) when it is broken or leads into another
        labelled folder than the one being walked."""
        target = os.path.realpath(link.path)
        if not os.path.exists(link.path):
            self._note("broken symlink(s) (missing target, or a link to itself)", link.path, os.readlink(link.path))
            return None
        inside = [leaf for leaf in self._leaves if target == leaf or target.startswith(leaf + os.sep)]
        if inside and not (target == top or target.startswith(top + os.sep)):
            self._note("symlink(s) into another labelled folder, whose images count there once", link.path, target)
            return None
        return target

    def _note(self, what: str, path: str, target: str) -> None:
        self._count("skipped", what, f"{path} -> {target}")

    def _note_stray(self, name: str, path: str) -> None:
        if name.startswith("._"):
            kind = "._* (macOS metadata)"
        else:
            kind = os.path.splitext(name)[1].lower() or name
        self._count("ignored", f"non-image file(s) of kind {kind!r}", path)

    def _count(self, verb: str, what: str, example: str) -> None:
        count, first = self._skipped.get((verb, what), (0, example))
        self._skipped[verb, what] = (count + 1, first)

    def problems(self) -> list[str]:
        return [f"{verb} {count} {what} (e.g. {example})"
                for (verb, what), (count, example) in sorted(self._skipped.items())]


def content_key(meta: dict, paths) -> str:
    """A cache key: `meta` (what is computed, how) and every image's path, size and mtime."""
    digest = hashlib.sha256(json.dumps(meta, sort_keys=True).encode())
    for path in paths:
        stat = os.stat(path)
        digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:40]
