"""A real multi-node Ray cluster on one host, on loopback only, for the cluster tests.

Run inside a private network namespace (`unshare -n`), where every socket Ray and MLflow
open is on 127.0.0.1: a head and two worker nodes via `ray start`, each with its own ports,
torn down by killing exactly the processes of this cluster (never a `ray stop`, which
would also stop any other Ray on the host). Each node also gets its own mount namespace
(`unshare -m`) with a private, empty /tmp, into which only the declared shared storage (WORKDIR)
and the checkout are bind-mounted: nodes share no disk but that, as on separate hosts.

    unshare -n python tests/cluster_harness.py WORKDIR SCENARIO...

runs the scenarios in turn on one cluster (starting one costs tens of seconds), each in its own
WORKDIR/SCENARIO, and prints one JSON line {scenario: what it observed}; the tests assert on it.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
HEAD_PORT, DASHBOARD_PORT = 6390, 8275
TRIALS = 4  # of each sweep (tests/cluster_sweep.py): both workers get trials, and a killed one's have a node to go to
FAST = ["--pretrained", "none", "--backbone", "aigid-tiny-rn", "--set", "train_volume=None", "--set", "test_limit=4"]


def sh(*argv, check=True, **kwargs):
    done = subprocess.run([str(a) for a in argv], capture_output=True, text=True, **kwargs)
    if check and done.returncode:
        raise RuntimeError(f"{' '.join(map(str, argv[:3]))} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done


def kill_trees(pids) -> None:
    """SIGKILL each process and all its descendants, found before any of them dies."""
    doomed, todo = [], [int(p) for p in pids]
    while todo:
        pid = todo.pop()
        if pid not in doomed:
            doomed.append(pid)
            todo += [int(c) for c in sh("pgrep", "-P", str(pid), check=False).stdout.split()]
    for pid in doomed:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


class Cluster:
    """Head (no CPUs: trials must run on workers) + two single-CPU worker nodes."""

    def __init__(self, workdir: Path):
        self.temp = Path(f"/tmp/aigid-cluster-{os.getpid()}")
        # Ray 2.60 token auth: head, workers and clients must agree on RAY_AUTH_MODE, or joins fail.
        self.env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled",
                    "PATH": f"{BIN}:{os.environ['PATH']}"}
        self.workdir = workdir

    def on_node(self, n: int, *argv) -> list:
        """`argv` run on node n in a mount namespace whose /tmp is the node's own empty folder, with
        only WORKDIR and the checkout bound into it where they lie under /tmp."""
        private = Path(f"{self.temp}-private-{n}")
        private.mkdir(parents=True, exist_ok=True)
        inside = [(path, private / path.relative_to("/tmp")) for path in (self.workdir.resolve(), REPO)
                  if path.is_relative_to("/tmp")]
        binds = [f"mkdir -p {target} && mount --bind {path} {target}" for path, target in inside]
        script = " && ".join([*binds, f"mount --rbind {private} /tmp", 'exec "$@"'])
        return ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "node", *argv]

    def node_ports(self, n: int) -> list[str]:
        base = 21000 + 100 * n
        return ["--node-manager-port", base, "--object-manager-port", base + 1, "--dashboard-agent-listen-port",
                base + 2, "--dashboard-agent-grpc-port", base + 3, "--runtime-env-agent-port", base + 4,
                "--metrics-export-port", base + 5, "--min-worker-port", base + 10, "--max-worker-port", base + 60,
                "--object-store-memory", 150 * 1024 * 1024, "--node-ip-address", "127.0.0.1", "--disable-usage-stats"]

    def __enter__(self):
        sh("ip", "link", "set", "lo", "up")
        sh(*self.on_node(0, BIN / "ray", "start", "--head", "--port", HEAD_PORT, "--num-cpus", 0, "--temp-dir",
                         self.temp, "--include-dashboard", "true", "--dashboard-host", "127.0.0.1", "--dashboard-port",
                         DASHBOARD_PORT, "--ray-client-server-port", 10101, *self.node_ports(0)), env=self.env)
        # Both workers join at once (each `ray start` is seconds of imports). Each node its own temp dir, as
        # on separate hosts: a shared one lets a worker's runtime-env agent delete the job's working_dir.
        starting = [subprocess.Popen([str(a) for a in self.on_node(
            n, BIN / "ray", "start", "--address", f"127.0.0.1:{HEAD_PORT}", "--num-cpus", 1, "--temp-dir",
            f"{self.temp}-{n}", "--resources", json.dumps({f"worker{n}": 1}), *self.node_ports(n))], env=self.env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for n in (1, 2)]
        for n, worker in enumerate(starting, 1):
            out, _ = worker.communicate()
            if worker.returncode:
                raise RuntimeError(f"ray start of worker {n} failed:\n{out[-3000:]}")
        return self

    def kill_worker(self, n: int) -> int:
        """SIGKILL every process of worker node n (its raylet and everything under it)."""
        port = str(21000 + 100 * n)
        raylets = sh("pgrep", "-f", f"raylet.*node_manager_port={port}", check=False).stdout.split()
        kill_trees(raylets)
        return len(raylets)

    def __exit__(self, *exc):
        """Kill every node's processes with all they started: Ray's agents rename themselves
        (ray::DashboardAgent), so a pattern misses them, and orphaned they spin on a core for minutes."""
        roots = sh("pgrep", "-f", str(self.temp), check=False).stdout.split()
        kill_trees(roots + sh("pgrep", "-f", f"127.0.0.1:{HEAD_PORT}", check=False).stdout.split())
        for n in range(3):  # the nodes' private /tmp folders (their bind mounts died with their namespaces)
            shutil.rmtree(f"{self.temp}-private-{n}", ignore_errors=True)
        for folder in (self.temp, *(f"{self.temp}-{n}" for n in (1, 2))):  # Ray's temp dirs, seen from this host
            shutil.rmtree(folder, ignore_errors=True)

    def runtime_env(self) -> Path:
        """cluster/runtime_env.yaml as users submit it, less its `pip` list: this host's venv already
        has every package and cannot reach an index from inside the namespace."""
        import yaml

        env = yaml.safe_load((REPO / "cluster" / "runtime_env.yaml").read_text())
        env.pop("pip", None)
        env["env_vars"] = {**env.get("env_vars", {}), "RAY_AUTH_MODE": "disabled",
                           "AIGID_CHECKPOINT_EVERY_S": "0"}  # every epoch: a killed node's trials resume mid-run
        path = self.workdir / "runtime_env.yaml"
        path.write_text(yaml.safe_dump(env))
        return path

    def submit(self, *sweep_args, wait=True):
        """`ray job submit` of a sweep script through the dashboard's job API, from the working tree."""
        argv = [BIN / "ray", "job", "submit", "--address", f"http://127.0.0.1:{DASHBOARD_PORT}",
                "--working-dir", REPO, "--runtime-env", self.runtime_env()]
        if not wait:
            argv.append("--no-wait")
        return sh(*argv, "--", "python", *sweep_args, env=self.env, check=False, timeout=600)


