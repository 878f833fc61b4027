"""Training throughput (tokens/s) and model FLOPs utilisation, kernel reference and real loop.

    python benchmarks/train.py                   # CPU, fp32, batch 256 x seq 100 (the reference sizes)
    python benchmarks/train.py --loop            # + the real `musesynth train` loop at the same config
    python benchmarks/train.py --device cuda --precision bf16 --compile --loop
    python benchmarks/train.py --device cuda --precision bf16 --compile --models transformer \\
        --layers 8 --embed-dim 768 --hidden 3072 --heads 12 --seq-len 1024 --batch-size 32   # ~ --preset large

The reference times full optimizer steps (forward, backward, AdamW) on one fixed batch of random tokens
already on the device, after warm-up steps: what the kernels allow. ``--loop`` then runs the training
loop itself (``musesynth.training.loop.train``: real data, schedule, gradient clipping, logging,
validation and checkpoints included) on the Bach chorales for warm-up + steps steps at the same sizes,
and prints its tokens/s (whole run, warm-up and the final validation included) and the ratio
loop / reference. MFU = 3 x forward FLOPs per token x tokens/s / peak: the peak comes from a table of
dense bf16 tensor-core figures per GPU (``--peak-tflops`` overrides it); on CPU it is measured (best
fp32 matmul rate), so CPU MFU reads "share of what this CPU's matmul reaches".
"""

from __future__ import annotations

import os
import sys

# benchmarks/tokenize.py would shadow the standard library's `tokenize` (imported by torch): drop our folder.
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    sys.path.pop(0)

import argparse  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from musesynth.models import FAMILIES, ModelConfig, build_model, count_params  # noqa: E402

# dense bf16/fp16 tensor-core peaks (TFLOP/s), most specific name first; fp32 runs are rated against them too
PEAK_TFLOPS = [("H100 PCIe", 756.0), ("H100", 989.0), ("H200", 989.0), ("GH200", 989.0), ("B200", 2250.0),
               ("A100", 312.0), ("L40S", 362.0), ("L4", 121.0), ("A10", 125.0), ("4090", 165.0), ("3090", 71.0),
               ("V100", 125.0), ("T4", 65.0)]
VOCAB = 312  # the chord encoding's vocabulary (what --loop trains on)


