"""Read the on-disk layouts of the public AI-generated-image benchmarks into a DatasetIndex.

Each layout is described by a *plan*: the labelled leaf folders its structure implies,
found from folder names alone. Detection asks each plan in turn (cheap: no image is
listed); scanning then lists the images of the winning plan's leaves.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from aigid.data.files import ImageFinder, child_dirs
from aigid.data.index import FAKE, REAL, DataError, DatasetIndex, Sample

__all__ = ["SUBSET_IDS", "UFD_TEST_SETS", "LAYOUTS", "SYNTHETIC_MARKER", "DataError", "Sample", "DatasetIndex",
           "scan", "genimage_subset_id"]

SUBSET_IDS = ("adm", "biggan", "glide", "midjourney", "sdv14", "sdv15", "vqdm", "wukong")
SYNTHETIC_MARKER = "AIGID_SYNTHETIC.json"
# UniversalFakeDetect's test folders (CNNDetection's test set, then its diffusion_datasets/), in the
# order of RINE's Tables 2-3; each paper's tables average its own selection (aigid.metrics.PaperTestSets).
UFD_TEST_SETS = ("progan", "stylegan", "stylegan2", "biggan", "cyclegan", "stargan", "gaugan", "deepfake",
                 "whichfaceisreal", "seeingdark", "san", "crn", "imle", "guided", "ldm_200", "ldm_200_cfg",
                 "ldm_100", "glide_100_27", "glide_50_27", "glide_100_10", "dalle")

_SEARCH_DEPTH = 3  # GenImage subsets sit under parents like GenImage/ADM/imagenet_ai_0508_adm

# Matched against the lower-cased folder name with separators removed ('sdv1.4' -> 'sdv14').
_GENIMAGE_PATTERNS = {
    "sdv14": re.compile(r"sdv1?4|stablediffusionv?14"),
    "sdv15": re.compile(r"sdv1?5|stablediffusionv?15"),
    **{name: re.compile(name) for name in ("adm", "biggan", "glide", "midjourney", "vqdm", "wukong")},
}
_GENIMAGE_LABELS = {"ai": FAKE, "nature": REAL}
_UFD_LABELS = {"0_real": REAL, "1_fake": FAKE}
_UFD_DIFFUSION = "diffusion_datasets"
_UFD_REAL_POOL = {"guided": "imagenet"}  # every other diffusion generator pairs with LAION reals
_UFD_DEFAULT_POOL = "laion"
# DF's release names its SD v1 folder sdv1_new in some versions; APN's Table 2 calls it SD v1.
_DF_ALIASES = {"vqdiffusion": "vqdm", "vq_diffusion": "vqdm", "vq-diffusion": "vqdm", "sdv1_new": "sdv1"}
_FOLDER_LABELS = {"real": REAL, "0_real": REAL, "fake": FAKE, "1_fake": FAKE}
_SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class _Leaf:
    """A folder whose images all share one label, subset, split and group."""

    folder: Path
    label: int
    subset: str
    split: str
    group: str = ""


_Plan = tuple[list[_Leaf], list[str]]  # leaves, problems


@dataclass(frozen=True)
class _Layout:
    name: str
    expects: str  # what the layout looks like, for error messages
    plan: Callable[[Path], _Plan]
    train_split: str
    test_split: str


def genimage_subset_id(name: str) -> str | None:
    """'imagenet_ai_0419_sdv4' -> 'sdv14', 'BigGAN' -> 'biggan'; None if unknown or ambiguous."""
    key = re.sub(r"[^a-z0-9]", "", name.lower())
    hits = {sid for sid, pattern in _GENIMAGE_PATTERNS.items() if pattern.search(key)}
    return hits.pop() if len(hits) == 1 else None


def _labelled(folder: Path, names: dict[str, int]) -> list[tuple[Path, int]]:
    return [(d, names[n]) for n, d in child_dirs(folder).items() if n in names]


def _split_dirs(root: Path) -> dict[str, Path]:
    return {n: d for n, d in child_dirs(root).items() if n in _SPLITS}


# ---------------------------------------------------------------- GenImage
def _genimage_splits(folder: Path) -> dict[str, Path]:
    return {n: d for n, d in child_dirs(folder).items() if _labelled(d, _GENIMAGE_LABELS)}


def _find_genimage_subsets(root: Path) -> list[Path]:
    """Folders holding <split>/{ai,nature}, breadth-first up to _SEARCH_DEPTH below root."""
    found, frontier = [], [root]
    for _ in range(_SEARCH_DEPTH + 1):
        deeper = []
        for folder in frontier:
            if _genimage_splits(folder):
                found.append(folder)
            else:
                deeper.extend(child_dirs(folder).values())
        frontier = deeper
    return found


def _plan_genimage(root: Path) -> _Plan:
    leaves, problems, seen = [], [], {}
    for folder in _find_genimage_subsets(root):
        subset = genimage_subset_id(folder.name) or genimage_subset_id(folder.parent.name)
        if subset is None:
            subset = re.sub(r"[^a-z0-9_]", "_", folder.name.lower())
            problems.append(
                f"could not tell which GenImage generator {folder} holds "
                f"(known: {', '.join(SUBSET_IDS)}); calling it {subset!r}"
            )
        if subset in seen:
            problems.append(f"{seen[subset]} and {folder} both map to subset {subset!r}; merged")
        seen.setdefault(subset, folder)
        for split, split_dir in _genimage_splits(folder).items():
            leaves += [_Leaf(d, label, subset, split) for d, label in _labelled(split_dir, _GENIMAGE_LABELS)]
    return leaves, problems


# ---------------------------------------------------------------- UniversalFakeDetect / ForenSynths
def _ufd_labelled(folder: Path) -> dict[int, Path]:
    return {label: d for d, label in _labelled(folder, _UFD_LABELS)}


def _ufd_diffusion(folder: Path, split: str) -> _Plan:
    """UFD's diffusion test sets: <gen>/1_fake, with reals pooled in imagenet/ and laion/."""
    leaves, problems = [], []
    pools = child_dirs(folder)
    for name, gen_dir in pools.items():
        dirs = _ufd_labelled(gen_dir)
        if FAKE not in dirs:
            continue  # a pool of reals
        leaves.append(_Leaf(dirs[FAKE], FAKE, name, split))
        pool = _UFD_REAL_POOL.get(name, _UFD_DEFAULT_POOL)
        real = dirs.get(REAL) or (_ufd_labelled(pools[pool]).get(REAL) if pool in pools else None)
        if real is None:
            problems.append(f"no real images for {gen_dir} (expected {folder / pool / '0_real'}); fake-only")
        else:
            leaves.append(_Leaf(real, REAL, name, split))
    return leaves, problems


