"""A sweep script as users submit it, cut to its first N trials, for the cluster tests:

    python tests/cluster_sweep.py sweeps/SCRIPT.py N [the script's arguments]

A dead worker, a stopped driver or nodes that share no disk need a few trials each, not a paper's
whole grid; on the 2-core test host every further trial costs seconds of actor start-up. The cut is
the sweep's own `prune` hook, so validation, resume and the report are the script's.
"""
import dataclasses
import runpy
import sys

from trainables.launcher import main

script, n, *argv = sys.argv[1:]
sweep = runpy.run_path(script)["SWEEP"]
assert sweep.prune is None, f"{script} prunes its own plan: compose with it here"


def first_n(points, index):
    return points[:int(n)], f"tests/cluster_sweep.py: the first {n} of the {len(points)} trials"


main(dataclasses.replace(sweep, prune=first_n), argv)
