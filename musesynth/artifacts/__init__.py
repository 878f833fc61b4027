"""What training writes and inference reads: checkpoint metadata, the checkpoint file, the shipped-model
folder, and the checks that make each of them verify itself on load. It sits below ``training`` and
``generate``, so training and inference are siblings that both build on it."""