def _plan_ufd(root: Path) -> _Plan:
    leaves, problems = [], []
    for split, split_dir in _split_dirs(root).items():
        for name, folder in child_dirs(split_dir).items():
            if split != "test":
                found = [_Leaf(d, label, "progan", split, name) for label, d in _ufd_labelled(folder).items()]
            elif name == _UFD_DIFFUSION:
                found, more = _ufd_diffusion(folder, split)
                problems += more
            elif _ufd_labelled(folder):
                found = [_Leaf(d, label, name, split) for label, d in _ufd_labelled(folder).items()]
            else:
                found = [
                    _Leaf(d, label, name, split, cls)
                    for cls, cls_dir in child_dirs(folder).items()
                    for label, d in _ufd_labelled(cls_dir).items()
                ]
            if not found:
                problems.append(f"ignored {folder}: no 0_real/ or 1_fake/ inside")
            leaves += found
    return leaves, problems


# ---------------------------------------------------------------- DiffusionForensics
def _plan_diffusionforensics(root: Path) -> _Plan:
    base = root
    if not _split_dirs(root) and "images" in child_dirs(root):
        base = child_dirs(root)["images"]  # the release also ships recons/ and dire/ beside images/
    leaves, problems = [], []
    for split, split_dir in _split_dirs(base).items():
        for scene, scene_dir in child_dirs(split_dir).items():
            dirs = child_dirs(scene_dir)
            real = dirs.pop("real", None)
            if real is None:
                problems.append(f"ignored {scene_dir}: no real/ folder inside")
                continue
            if not dirs:
                problems.append(f"ignored {real}: no generator folder beside it to pair with")
            for name, gen_dir in dirs.items():
                subset = _DF_ALIASES.get(name, name)
                leaves += [_Leaf(gen_dir, FAKE, subset, split, scene), _Leaf(real, REAL, subset, split, scene)]
    return leaves, problems


