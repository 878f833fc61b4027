"""One module per `musesynth` command: its options (defaults read from the dataclasses that own them),
its one-line description and example, and the function that runs it."""
