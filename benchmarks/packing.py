"""Packing benchmark: the same batch of small trials, one at a time and packed by fractional resources.

Each trial is a short LoL-shaped fine-tune (a CLIP image tower, `aigid-tiny-rn` unless --backbone
names another such as LoL's RN50, plus a linear head, batch 4 of 224² images, Adam, a report per
epoch) set up by the launcher's own
`prepare_trial`, so threads and device follow the trial's resources as in a real sweep.
Both runs happen in one process on one Ray instance, so the ratio compares like with like.

Each trial starts a fresh worker process (Tune's and the launcher's default), so the overhead
includes importing torch, open_clip and Ray Tune there; `--reuse-actors` shows the cost without.

Scheduling overhead per trial = (wall − Σ in-trial compute / k) / N, where k is how many
trials the resources let run at once. With k = 1 that is wall minus summed compute over N;
packed, concurrent trials share cores, so each one's compute stretches by about k/cores and
Σ compute / k is the compute's share of the wall time.

    python benchmarks/packing.py                      # CPU: cpu 1 one at a time vs cpu 0.25 packed
    python benchmarks/packing.py --gpu                # GPU: gpu 1 one at a time vs gpu 0.25 packed
    python benchmarks/packing.py --gpu --backbone RN50 --reuse-actors --steps 50   # LoL's own model, GPU sharing alone
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import ray  # noqa: E402
import torch  # noqa: E402
from ray import tune  # noqa: E402

from aigid.backbones import create_image_encoder  # noqa: E402
from trainables.trainable import prepare_trial, trial_resources  # noqa: E402


def small_trial(config: dict) -> None:
    """A few epochs of a tiny real fine-tune; reports the seconds spent computing."""
    device, _ = prepare_trial(*trial_resources())
    torch.manual_seed(config["seed"])
    visual, info = create_image_encoder(config["backbone"], None, device=device)
    head = torch.nn.Linear(info.embed_dim, 1, device=device)
    optimizer = torch.optim.Adam([*visual.parameters(), *head.parameters()], lr=1e-4)
    images = torch.randn(config["batch"], 3, info.image_size, info.image_size, device=device)
    labels = torch.randint(0, 2, (config["batch"],), device=device).float()
    compute = 0.0
    for epoch in range(config["epochs"]):
        start = time.perf_counter()
        for _ in range(config["steps"]):
            loss = torch.nn.functional.binary_cross_entropy_with_logits(head(visual(images)).squeeze(1), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        compute += time.perf_counter() - start
        tune.report({"epoch": epoch + 1, "loss": loss.item(), "compute_s": compute})


def run_batch(resources: dict, concurrent: int | None, args, storage: str) -> tuple[float, float]:
    """(wall seconds, summed in-trial compute seconds) for N trials at these resources."""
    tuner = tune.Tuner(
        tune.with_resources(small_trial, resources),
        param_space={"seed": tune.grid_search(list(range(args.trials))),
                     "epochs": args.epochs, "steps": args.steps, "batch": args.batch, "backbone": args.backbone},
        tune_config=tune.TuneConfig(max_concurrent_trials=concurrent, reuse_actors=args.reuse_actors),
        run_config=tune.RunConfig(storage_path=storage, verbose=0),
    )
    start = time.perf_counter()
    results = tuner.fit()
    wall = time.perf_counter() - start
    if results.errors:
        raise RuntimeError(f"{len(results.errors)} trials failed: {results.errors[0]}")
    return wall, sum(result.metrics["compute_s"] for result in results)


def slots(resources: dict, concurrent: int | None, trials: int) -> int:
    """How many trials these resources admit at once on this Ray instance."""
    available = ray.cluster_resources()
    fits = min(int(available.get(key.upper(), 0) / share + 1e-9) for key, share in resources.items() if share > 0)
    return min(trials, fits, concurrent or trials)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=8, help="N trials per run (default 8)")
    parser.add_argument("--epochs", type=int, default=3, help="reports per trial (default 3)")
    parser.add_argument("--steps", type=int, default=4, help="optimizer steps per epoch (default 4)")
    parser.add_argument("--batch", type=int, default=4, help="images per step (LoL's batch, 4)")
    parser.add_argument("--backbone", default="aigid-tiny-rn", help="open_clip image tower, random init (RN50: LoL's, §4.2)")
    parser.add_argument("--num-cpus", type=int, default=2, help="CPUs given to the local Ray (default 2)")
    parser.add_argument("--share", type=float, default=0.25, help="packed share of a CPU (or GPU with --gpu)")
    parser.add_argument("--gpu", action="store_true", help="pack fractional GPUs instead of CPUs")
    parser.add_argument("--reuse-actors", action="store_true",
                        help="reuse trial processes (Tune's default, like the launcher's, starts one per trial)")
    args = parser.parse_args(argv)

    ray.init(num_cpus=args.num_cpus, include_dashboard=False, log_to_driver=False)
    if args.gpu and not ray.cluster_resources().get("GPU"):
        raise SystemExit("--gpu: Ray sees no GPU on this machine")
    if args.gpu:  # one CPU per trial for the training loop, as the launcher sizes GPU trials
        cpu = min(1.0, args.num_cpus * args.share / ray.cluster_resources()["GPU"])  # CPUs must not cap the packing
        alone, packed = {"cpu": 1, "gpu": 1}, {"cpu": cpu, "gpu": args.share}
    else:
        alone, packed = {"cpu": 1}, {"cpu": args.share}
    print(f"{args.trials} trials × {args.epochs} epochs × {args.steps} steps of {args.backbone}, batch {args.batch}; "
          f"Ray with {ray.cluster_resources().get('CPU', 0):g} CPU, {ray.cluster_resources().get('GPU', 0):g} GPU",
          flush=True)
    walls = {}
    with tempfile.TemporaryDirectory() as storage:
        for label, resources, concurrent in (("one at a time", alone, 1), ("packed", packed, None)):
            wall, compute = run_batch(resources, concurrent, args, storage)
            k = slots(resources, concurrent, args.trials)
            overhead = (wall - compute / k) / args.trials
            walls[label] = wall
            print(f"{label:>13}: resources {resources}, {k} at once: wall {wall:.1f} s, "
                  f"in-trial compute {compute:.1f} s, scheduling overhead {overhead:.2f} s/trial", flush=True)
    ray.shutdown()
    print(f"speedup: {walls['one at a time'] / walls['packed']:.2f}x")


if __name__ == "__main__":
    main()
