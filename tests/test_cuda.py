"""GPU-only checks: skipped, with the reason, on a machine without CUDA (CI runs on CPU)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from musesynth.models import ModelConfig, build_model
from musesynth.tokenize import get_encoding

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def test_cuda_graph_decoding_gives_the_same_tokens_as_eager():
    from musesynth.generate.fast_decode import GraphedDecoding
    from musesynth.generate.sampling import generate

    torch.manual_seed(0)
    model = build_model(ModelConfig("transformer", 312, embed_dim=64, hidden_dim=128, num_layers=2, seq_len=32))
    model = model.cuda().eval()
    enc = get_encoding("chord")
    kw = dict(num_tokens=80, num_samples=1, grammar=enc.grammar(), seed=2, seq_len=32)
    graphed = GraphedDecoding(model)
    a = generate(model, [enc.bos_id], **kw)
    b = generate(graphed, [enc.bos_id], **kw)
    assert graphed.graph is not None
    np.testing.assert_array_equal(a[0], b[0])


def test_generate_replays_cuda_graphs_for_a_transformer_with_the_same_tokens():
    """`musesynth generate` on a GPU: the Decoder wraps a Transformer in GraphedDecoding by itself, at batch 1 and
    64, through the sliding window past the context, with the grammar and filters of a real run."""
    from musesynth.generate.sampling import Decoder, Sampling, generate

    torch.manual_seed(0)
    model = build_model(ModelConfig("transformer", 312, embed_dim=64, hidden_dim=128, num_layers=2, seq_len=32))
    model = model.cuda().eval()
    enc = get_encoding("chord")
    assert type(Decoder(model, [enc.bos_id]).model).__name__ == "GraphedDecoding"
    for n in (1, 64):
        kw = dict(num_tokens=90, num_samples=n, grammar=enc.grammar(), seed=3, seq_len=32,
                  sampling=Sampling(temperature=0.9, top_k=40, top_p=0.95))
        fast = generate(model, [enc.bos_id], **kw)
        slow = generate(model, [enc.bos_id], cuda_graphs=False, **kw)
        for a, b in zip(fast, slow):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("family", ["gru", "lstm", "transformer"])
def test_deterministic_cuda_run_resumes_bit_for_bit(family, bach_dataset, tmp_path):
    from musesynth.training.checkpoint import load_raw
    from musesynth.training.config import TrainConfig
    from musesynth.training.loop import train

    kw = dict(dataset=str(bach_dataset), model=family, out_dir=str(tmp_path), seq_len=32, embed_dim=32,
              hidden_dim=64, num_layers=2, batch_size=16, epochs=2, device="cuda", deterministic=True,
              precision="bf16", tensorboard=False, quiet=True, patience=0)
    try:
        full = train(TrainConfig(run_name="full", **kw))
        part = TrainConfig(run_name="part", halt_after_steps=full.steps // 2 + 3, **kw)
        train(part)
        part.halt_after_steps, part.resume = 0, True
        train(part)
    finally:
        torch.use_deterministic_algorithms(False)
    a, b = load_raw(tmp_path / "full" / "last.pt"), load_raw(tmp_path / "part" / "last.pt")
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k


def test_bf16_compiled_transformer_step():
    """The large preset's ingredients on a small model: bf16 autocast, fused AdamW, SDPA, compile."""
    torch.manual_seed(0)
    model = build_model(ModelConfig("transformer", 312, embed_dim=128, hidden_dim=512, num_layers=2,
                                    num_heads=2, seq_len=256, dropout=0.0)).cuda()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True)
    step = torch.compile(model)
    x = torch.randint(0, 312, (4, 257), device="cuda")
    for _ in range(3):
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits, _ = step(x[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.float().reshape(-1, 312), x[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert torch.isfinite(loss)
