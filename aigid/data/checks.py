"""Cheap readability checks over a whole tree, to find broken files before a sweep does."""
from __future__ import annotations

from typing import Callable, Iterable

from aigid.data.datasets import open_image


def check_image(path) -> str | None:
    """Why `path` cannot be decoded, or None. Cheaper than a full decode: a JPEG is decoded at
    1/8 scale (which still hits truncation), other formats get PIL's verify() (PNG: CRCs)."""
    try:
        with open_image(path) as img:
            if img.format == "JPEG":
                img.draft("RGB", (max(1, img.width // 8), max(1, img.height // 8)))
                img.load()
            else:
                img.verify()
    except Exception as exc:  # any decoder failure means the file is unusable
        return f"{type(exc).__name__}: {exc}"
    return None


def find_unreadable(
    paths: Iterable[str], progress: Callable[[int, int], None] | None = None, every: int = 2000
) -> list[tuple[str, str]]:
    """(path, reason) for every file that fails check_image; progress(done, total) every `every` files."""
    paths = list(paths)
    bad = []
    for done, path in enumerate(paths, 1):
        reason = check_image(path)
        if reason is not None:
            bad.append((path, reason))
        if progress is not None and (done % every == 0 or done == len(paths)):
            progress(done, len(paths))
    return bad
