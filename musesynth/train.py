"""`python -m musesynth.train` (torchrun's entry point too): the same as `musesynth train`."""

import sys

from musesynth.cli import main_for
from musesynth.commands import train

if __name__ == "__main__":
    sys.exit(main_for(train, "python -m musesynth.train"))