# ---------------------------------------------------------------- plain folder
def _plan_folder(root: Path) -> _Plan:
    return [_Leaf(d, label, "folder", "test") for d, label in _labelled(root, _FOLDER_LABELS)], []


_LAYOUTS = {
    layout.name: layout
    for layout in (
        _Layout("genimage", "<subset>/{train,val}/{ai,nature}/ with subset folders named like "
                "imagenet_ai_0419_sdv4, searched up to 3 levels deep", _plan_genimage, "train", "val"),
        _Layout("ufd", "{train,val}/<class>/{0_real,1_fake}/ and test/<generator>/[<class>/]{0_real,1_fake}/",
                _plan_ufd, "train", "test"),
        _Layout("diffusionforensics", "[images/]{train,val,test}/<scene>/{real,<generator>}/",
                _plan_diffusionforensics, "train", "test"),
        _Layout("folder", "{real,fake}/ or {0_real,1_fake}/", _plan_folder, "test", "test"),
    )
}
LAYOUTS = tuple(_LAYOUTS)  # ("genimage", "ufd", "diffusionforensics", "folder"), in detection order


def _known_layouts() -> str:
    return "\n".join(f"  {name}: {layout.expects}" for name, layout in _LAYOUTS.items())


def _dataset_dir(root) -> Path:
    path = Path(os.path.abspath(os.path.expanduser(os.fspath(root))))
    if not path.exists():
        raise DataError(
            f"dataset path {path} does not exist; check the path, or write a small synthetic "
            f"stand-in there with `aigid data make-synthetic {path}`"
        )
    if not path.is_dir():
        raise DataError(f"dataset path {path} is not a folder; pass the folder that holds the images")
    return path


def _detect(root: Path) -> tuple[_Layout, _Plan]:
    """The first layout whose structure yields both real and fake folders."""
    for layout in _LAYOUTS.values():
        leaves, problems = layout.plan(root)
        if {leaf.label for leaf in leaves} == {REAL, FAKE}:
            return layout, (leaves, problems)
    raise DataError(
        f"no known dataset layout under {_path_hint(root)}; the layouts I know "
        f"(force one with layout=... or --layout):\n{_known_layouts()}"
    )


def _path_hint(root: Path) -> str:
    """The root plus what is in it, so a wrong level of the tree is obvious."""
    names = sorted(child_dirs(root))[:8]
    return f"{root} (sub-folders: {', '.join(names) or 'none'})"


def _is_synthetic(root: Path, leaves: list[_Leaf]) -> bool:
    """A marker in root, a few levels above it, or between root and any image folder."""
    candidates = set([root, *root.parents][: _SEARCH_DEPTH + 1])
    for folder in {leaf.folder for leaf in leaves}:
        candidates.update(p for p in folder.parents if p.is_relative_to(root))
    return any((p / SYNTHETIC_MARKER).is_file() for p in candidates)


def scan(root, layout: str | None = None) -> DatasetIndex:
    """Index every image under `root`; the layout is detected unless given."""
    path = _dataset_dir(root)
    if layout is None:
        chosen, (leaves, problems) = _detect(path)
    elif layout in _LAYOUTS:
        chosen = _LAYOUTS[layout]
        leaves, problems = chosen.plan(path)
        if not leaves:
            raise DataError(f"no {layout} structure under {_path_hint(path)}; {layout} expects {chosen.expects}")
    else:
        raise DataError(f"unknown layout {layout!r}; known layouts:\n{_known_layouts()}")

    finder = ImageFinder(leaf.folder for leaf in leaves)
    samples = []
    for leaf in leaves:
        paths = finder.images(leaf.folder)
        if not paths:
            problems.append(f"no images in {leaf.folder}")
        samples += [Sample(p, leaf.label, leaf.subset, leaf.split, leaf.group) for p in paths]
    if not samples:
        raise DataError(f"found the {chosen.name} folder structure under {path} but no image files in it")
    return DatasetIndex(
        root=str(path),
        layout=chosen.name,
        synthetic=_is_synthetic(path, leaves),
        samples=samples,
        problems=list(dict.fromkeys(problems)) + finder.problems(),
        train_split=chosen.train_split,
        test_split=chosen.test_split,
    )