def sweep_args(workdir: Path, script: str, *extra) -> list[str]:
    return ["tests/cluster_sweep.py", f"sweeps/{script}", TRIALS, "-v", "--data", str(workdir / "data"), "--storage",
            str(workdir / "results"), "--shared-storage", "--mlflow-uri", f"sqlite:///{workdir}/mlflow.db",
            "--cache-dir", str(workdir / "cache"), *FAST, *extra]


def job_id(submitted) -> str:
    return next(w.strip("'") for w in submitted.stdout.split() if w.strip("'").startswith("raysubmit_"))


def wait_for(jobs, job: str, deadline: float, when=lambda: False, then=lambda: None) -> str:
    """Poll a job until it ends; run `then` once, the first time `when` holds."""
    fired = False
    while time.monotonic() < deadline and not jobs.get_job_status(job).is_terminal():
        if not fired and when():
            then()
            fired = True
        time.sleep(1)
    return str(jobs.get_job_status(job))


def kill_worker_then_stop_and_resume_driver(cluster: Cluster, workdir: Path) -> dict:
    """Sweeps submitted with `ray job submit`:
    0. a node-local --storage is refused on this 3-node cluster, before any trial;
    (the LoL cross-generator sweep, its first TRIALS training subsets)
    1. a worker node is SIGKILLed once two trials have checkpointed; the sweep must still finish;
    2. the driver job is stopped once a trial has finished, then resubmitted with --resume."""
    from ray.job_submission import JobSubmissionClient

    jobs = JobSubmissionClient(f"http://127.0.0.1:{DASHBOARD_PORT}")
    deadline = time.monotonic() + 480
    out = {}
    refused = cluster.submit(*[a for a in sweep_args(workdir, "lol_cross_generator.py", "--smoke")
                               if a != "--shared-storage"])
    out["refused_returncode"], out["refused_log"] = refused.returncode, refused.stdout[-3000:] + refused.stderr[-2000:]
    killed = workdir / "results" / "killed-worker"
    first = job_id(cluster.submit(*sweep_args(workdir, "lol_cross_generator.py", "--smoke", "--set", "epochs=3",
                                              "--max-failures", "3", "--name", "killed-worker"), wait=False))
    out["kill_status"] = wait_for(jobs, first, deadline, when=lambda: len(list(killed.glob("*/checkpoint_*"))) >= 2,
                                  then=lambda: out.setdefault("killed_raylets", cluster.kill_worker(1)))
    out["kill_log"] = jobs.get_job_logs(first)[-30000:]

    stopped = workdir / "results" / "stopped-driver"
    second = job_id(cluster.submit(*sweep_args(workdir, "lol_cross_generator.py", "--smoke", "--set", "epochs=2",
                                               "--name", "stopped-driver"), wait=False))
    out["stop_status"] = wait_for(jobs, second, deadline, when=lambda: len(list(stopped.glob("*/result.json"))) > 0
                                  and "finished (" in jobs.get_job_logs(second), then=lambda: jobs.stop_job(second))
    out["stopped_log"] = jobs.get_job_logs(second)[-8000:]
    resumed = cluster.submit(*sweep_args(workdir, "lol_cross_generator.py", "--smoke", "--set", "epochs=2",
                                         "--name", "stopped-driver", "--resume"))
    out["resume_returncode"], out["resume_log"] = resumed.returncode, resumed.stdout[-8000:]
    return out


