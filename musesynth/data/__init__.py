"""Data: the embedded corpus, the cached token dataset and the window loader."""
