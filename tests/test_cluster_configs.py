"""The cluster files are ones Ray accepts and agree with the project: Ray's own schema for the
`ray up` configs and runtime env, the fields that matter in the KubeRay manifests, and every
sweep command they (and cluster/README.md) contain parsed by that sweep's own argument parser."""
import importlib.util
import re
import shlex
import sys
import tomllib
import zipfile
from pathlib import Path

import jsonschema
import pytest
import ray
import torch
import yaml
from packaging.requirements import Requirement
from ray._private.runtime_env.packaging import GCS_STORAGE_MAX_SIZE, create_package
from ray.autoscaler._private.util import prepare_config, validate_config
from ray.runtime_env import RuntimeEnv

from trainables.arguments import parse_settings

ROOT = Path(__file__).resolve().parents[1]
CLUSTER = ROOT / "cluster"
SHARED = "/mnt/shared"
LAUNCHER_CONFIGS = ["aws.yaml", "gcp.yaml"]


def makefile(name: str) -> str:
    """A variable of the Makefile, where the torch pin and the CUDA of its wheel are written once."""
    return re.search(rf"^{name} := (.+)$", (ROOT / "Makefile").read_text(), re.M).group(1).strip()


def makefile_torch_pins() -> set[str]:
    """The torch/torchvision pins the Makefile installs locally: clusters must run the same."""
    return set(makefile("TORCH").split())


WHEEL_CUDA, DRIVER_MIN = makefile("TORCH_CUDA"), int(makefile("CUDA_DRIVER_MIN"))
# The laptop's Ray and Python, built on the CUDA the pinned torch wheel is built for (Ray tags it -cuXY0).
IMAGE = (f"rayproject/ray:{ray.__version__}-py{sys.version_info.major}{sys.version_info.minor}"
         f"-cu{WHEEL_CUDA.replace('.', '')}")


def load(name: str):
    return yaml.safe_load((CLUSTER / name).read_text())


def pyproject_requirements() -> dict[str, Requirement]:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    return {req.name: req for req in map(Requirement, deps)}


