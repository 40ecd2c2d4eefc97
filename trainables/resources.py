"""Whether the cluster can ever run one trial: checked before launch, not discovered by waiting forever."""
from __future__ import annotations

import os

import ray

from aigid.errors import UserError

# `ray up` leaves its config on the head node, where `ray job submit` runs the driver.
RAY_UP_CONFIG = "~/ray_bootstrap_config.yaml"
AUTOSCALING_ENV = "AIGID_AUTOSCALING"  # "1": an autoscaler (e.g. KubeRay's) can add nodes larger than today's


class ResourceError(UserError):
    """A per-trial request that no node can hold; the message says what the nodes have."""


def autoscaling() -> bool:
    return os.environ.get(AUTOSCALING_ENV) == "1" or os.path.exists(os.path.expanduser(RAY_UP_CONFIG))


def check_fits(cpus: float, gpus: float) -> None:
    """Refuse {cpu, gpu} per trial when no alive node has that much and no autoscaler can add one."""
    nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
    if any(r.get("CPU", 0) >= cpus and r.get("GPU", 0) >= gpus for r in nodes) or autoscaling():
        return
    have = ", ".join(f"{r.get('CPU', 0):g} CPU / {r.get('GPU', 0):g} GPU" for r in nodes) or "no nodes"
    raise ResourceError(f"a trial asks for {cpus:g} CPU and {gpus:g} GPU but no node of this Ray cluster has that "
                        f"(nodes: {have}); lower --cpus-per-trial / --gpus-per-trial, or set {AUTOSCALING_ENV}=1 "
                        "if an autoscaler can add such a node")
