"""metrics.csv (always) and TensorBoard events (when available), written by rank 0 only."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any


class MetricsLog:
    FIELDS = ["kind", "step", "epoch", "tokens", "loss", "lr", "tokens_per_s", "elapsed_s"]

    def __init__(self, run_dir: Path, tensorboard: bool, append: bool) -> None:
        self.path = run_dir / "metrics.csv"
        new = not (append and self.path.exists())
        self.fh = open(self.path, "w" if new else "a", newline="")
        self.csv = csv.DictWriter(self.fh, fieldnames=self.FIELDS)
        if new:
            self.csv.writeheader()
        self.tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(run_dir / "tensorboard"))
            except ImportError:
                self.tb = None

    def write(self, **row: Any) -> None:
        self.csv.writerow({k: row.get(k, "") for k in self.FIELDS})
        self.fh.flush()
        if self.tb is not None:
            self.tb.add_scalar(f"loss/{row['kind']}", row["loss"], row["tokens"])
            if row.get("lr") not in (None, ""):
                self.tb.add_scalar("lr", row["lr"], row["step"])

    def close(self) -> None:
        self.fh.close()
        if self.tb is not None:
            self.tb.close()