def sweep_args(command: list[str]):
    """Parse `python sweeps/X.py ARGS` with that sweep's own parser (exits on an unknown flag)."""
    assert command[0] == "python", command
    script = ROOT / command[1]
    assert script.parent == ROOT / "sweeps" and script.is_file(), f"{command[1]} is not a sweep script"
    spec = importlib.util.spec_from_file_location(f"sweep_{script.stem}", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return parse_settings(module.SWEEP, command[2:])


# --- ray up (cluster launcher) ----------------------------------------------------------------

@pytest.mark.parametrize("name", LAUNCHER_CONFIGS)
def test_launcher_config_passes_rays_schema(name):
    """What `ray up` does before touching the cloud: fill in the provider defaults, validate."""
    validate_config(prepare_config(load(name)))


def test_schema_check_is_real():
    config = load("aws.yaml")
    config["setup_command"] = []  # a typo of setup_commands
    with pytest.raises(jsonschema.ValidationError):
        validate_config(prepare_config(config))
    config = load("aws.yaml")
    config["available_node_types"]["gpu_1x_a10g"]["min_workers"] = 11  # more than max_workers
    with pytest.raises(ValueError, match="max_workers"):
        validate_config(prepare_config(config))


@pytest.mark.parametrize("name", LAUNCHER_CONFIGS)
def test_launcher_config_cpu_head_autoscaling_gpu_workers(name):
    config = load(name)
    assert config["docker"]["image"] == IMAGE  # the laptop's Ray and Python, CUDA variant
    types = config["available_node_types"]
    head = types[config["head_node_type"]]
    assert head["resources"] == {"CPU": 0}  # trials never land on the head
    workers = {key: spec for key, spec in types.items() if key != config["head_node_type"]}
    assert workers and all(spec["resources"]["GPU"] >= 1 for spec in workers.values())
    assert all(spec["min_workers"] == 0 < spec["max_workers"] for spec in workers.values())
    assert config["max_workers"] >= max(spec["max_workers"] for spec in workers.values())
    if config["provider"]["type"] == "gcp":
        for spec in workers.values():
            assert spec["node_config"]["guestAccelerators"][0]["acceleratorCount"] >= 1
            assert {"onHostMaintenance": "TERMINATE"} in spec["node_config"]["scheduling"]


@pytest.mark.parametrize("name", LAUNCHER_CONFIGS)
def test_launcher_config_installs_aigid_and_mounts_shared_storage(name):
    config = load(name)
    setup = " && ".join(config["setup_commands"])
    assert all(pin in setup for pin in makefile_torch_pins())
    mounts = {local: remote for remote, local in config["file_mounts"].items()}
    remote = mounts["./pyproject.toml"].rsplit("/", 1)[0]
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    for name in [*(p.rstrip("*") for p in packages["include"]), "sweeps", "README.md"]:  # what pip -e and jobs need
        assert mounts[f"./{name}"] == f"{remote}/{name}", name
    assert f"pip install -q -e {remote}" in setup
    # The host's network mount is bound at SHARED in every container ...
    binds = [opt.split()[1].split(":") for opt in config["docker"]["run_options"] if opt.startswith("-v ")]
    host = next(src for src, dst in binds if dst == SHARED)
    # ... and mounted over NFS on the host before the container starts.
    init = " ".join(config["initialization_commands"])
    assert re.search(rf"mount -t nfs4? .*\S+:/\S* {re.escape(host)}\b", init), init
    excluded = set(config["rsync_exclude"])
    assert {".git", ".venv", "aigid_data", "aigid_results", "mlflow.db"} <= excluded


@pytest.mark.parametrize("name", LAUNCHER_CONFIGS)
def test_launcher_config_uses_token_auth_everywhere(name):
    config = load(name)
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        start = next(cmd for cmd in config[key] if "ray start" in cmd)
        assert "RAY_AUTH_MODE=token" in start, key
    assert config["file_mounts"]["~/.ray/auth_token"] == "~/.ray/auth_token"


def test_the_declared_wheel_cuda_is_the_pinned_wheels():
    """This venv holds the pinned torch from PyPI (the Makefile's install): its CUDA is the one declared."""
    assert f"torch=={torch.__version__.split('+')[0]}" in makefile_torch_pins()
    assert torch.version.cuda == WHEEL_CUDA  # None on a CPU-only wheel: then the declaration is unchecked here


@pytest.mark.parametrize("name", LAUNCHER_CONFIGS)
def test_gpu_hosts_have_a_driver_that_runs_the_wheels_cuda(name):
    """Containers bring the CUDA libraries, the host brings the driver: CUDA 13 needs >= 580. GCP's
    Deep Learning VM families name their driver; every launcher config also checks it at boot."""
    config = load(name)
    if config["provider"]["type"] == "gcp":
        for spec in config["available_node_types"].values():
            (disk,) = spec["node_config"]["disks"]
            driver = re.search(r"-nvidia-(\d+)$", disk["initializeParams"]["sourceImage"])
            assert driver and int(driver.group(1)) >= DRIVER_MIN, disk["initializeParams"]["sourceImage"]
    check = next(cmd for cmd in config["initialization_commands"] if "driver_version" in cmd)
    assert f'-ge {DRIVER_MIN} ]' in check and "exit 1" in check


# --- ray job submit runtime env --------------------------------------------------------------

def test_runtime_env_is_valid_and_installs_the_projects_dependencies():
    env = load("runtime_env.yaml")
    RuntimeEnv(**env)
    pins = makefile_torch_pins()
    wanted = {str(req) for name, req in pyproject_requirements().items() if name not in {"ray", "torch", "torchvision"}}
    assert set(env["pip"]) == wanted | pins
    assert env["env_vars"]["RAY_USAGE_STATS_ENABLED"] == "0"
    assert env["env_vars"]["MLFLOW_TRACKING_URI"].startswith("http")


def test_runtime_env_excludes_data_results_and_environments(tmp_path):
    """Ray's own packager, with .gitignore off, leaves only the code in the upload."""
    tree = tmp_path / "checkout"
    junk = [".git/objects/ab", ".venv/lib/torch.so", "aigid_data/synthetic/x.png", "aigid_results/run/ckpt",
            "aigid_cache/feat.npy", "mlflow.db", "mlruns/0/meta.yaml", "mlartifacts/a", "weights.pt",
            "aigid/__pycache__/x.pyc"]
    for rel in [*junk, "aigid/x.py", "sweeps/s.py"]:
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_bytes(b"x")
    package = tmp_path / "pkg.zip"
    create_package(str(tree), package, include_gitignore=False, excludes=load("runtime_env.yaml")["excludes"])
    files = {name for name in zipfile.ZipFile(package).namelist() if not name.endswith("/")}
    assert files == {"aigid/x.py", "sweeps/s.py"}


def test_this_checkout_uploads_under_rays_limit(tmp_path):
    package = tmp_path / "pkg.zip"
    create_package(str(ROOT), package, include_gitignore=False, excludes=load("runtime_env.yaml")["excludes"])
    names = zipfile.ZipFile(package).namelist()
    assert "sweeps/lol_mask_grid.py" in names and "aigid/__init__.py" in names
    assert package.stat().st_size < GCS_STORAGE_MAX_SIZE


# --- KubeRay --------------------------------------------------------------------------------

def kuberay(name: str) -> tuple[dict, dict]:
    """(the Ray resource, its shared PersistentVolumeClaim) from a manifest."""
    docs = list(yaml.safe_load_all((CLUSTER / "kuberay" / name).read_text()))
    (ray_doc,) = [d for d in docs if d["apiVersion"] == "ray.io/v1"]
    (claim,) = [d for d in docs if d["kind"] == "PersistentVolumeClaim"]
    return ray_doc, claim


def pods(spec: dict) -> list[tuple[str, dict]]:
    return [("head", spec["headGroupSpec"]["template"]["spec"])] + [
        (group["groupName"], group["template"]["spec"]) for group in spec["workerGroupSpecs"]]


@pytest.mark.parametrize("name, kind", [("raycluster.yaml", "RayCluster"), ("rayjob.yaml", "RayJob")])
def test_kuberay_cluster_spec(name, kind):
    doc, claim = kuberay(name)
    assert doc["kind"] == kind
    spec = doc["spec"] if kind == "RayCluster" else doc["spec"]["rayClusterSpec"]
    assert spec["rayVersion"] == ray.__version__
    assert spec["authOptions"] == {"mode": "token"}  # same RAY_AUTH_MODE and token on every pod
    assert spec["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    for group, pod in pods(spec):
        (container,) = pod["containers"]
        assert container["image"] == IMAGE, group
        gpus = int(container["resources"]["limits"].get("nvidia.com/gpu", 0))
        assert (gpus == 0) if group == "head" else (gpus >= 1), group
        claims = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"]}
        mounts = {claims[m["name"]]: m["mountPath"] for m in container["volumeMounts"]}
        assert mounts[claim["metadata"]["name"]] == SHARED, group
    for group in spec["workerGroupSpecs"]:
        assert group["minReplicas"] <= group["replicas"] <= group["maxReplicas"] and group["maxReplicas"] > 0
    assert spec["enableInTreeAutoscaling"] is True


def test_rayjob_runs_a_sweep_on_the_same_cluster_and_environment():
    job, job_claim = kuberay("rayjob.yaml")
    cluster, cluster_claim = kuberay("raycluster.yaml")
    assert job["spec"]["rayClusterSpec"] == cluster["spec"] and job_claim == cluster_claim
    args = sweep_args(shlex.split(job["spec"]["entrypoint"]))
    for path in (args.data, args.storage, args.cache_dir):
        assert path.startswith(SHARED + "/"), path  # every pod sees it
    assert args.gpus_per_trial == 0.25 and args.mlflow_uri.startswith("http")
    env = yaml.safe_load(job["spec"]["runtimeEnvYAML"])
    RuntimeEnv(**env)
    assert env["working_dir"].endswith(".zip")
    assert env["pip"] == load("runtime_env.yaml")["pip"]


# --- the README's commands ----------------------------------------------------------------------

def readme_commands(pattern: str) -> list[str]:
    """Shell commands in cluster/README.md's code blocks, continuation lines joined."""
    text = (CLUSTER / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", text, re.S)
    lines = " ".join(blocks).replace("\\\n", " ").splitlines()
    return [line.split("#")[0] for line in lines if re.search(pattern, line)]


def test_readme_sweep_commands_parse():
    commands = readme_commands(r"python sweeps/")
    assert len(commands) >= 2
    for line in commands:
        words = shlex.split(line)
        assert words[words.index("--runtime-env") + 1] == "cluster/runtime_env.yaml"
        assert words[words.index("--working-dir") + 1] == "."
        sweep_args(words[words.index("--") + 1:])


def test_readme_names_the_cluster_files():
    for command in readme_commands(r"ray (up|down) |kubectl (apply|delete) -f"):
        path = re.search(r"(cluster/\S+\.yaml)", command).group(1)
        assert (ROOT / path).is_file(), path
