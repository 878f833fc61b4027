"""User-facing errors: the CLI prints these as one line and exits non-zero, never a traceback."""


class MusesynthError(Exception):
    """An error caused by the user's input (bad path, bad checkpoint, bad option)."""


class MidiReadError(MusesynthError):
    """A MIDI file that cannot be used; the data pipeline reports and skips it."""
