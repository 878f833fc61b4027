"""musesynth: learn from MIDI collections and compose new music.

Pipeline: tokenize -> data -> models -> training -> generate -> evaluate (and ablate).
"""

__version__ = "0.1.0"
