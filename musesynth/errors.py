"""User-facing errors: the CLI prints these as one line and exits non-zero, never a traceback."""

import re
from collections.abc import Callable


class MusesynthError(Exception):
    """An error caused by the user's input (bad path, bad checkpoint, bad option)."""


class MidiReadError(MusesynthError):
    """A MIDI file that cannot be used; the data pipeline reports and skips it."""


def literal(text: object) -> str:
    """User text (a value, a path, a track name) for a ``BadRequest`` problem: its braces are kept as typed, never
    read as a field's name."""
    return str(text).replace("{", "{{").replace("}", "}}")


class BadRequest(MusesynthError):
    """A bad generation request, worded by field: ``problem`` may name other fields as ``{name}``, and holds user
    text through ``literal``. Its message names fields as Python keywords (the API's); ``named`` rewords it for
    another front end (the CLI's flags)."""

    def __init__(self, field: str, problem: str) -> None:
        self.field, self.problem = field, problem
        super().__init__(self.worded(str))

    def worded(self, name: Callable[[str], str]) -> str:
        """The message with each field spelt by ``name`` (field -> how the user writes it)."""
        def one(m: re.Match[str]) -> str:
            return name(m.group(1)) if m.group(1) else m.group(0)[0]

        return f"{name(self.field)} " + re.sub(r"\{\{|\}\}|\{([a-z_]+)\}", one, self.problem)

    def named(self, name: Callable[[str], str]) -> MusesynthError:
        return MusesynthError(self.worded(name))
