"""Generation: primer in, new music out (MIDI, WAV, piano-roll PNG, JSON sidecar)."""
