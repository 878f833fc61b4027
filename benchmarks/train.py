"""Training throughput (tokens/s) for each model family at the default sizes.

    python benchmarks/train.py                   # CPU, fp32, batch 256 x seq 100 (reference)
    python benchmarks/train.py --device cuda --precision bf16 --compile

Times full optimizer steps (forward, backward, AdamW) on random tokens after warm-up steps, and
reports model FLOPs utilisation on CUDA (6 x forward FLOPs per token x tokens/s / peak).
"""

from __future__ import annotations

import os
import sys

# benchmarks/tokenize.py would shadow the standard library's `tokenize` (imported by torch): drop our folder.
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    sys.path.pop(0)

import argparse  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from musesynth.models import FAMILIES, ModelConfig, build_model, count_params  # noqa: E402

PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0}  # dense bf16


def bench(family: str, args: argparse.Namespace, device: torch.device) -> dict[str, float]:
    torch.manual_seed(0)
    cfg = ModelConfig(family, vocab_size=312, embed_dim=args.embed_dim, seq_len=args.seq_len)
    raw = build_model(cfg).to(device)
    model = torch.compile(raw) if args.compile else raw
    opt = torch.optim.AdamW(raw.parameters(), lr=1e-4, fused=device.type == "cuda")
    dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[args.precision]
    x = torch.randint(0, 312, (args.batch_size, args.seq_len + 1), device=device)

    def step() -> None:
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            logits, _ = model(x[:, :-1])
        loss = F.cross_entropy(logits.float().reshape(-1, 312), x[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(args.warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(args.steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    dt = time.perf_counter() - t
    tps = args.steps * args.batch_size * args.seq_len / dt
    flops = 3 * raw.flops_per_token() * tps  # forward + backward (2x)
    return {"params": count_params(raw), "tokens_per_s": tps, "step_ms": 1000 * dt / args.steps,
            "tflops": flops / 1e12}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--seq-len", type=int, default=100)
    ap.add_argument("--embed-dim", type=int, default=256)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--models", nargs="+", default=list(FAMILIES))
    args = ap.parse_args()
    device = torch.device(args.device)
    peak = None
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        peak = next((v for k, v in PEAK_TFLOPS.items() if k in name), None)
        print(f"device: {name}")
    else:
        print(f"device: cpu ({torch.get_num_threads()} threads)")
    print(f"batch {args.batch_size} x seq {args.seq_len}, embed {args.embed_dim}, {args.precision}"
          f"{', compiled' if args.compile else ''}")
    print(f"{'model':12s}{'params':>12s}{'tokens/s':>14s}{'ms/step':>10s}{'TFLOP/s':>10s}{'MFU':>8s}")
    rows = {}
    for fam in args.models:
        r = rows[fam] = bench(fam, args, device)
        mfu = f"{100 * r['tflops'] / peak:.1f}%" if peak else "-"
        print(f"{fam:12s}{r['params']:12,d}{r['tokens_per_s']:14,.0f}{r['step_ms']:10.1f}{r['tflops']:10.3f}{mfu:>8s}")
    base = rows[args.models[0]]["tokens_per_s"]
    print("ratios vs " + args.models[0] + ": " + ", ".join(
        f"{f} {r['tokens_per_s'] / base:.2f}x" for f, r in rows.items()))


if __name__ == "__main__":
    main()
