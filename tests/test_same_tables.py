"""The redesign preserved behaviour: the offline defaults of LoL Table 3 and GenDet Table 5 print
the numbers they printed before it (tests/golden/, recorded at 4271fac with the same seeds)."""
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).parent.parent
GOLDEN = Path(__file__).parent / "golden"


@pytest.mark.slow
@pytest.mark.parametrize("sweep", ["gendet_margin_alpha", "lol_mask_grid"])
def test_offline_default_prints_the_recorded_table(sweep, tmp_path):
    done = subprocess.run([sys.executable, str(REPO / "sweeps" / f"{sweep}.py")], cwd=tmp_path, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    expected = (GOLDEN / f"{sweep}.txt").read_text().strip()
    assert expected in done.stdout, done.stdout[-3000:]
