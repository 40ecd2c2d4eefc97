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
    """Lists image files under folders and remembers the stray files it skipped, once per kind."""

    def __init__(self) -> None:
        self._strays: dict[str, tuple[int, str]] = {}  # kind -> (count, first example)
        self._listed: dict[Path, list[str]] = {}  # real folders shared by subsets are walked once

    def images(self, folder: Path) -> list[str]:
        """All image files below `folder` (recursive, symlinks followed), sorted."""
        if folder not in self._listed:
            self._listed[folder] = self._walk(folder)
        return self._listed[folder]

    def _walk(self, folder: Path) -> list[str]:
        found = []
        for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
            dirnames[:] = sorted(d for d in dirnames if not _hidden(d))
            for name in sorted(filenames):
                path = os.path.join(dirpath, name)
                if is_image_name(name):
                    found.append(path)
                else:
                    self._note_stray(name, path)
        return found

    def _note_stray(self, name: str, path: str) -> None:
        if name.startswith("._"):
            kind = "._* (macOS metadata)"
        else:
            kind = os.path.splitext(name)[1].lower() or name
        count, example = self._strays.get(kind, (0, path))
        self._strays[kind] = (count + 1, example)

    def problems(self) -> list[str]:
        return [
            f"ignored {count} non-image file(s) of kind {kind!r} (e.g. {example})"
            for kind, (count, example) in sorted(self._strays.items())
        ]


def content_key(meta: dict, paths) -> str:
    """A cache key: `meta` (what is computed, how) and every image's path, size and mtime."""
    digest = hashlib.sha256(json.dumps(meta, sort_keys=True).encode())
    for path in paths:
        stat = os.stat(path)
        digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:40]
