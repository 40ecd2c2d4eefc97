"""A method's once-per-sweep preparation (a frozen-backbone pass, decoding the test images) as one
Ray task on the cluster, before any trial; its result reaches every trial through the object store."""
from __future__ import annotations

import time

import ray
import torch
from ray.util.queue import Queue

from aigid import progress
from aigid.data.synthetic import ensure_here
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


def _prepare_here(method: MethodSpec, index, configs: list, cache_dir: str, scratch: str | None, cpus: int,
                  trial_device: str, log) -> dict:
    ensure_here(index)
    torch.set_num_threads(cpus)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    context = PrepareContext(cache_dir, device=device, num_workers=max(0, cpus - 1), log=log, scratch=scratch,
                             trial_device=trial_device)
    return method.prepare(index, configs, context)


@ray.remote
def _prepare_task(method: MethodSpec, index, configs: list, cache_dir: str, scratch: str | None, cpus: int,
                  trial_device: str, lines: Queue, every_s: float) -> dict:
    # Lines go through `lines` to the driver as they are said: a task's own output reaches it only with
    # log_to_driver. The driver's progress interval (AIGID_PROGRESS_EVERY_S there) holds on the node too.
    progress.LOG_EVERY_S = every_s
    return _prepare_here(method, index, configs, cache_dir, scratch, cpus, trial_device, log=lines.put)


def _in_task(method: MethodSpec, index, configs: list, cache_dir: str, scratch: str | None, cpus: int, on_gpu: bool,
             trial_device: str, show) -> dict:
    """The pass as a Ray task, its lines shown live (polled every second) while the driver waits."""
    lines = Queue(actor_options={"num_cpus": 0})
    try:
        done = _prepare_task.options(num_cpus=cpus, num_gpus=1 if on_gpu else 0).remote(
            method, index, configs, cache_dir, scratch, cpus, trial_device, lines, progress.LOG_EVERY_S)
        while True:
            finished, _ = ray.wait([done], timeout=1.0)
            for line in lines.get_nowait_batch(lines.qsize()):
                show(line)
            if finished:
                return ray.get(done)
    finally:
        lines.shutdown()


def in_driver(on_gpu: bool) -> bool:
    """A local one-node Ray (the driver's own machine) with no GPU to use: the pass runs in the driver,
    where torch is already imported, instead of in a task that first starts a worker and imports it
    again (seconds, next to a sub-minute offline sweep)."""
    nodes = [node for node in ray.nodes() if node["Alive"]]
    return not on_gpu and len(nodes) == 1 and nodes[0]["NodeID"] == ray.get_runtime_context().get_node_id()


def prepare(method: MethodSpec, index, configs: list, *, cache_dir: str, gpus: float, scratch: str | None = None,
            show=print) -> dict:
    """What the trials of a sweep share, computed once on the cluster (a GPU when trials get one); each
    line of the pass (progress every aigid.progress.LOG_EVERY_S) is handed to `show` as it is said.
    `scratch`: `PrepareContext.scratch`."""
    if method.prepare is None:
        return {}
    cpus = pass_cpus()
    on_gpu = method.uses_feature_store and gpus > 0
    here = in_driver(on_gpu)
    trial_device = "cuda" if gpus > 0 else "cpu"
    print(f"[aigid] preparing what the {len(configs)} trials share, once, on {'a GPU' if on_gpu else f'{cpus} CPU(s)'}"
          f"{' in this process' if here else ''}", flush=True)
    start = time.perf_counter()
    try:
        if here:
            shared = _prepare_here(method, index, configs, cache_dir, scratch, cpus, trial_device, log=show)
        else:
            shared = _in_task(method, index, configs, cache_dir, scratch, cpus, on_gpu, trial_device, show)
    except (UserError, ray.exceptions.RayTaskError) as error:
        cause = getattr(error, "cause", error)  # a task's own exception
        if isinstance(cause, UserError):  # DataError, BackboneError: the message names the fix
            raise PrepareError(f"{method.name} could not prepare the sweep: {cause}") from error
        raise
    print(f"[aigid] prepared once for {len(configs)} trials in {time.perf_counter() - start:.0f} s", flush=True)
    return shared
