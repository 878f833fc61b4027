"""`python -m musesynth.predict`: the same as `musesynth generate`."""

import sys

from musesynth.cli import main_for
from musesynth.commands import generate

if __name__ == "__main__":
    sys.exit(main_for(generate, "python -m musesynth.predict"))