def model_config(family: str, args: argparse.Namespace) -> ModelConfig:
    return ModelConfig(family, vocab_size=VOCAB, embed_dim=args.embed_dim, hidden_dim=args.hidden,
                       num_layers=args.layers, num_heads=args.heads, seq_len=args.seq_len)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench(family: str, args: argparse.Namespace, device: torch.device) -> dict[str, float]:
    """The kernel reference: optimizer steps on one batch already on the device, nothing else."""
    torch.manual_seed(0)
    raw = build_model(model_config(family, args)).to(device)
    model = torch.compile(raw) if args.compile else raw
    opt = torch.optim.AdamW(raw.parameters(), lr=1e-4, fused=device.type == "cuda")
    dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[args.precision]
    x = torch.randint(0, VOCAB, (args.batch_size, args.seq_len + 1), device=device)

    def step() -> None:
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            logits, _ = model(x[:, :-1])
        loss = F.cross_entropy(logits.float().reshape(-1, VOCAB), x[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(args.warmup):
        step()
    sync(device)
    t = time.perf_counter()
    for _ in range(args.steps):
        step()
    sync(device)
    dt = time.perf_counter() - t
    tps = args.steps * args.batch_size * args.seq_len / dt
    return {"params": count_params(raw), "tokens_per_s": tps, "step_ms": 1000 * dt / args.steps,
            "tflops": 3 * raw.flops_per_token() * tps / 1e12}  # forward + backward (2x)


def loop_rate(family: str, args: argparse.Namespace, dataset: str, out_dir: str) -> float:
    """Tokens/s of the real training loop at the reference's sizes (whole run: every step, logging,
    the end-of-run validation and checkpoints)."""
    from musesynth.training.config import TrainConfig
    from musesynth.training.loop import train

    cfg = TrainConfig(dataset=dataset, model=family, seq_len=args.seq_len, embed_dim=args.embed_dim,
                      batch_size=args.batch_size, hidden_dim=args.hidden, num_layers=args.layers,
                      num_heads=args.heads, lr=1e-4, precision=args.precision, compile=args.compile,
                      device=args.device, max_steps=args.warmup + args.steps, epochs=10**6, patience=0,
                      out_dir=out_dir, run_name=family, tensorboard=False, quiet=True)
    return train(cfg).tokens_per_s


def peak_tflops(device: torch.device, override: float | None) -> tuple[float | None, str]:
    """The peak FLOP/s MFU is rated against, and where it comes from."""
    if override:
        return override, f"peak {override:g} TFLOP/s (--peak-tflops)"
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        peak = next((v for k, v in PEAK_TFLOPS if k in name), None)
        return peak, (f"{name}: dense bf16 peak {peak:g} TFLOP/s" if peak else f"{name}: peak unknown, "
                      "give --peak-tflops")
    a = torch.randn(1024, 1024)
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        a @ a
        best = min(best, time.perf_counter() - t)
    peak = 2 * 1024**3 / best / 1e12
    return peak, f"cpu ({torch.get_num_threads()} threads): measured fp32 matmul peak {1000 * peak:.0f} GFLOP/s"


def corpus_dir(path: str) -> str:
    """The Bach chorales as MIDI (exported once from the embedded corpus when missing)."""
    from musesynth.data.corpus import export_corpus

    if not Path(path).is_dir():
        export_corpus("bach", path, quiet=True)
    return path


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--seq-len", type=int, default=100)
    ap.add_argument("--embed-dim", type=int, default=256)
    ap.add_argument("--hidden", type=int, default=None, help="RNN state / feed-forward width (family default)")
    ap.add_argument("--layers", type=int, default=None, help="layers (family default)")
    ap.add_argument("--heads", type=int, default=4, help="Transformer attention heads")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--models", nargs="+", default=list(FAMILIES))
    ap.add_argument("--peak-tflops", type=float, default=None, help="the device's peak, overriding the table")
    ap.add_argument("--loop", action="store_true", help="also time the real training loop, print loop/reference")
    ap.add_argument("--midi-dir", default="data/bach_midi", help="--loop's corpus (exported there if missing)")
    return ap.parse_args()


def main() -> None:
    args = parse_args()
    device = torch.device(args.device)
    peak, peak_note = peak_tflops(device, args.peak_tflops)
    print(f"device: {peak_note}")
    print(f"batch {args.batch_size} x seq {args.seq_len}, embed {args.embed_dim}, {args.precision}"
          f"{', compiled' if args.compile else ''}")
    head = f"{'model':12s}{'params':>12s}{'tokens/s':>12s}{'ms/step':>9s}{'TFLOP/s':>9s}{'MFU':>7s}"
    print(head + (f"{'loop tok/s':>12s}{'loop/ref':>9s}" if args.loop else ""))
    midi = corpus_dir(args.midi_dir) if args.loop else ""
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for fam in args.models:
            r = rows[fam] = bench(fam, args, device)
            mfu = f"{100 * r['tflops'] / peak:.1f}%" if peak else "n/a"
            line = (f"{fam:12s}{r['params']:12,d}{r['tokens_per_s']:12,.0f}{r['step_ms']:9.1f}{r['tflops']:9.3f}"
                    f"{mfu:>7s}")
            if args.loop:
                loop = loop_rate(fam, args, midi, tmp)
                line += f"{loop:12,.0f}{loop / r['tokens_per_s']:9.2f}"
            print(line, flush=True)
    base = rows[args.models[0]]["tokens_per_s"]
    print("ratios vs " + args.models[0] + ": " + ", ".join(
        f"{f} {r['tokens_per_s'] / base:.2f}x" for f, r in rows.items()))


if __name__ == "__main__":
    main()
