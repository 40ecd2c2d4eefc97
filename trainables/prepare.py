"""A method's once-per-sweep preparation (a frozen-backbone pass, decoding the test images) as one
Ray task on the cluster, before any trial; its result reaches every trial through the object store."""
from __future__ import annotations

import time

import ray
import torch

from aigid.errors import UserError
from aigid.methods.spec import MethodSpec, PrepareContext

MAX_PREPARE_CPUS = 8


class PrepareError(UserError):
    """The preparation failed on the data or backbone (the cause's message names the fix)."""


def pass_cpus() -> int:
    """CPUs for a once-per-sweep pass: up to MAX_PREPARE_CPUS, but no more than the largest node has
    (a task cannot span nodes; asking for the cluster's total would never be scheduled)."""
    largest = max((node["Resources"].get("CPU", 0) for node in ray.nodes() if node["Alive"]), default=1)
    return max(1, min(MAX_PREPARE_CPUS, int(largest)))


@ray.remote
def _prepare_task(method: MethodSpec, index, configs: list, cache_dir: str, cpus: int) -> tuple[dict, list[str]]:
    torch.set_num_threads(cpus)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    lines: list[str] = []  # shown by the driver: a task's own output reaches it only with log_to_driver
    context = PrepareContext(cache_dir, device=device, num_workers=max(0, cpus - 1), log=lines.append)
    return method.prepare(index, configs, context), lines


def prepare(method: MethodSpec, index, configs: list, *, cache_dir: str, gpus: float) -> dict:
    """What the trials of a sweep share, computed once on the cluster (a GPU when trials get one)."""
    if method.prepare is None:
        return {}
    cpus = pass_cpus()
    on_gpu = method.uses_feature_store and gpus > 0
    print(f"[aigid] preparing what the {len(configs)} trials share, once, on {'a GPU' if on_gpu else f'{cpus} CPU(s)'}",
          flush=True)
    start = time.perf_counter()
    try:
        shared, lines = ray.get(_prepare_task.options(num_cpus=cpus, num_gpus=1 if on_gpu else 0).remote(
            method, index, configs, cache_dir, cpus))
    except ray.exceptions.RayTaskError as error:
        cause = error.cause  # the task's own exception
        if isinstance(cause, UserError):  # DataError, BackboneError: the message names the fix
            raise PrepareError(f"{method.name} could not prepare the sweep: {cause}") from error
        raise
    for line in lines:
        print(line, flush=True)
    print(f"[aigid] prepared once for {len(configs)} trials in {time.perf_counter() - start:.0f} s", flush=True)
    return shared
