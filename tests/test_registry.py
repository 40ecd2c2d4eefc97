"""Every method is registered once and reaches every entry point: a sweep, `aigid train`, `aigid eval`,
`aigid config`."""
import dataclasses
import runpy
from pathlib import Path

import pytest

from aigid.cli import main as aigid
from aigid.data.layouts import LAYOUTS
from aigid.methods import METHODS
from aigid.methods.config import FlatConfig

SWEEPS = Path(__file__).parent.parent / "sweeps"


def sweeps_by_method():
    found = {}
    for script in sorted(SWEEPS.glob("*.py")):
        sweep = runpy.run_path(str(script)).get("SWEEP")  # compare.py runs every method's sweep, defines none
        if sweep is not None:
            found.setdefault(sweep.method.name, []).append(sweep.name)
    return found


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_method_has_a_sweep_a_train_command_presets_and_a_layout(name, capsys):
    spec = METHODS[name]
    assert spec.name == name
    assert sweeps_by_method().get(name), f"no script under sweeps/ runs {name}"
    assert issubclass(spec.config_cls, FlatConfig) and dataclasses.is_dataclass(spec.config_cls)
    assert spec.offline and spec.smoke
    spec.config_cls.from_flat(dict(spec.offline))  # the offline preset is a valid config
    assert spec.layout in LAYOUTS
    assert all(callable(getattr(spec.trainer_cls, m, None)) for m in ("run", "state_dict", "load_state_dict"))
    assert callable(spec.evaluate), f"{name} has no MethodSpec.evaluate: `aigid eval {name}` cannot score it"
    with pytest.raises(SystemExit) as exit_info:
        aigid(["train", name, "--help"])
    assert exit_info.value.code == 0 and "--data" in capsys.readouterr().out
    assert aigid(["config", name]) == 0
    listed = capsys.readouterr().out
    assert all(f.name in listed for f in dataclasses.fields(spec.config_cls))


def test_config_lists_the_paper_source_of_each_default(capsys):
    aigid(["config", "lol"])
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("lr "))
    assert "5e-06" in line and "§4.2" in line


def test_a_value_of_the_wrong_type_is_one_line_naming_the_field(tmp_path, capsys):
    assert aigid(["train", "lol", "--data", str(tmp_path / "none"), "--set", "lr=fast"]) == 2
    assert aigid(["train", "apn", "--set", "lr=fast"]) == 2
    assert "lr takes float, got 'fast'" in capsys.readouterr().err
