"""The `aigid` command: dataset checks, single runs without Ray, evaluation of a trained detector, the
config fields of each method, and finished sweeps' results (the one place the command reaches into trainables/: MLflow and the sweeps)."""
from __future__ import annotations

import argparse
import sys

from aigid.config_cli import add_config_command
from aigid.data.cli import add_data_commands
from aigid.eval_cli import add_eval_commands
from aigid.train_cli import add_train_commands
from trainables.results import add_results_command


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="aigid", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    add_data_commands(commands)
    add_train_commands(commands)
    add_eval_commands(commands)
    add_config_command(commands)
    add_results_command(commands)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
