"""The `aigid` command: dataset checks and single runs without Ray."""
from __future__ import annotations

import argparse
import sys

from aigid.data.cli import add_data_commands
from aigid.train_cli import add_train_commands


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="aigid", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    add_data_commands(commands)
    add_train_commands(commands)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