def offline_smoke_on_nodes_sharing_nothing(cluster: Cluster, workdir: Path) -> dict:
    """The offline LoL smoke sweep (its first TRIALS), no --data, submitted with `ray job submit` to nodes that share
    no /tmp: the driver generates the stand-in under the head's private /tmp, so the worker nodes
    must regenerate it; only --storage, --cache-dir and the MLflow store are shared."""
    submitted = cluster.submit("tests/cluster_sweep.py", "sweeps/lol_mask_grid.py", TRIALS, "--smoke", "--storage",
                               workdir / "results", "--shared-storage", "--cache-dir", workdir / "cache",
                               "--mlflow-uri", f"sqlite:///{workdir}/mlflow.db", "--name", "shared-nothing")
    log = submitted.stdout + submitted.stderr
    data = next((line.split(" at ")[1].split(" (")[0] for line in log.splitlines() if "SYNTHETIC stand-in" in line), "")
    return {"returncode": submitted.returncode, "log": log[-30000:], "data_path": data,
            "data_visible_outside_the_head": bool(data) and Path(data).exists()}


SCENARIOS = {"kill_worker_then_stop_and_resume_driver": kill_worker_then_stop_and_resume_driver,
             "offline_smoke_on_nodes_sharing_nothing": offline_smoke_on_nodes_sharing_nothing}

if __name__ == "__main__":
    workdir, scenarios = Path(sys.argv[1]), sys.argv[2:]
    with Cluster(workdir) as cluster:
        observed = {}
        for name in scenarios:
            (workdir / name).mkdir(exist_ok=True)
            observed[name] = SCENARIOS[name](cluster, workdir / name)
        print(json.dumps(observed), flush=True)
