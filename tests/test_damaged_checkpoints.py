"""Damaged checkpoints and shipped models, built here from a tiny trained model, through every entry point
(generate, evaluate, train --resume, export, infill and the ``load_model`` API): each call either works and
gives a usable result, or fails with one line and exit code 2, never a traceback, never silently on damaged
weights, and leaves nothing half-written behind."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file, save_file

from musesynth import api
from musesynth.artifacts.checkpoint import resume_digest
from musesynth.artifacts.load import load_model
from musesynth.artifacts.shipped import CONFIG, DIGEST, WEIGHTS
from musesynth.artifacts.weights import weights_digest
from musesynth.cli import main
from musesynth.errors import MusesynthError

MODEL_ARGS = ["-m", "transformer", "--seq-len", "128", "--embed-dim", "16", "--hidden-dim", "32", "--num-layers", "1",
              "--num-heads", "2", "--batch-size", "8", "--lr", "3e-3", "--warmup-steps", "1", "--no-tensorboard",
              "--patience", "0", "--run-name", "t", "-q"]


@dataclass
class Pristine:
    dataset: Path
    runs: Path  # holds the run folder "t" (best.pt, last.pt, config.json, ...)
    shipped: Path
    midi: Path

    @property
    def last(self) -> Path:
        return self.runs / "t" / "last.pt"


@pytest.fixture(scope="module")
def pristine(tiny_midi_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Pristine:
    """A 3-step transformer on the meter encoding with fill tokens (so infill runs), and its export."""
    from musesynth.data.build import build_dataset

    root = tmp_path_factory.mktemp("damage")
    build_dataset(tiny_midi_dir, root / "ds", encoding="meter", params={"infill": True}, workers=1, quiet=True)
    assert main(["train", "-d", str(root / "ds"), "-o", str(root / "runs"), "--max-steps", "3", *MODEL_ARGS]) == 0
    assert main(["export", "-c", str(root / "runs" / "t" / "last.pt"), "-o", str(root / "shipped")]) == 0
    return Pristine(root / "ds", root / "runs", root / "shipped", sorted(tiny_midi_dir.rglob("*.mid"))[0])


# ---------------------------------------------------------------- building the damaged copies

def edit_pt(edit: Callable[[dict[str, Any], dict[str, Any]], Any], sign: bool | None = True):
    """A checkpoint rewritten with ``edit(state, meta)`` (which may return the raw meta text, or ... for none);
    ``sign``: record the SHA-256 of the edited weights (the damage is then caught by the value checks alone),
    False: drop it (a file from before the hash), None: keep what ``edit`` left."""
    def build(p: Pristine, dst: Path) -> Path:
        state = torch.load(p.last, weights_only=True)
        meta = json.loads(state["meta"])
        raw = edit(state, meta)
        if sign and isinstance(state.get("model"), dict):
            meta["weights_sha256"] = weights_digest(state["model"])
            meta["state_sha256"] = resume_digest(state)
        elif sign is False:
            meta.pop("weights_sha256", None)
            meta.pop("state_sha256", None)
        state["meta"] = raw if isinstance(raw, str) else deep(json.dumps(meta))
        if raw is ...:
            del state["meta"]
        torch.save(state, dst)
        return dst
    return build


def edit_bytes(edit: Callable[[bytes, Pristine], bytes]):
    def build(p: Pristine, dst: Path) -> Path:
        dst.write_bytes(edit(p.last.read_bytes(), p))
        return dst
    return build


def flip(blob: bytes, at: int, n: int = 64) -> bytes:
    return blob[:at] + bytes(b ^ 0xFF for b in blob[at:at + n]) + blob[at + n:]


def tensor_offset(blob: bytes, p: Pristine) -> int:
    """Where the largest weight's bytes lie in the checkpoint file."""
    w = torch.load(p.last, weights_only=True)["model"]
    name = max(w, key=lambda k: w[k].numel())
    at = blob.find(w[name].numpy().tobytes())
    assert at > 0
    return at + 16


def set_weight(name: str, value: Any) -> Callable[[dict[str, Any], dict[str, Any]], None]:
    def edit(state: dict[str, Any], meta: dict[str, Any]) -> None:
        w = state["model"]
        w[name] = value(w[name]) if callable(value) else value
    return edit


def set_meta(path: str, value: Any) -> Callable[[dict[str, Any], dict[str, Any]], None]:
    def edit(state: dict[str, Any], meta: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = meta
        for k in parents:
            node = node[k]
        node[last] = value
    return edit


def vocab_param(name: str, value: Any) -> Callable[[dict[str, Any], dict[str, Any]], None]:
    """A vocabulary parameter changed and the fingerprint that would betray it dropped (older files have none)."""
    def edit(state: dict[str, Any], meta: dict[str, Any]) -> None:
        meta["vocab"]["params"][name] = value
        meta.pop("vocab_fingerprint", None)
    return edit


DEEP = "@deep@"  # replaced in the written JSON text by brackets nested 5000 deep (json.dumps cannot write them)


def deep(text: str) -> str:
    return text.replace(f'"{DEEP}"', "[" * 5000 + "]" * 5000)


def with_nan(t: torch.Tensor) -> torch.Tensor:
    t = t.clone()
    t.view(-1)[0] = float("nan")
    return t


def edit_shipped(weights: Callable[[dict[str, torch.Tensor]], None] | None = None,
                 config: Callable[[dict[str, Any]], Any] | None = None, sign: bool = True,
                 blob: Callable[[bytes], bytes] | None = None):
    """A copy of the exported folder with its weights and/or config edited; ``sign`` as in ``edit_pt``."""
    def build(p: Pristine, dst: Path) -> Path:
        shutil.copytree(p.shipped, dst)
        cfg = json.loads((dst / CONFIG).read_text())
        if weights is not None:
            w = load_file(dst / WEIGHTS)
            weights(w)
            save_file(w, dst / WEIGHTS)
        if blob is not None:
            (dst / WEIGHTS).write_bytes(blob((dst / WEIGHTS).read_bytes()))
        if sign:
            import hashlib
            cfg[DIGEST] = hashlib.sha256((dst / WEIGHTS).read_bytes()).hexdigest()
        else:
            cfg.pop(DIGEST, None)
        raw = config(cfg) if config is not None else None
        text = raw if isinstance(raw, (bytes, str)) else deep(json.dumps(cfg))
        (dst / CONFIG).write_bytes(text if isinstance(text, bytes) else text.encode())
        return dst
    return build


def shipped_weight(name: str, value: Callable[[torch.Tensor], torch.Tensor]):
    def edit(w: dict[str, torch.Tensor]) -> None:
        w[name] = value(w[name])
    return edit


def drop(key: str):
    return lambda d: d.pop(key)


def setitem(key: str, value: Any):
    return lambda d: d.__setitem__(key, value)


OK, RESUME_ONLY, DAMAGED = "ok", "resume-only", "damaged"
EMB, QKV = "embed.weight", "blocks.0.attn.qkv.weight"

# name -> (builder, what every entry point must do)
PT_VARIANTS: dict[str, tuple[Callable[[Pristine, Path], Path], str]] = {
    "intact": (edit_pt(lambda s, m: None), OK),
    "intact, saved before the hash": (edit_pt(lambda s, m: None, sign=False), OK),
    "64 bytes flipped mid-file": (edit_bytes(lambda b, p: flip(b, len(b) // 2)), DAMAGED),
    "64 bytes flipped in tensor data": (edit_bytes(lambda b, p: flip(b, tensor_offset(b, p))), DAMAGED),
    "1 byte flipped in tensor data": (edit_bytes(lambda b, p: flip(b, tensor_offset(b, p), 1)), DAMAGED),
    "cut in half": (edit_bytes(lambda b, p: b[: len(b) // 2]), DAMAGED),
    "trailing garbage": (edit_bytes(lambda b, p: b + b"\x00garbage" * 8), DAMAGED),
    "empty": (edit_bytes(lambda b, p: b""), DAMAGED),
    "a text file": (edit_bytes(lambda b, p: b"not a checkpoint\n"), DAMAGED),
    "bool weights": (edit_pt(set_weight(EMB, lambda t: t > 0), sign=False), DAMAGED),
    "int weights": (edit_pt(set_weight(EMB, lambda t: (t * 100).long())), DAMAGED),
    "complex weights": (edit_pt(set_weight(EMB, lambda t: t.to(torch.complex64)), sign=False), DAMAGED),
    "3e38 weights": (edit_pt(set_weight(EMB, lambda t: torch.full_like(t, 3e38)), sign=False), DAMAGED),
    "3e38 weights, signed": (edit_pt(set_weight(QKV, lambda t: torch.full_like(t, 3e38))), DAMAGED),
    "NaN weight": (edit_pt(set_weight(QKV, with_nan), sign=False), DAMAGED),
    "inf weight, signed": (edit_pt(set_weight(QKV, lambda t: t.clone().fill_(float("inf")))), DAMAGED),
    "sparse weight": (edit_pt(set_weight(QKV, lambda t: t.to_sparse()), sign=False), DAMAGED),
    "sparse weight, signed": (edit_pt(set_weight(QKV, lambda t: t.to_sparse())), DAMAGED),
    "meta-device weight": (edit_pt(set_weight(QKV, lambda t: torch.empty(t.shape, device="meta")), sign=False),
                           DAMAGED),
    "wrong shape": (edit_pt(set_weight(QKV, lambda t: t[:-1].clone())), DAMAGED),
    "missing weight": (edit_pt(lambda s, m: s["model"].pop(QKV)), DAMAGED),
    "extra weight": (edit_pt(set_weight("extra.weight", torch.zeros(3))), DAMAGED),
    "a weight named by a number": (edit_pt(set_weight(7, torch.zeros(3))), DAMAGED),
    "a string for a weight": (edit_pt(set_weight(QKV, "oops")), DAMAGED),
    "weights not a table": (edit_pt(lambda s, m: s.__setitem__("model", [1, 2])), DAMAGED),
    "hash of other weights": (edit_pt(set_meta("weights_sha256", "0" * 64), sign=None), DAMAGED),
    "hash not a hash": (edit_pt(set_meta("weights_sha256", {"x": 1}), sign=None), DAMAGED),
    "meta nested 100000 deep": (edit_pt(lambda s, m: "[" * 100_000 + "]" * 100_000), DAMAGED),
    "train_config nested 5000 deep": (edit_pt(set_meta("train_config.x", DEEP)), DAMAGED),
    "meta not JSON": (edit_pt(lambda s, m: "{not json"), DAMAGED),
    "meta a list": (edit_pt(lambda s, m: "[1, 2]"), DAMAGED),
    "no meta": (edit_pt(lambda s, m: ...), DAMAGED),
    "wrong format tag": (edit_pt(lambda s, m: s.__setitem__("format", "other")), DAMAGED),
    "num_heads 0": (edit_pt(set_meta("model_config.num_heads", 0)), DAMAGED),
    "num_heads 3 (does not divide)": (edit_pt(set_meta("model_config.num_heads", 3)), DAMAGED),
    "num_heads a string": (edit_pt(set_meta("model_config.num_heads", "2")), DAMAGED),
    "negative embed_dim": (edit_pt(set_meta("model_config.embed_dim", -16)), DAMAGED),
    "a billion-wide model": (edit_pt(set_meta("model_config.hidden_dim", 1 << 30)), DAMAGED),
    "unknown family": (edit_pt(set_meta("model_config.family", "rnn")), DAMAGED),
    "model_config a list": (edit_pt(set_meta("model_config", [1])), DAMAGED),
    "vocab_size off by one": (edit_pt(lambda s, m: m["model_config"].__setitem__(
        "vocab_size", m["model_config"]["vocab_size"] + 1)), DAMAGED),
    "vocabulary of another encoding": (edit_pt(set_meta("vocab.encoding", "chord")), DAMAGED),
    "vocabulary token renamed": (edit_pt(lambda s, m: m["vocab"]["tokens"].__setitem__(5, "NOTE_X")), DAMAGED),
    "vocabulary params garbage": (edit_pt(set_meta("vocab.params", {"resolution": "x"})), DAMAGED),
    "velocity 300, no fingerprint": (edit_pt(vocab_param("velocity", 300)), DAMAGED),
    "velocity 0, no fingerprint": (edit_pt(vocab_param("velocity", 0)), DAMAGED),
    "resolution a billion, no fingerprint": (edit_pt(vocab_param("resolution", 10**9)), DAMAGED),
    "resolution a string, no fingerprint": (edit_pt(vocab_param("resolution", "12")), DAMAGED),
    "resolution 0.5, no fingerprint": (edit_pt(vocab_param("resolution", 0.5)), DAMAGED),
    "max_bar_beats 0, no fingerprint": (edit_pt(vocab_param("max_bar_beats", 0)), DAMAGED),
    "tempo range reversed, no fingerprint": (edit_pt(vocab_param("tempo_low", 20)), DAMAGED),
    "key_prior of the wrong length": (edit_pt(set_meta("key_prior", [0.5, 0.5])), DAMAGED),
    "key_prior with NaN": (edit_pt(lambda s, m: m.__setitem__("key_prior", [float("nan")] * 24)), DAMAGED),
    "key_prior strings": (edit_pt(set_meta("key_prior", ["a"] * 24)), DAMAGED),
    "progress step a string": (edit_pt(set_meta("progress.step", "x")), DAMAGED),
    "progress step 1e30": (edit_pt(set_meta("progress.step", 10**30)), DAMAGED),
    "progress not an object": (edit_pt(set_meta("progress", [1, 2])), DAMAGED),
    "key_relative garbage": (edit_pt(set_meta("train_config.key_relative", "x")), DAMAGED),
    "key_relative a billion": (edit_pt(set_meta("train_config.key_relative", 10**9)), DAMAGED),
    "scheduler state garbage": (edit_pt(lambda s, m: s.__setitem__("scheduler", {"last_epoch": "x"})), RESUME_ONLY),
    "scheduler lambdas garbage": (edit_pt(lambda s, m: s["scheduler"].__setitem__("lr_lambdas", [{"total": "x"}])),
                                  RESUME_ONLY),
    "optimizer moments NaN": (edit_pt(lambda s, m: s["optimizer"]["state"][0].__setitem__(
        "exp_avg", with_nan(s["optimizer"]["state"][0]["exp_avg"]))), RESUME_ONLY),
    "optimizer moments a string": (edit_pt(lambda s, m: s["optimizer"]["state"][0].__setitem__("exp_avg", "x")),
                                   RESUME_ONLY),
    "optimizer moments scaled, unsigned": (edit_pt(lambda s, m: s["optimizer"]["state"][0]["exp_avg"].mul_(1e3),
                                                   sign=None), DAMAGED),
    "optimizer lr a string": (edit_pt(lambda s, m: s["optimizer"]["param_groups"][0].__setitem__("lr", "x")),
                              RESUME_ONLY),
    "no optimizer": (edit_pt(lambda s, m: s.pop("optimizer") and None), RESUME_ONLY),
    "optimizer step negative": (edit_pt(lambda s, m: s["optimizer"]["state"][0].__setitem__(
        "step", torch.tensor(-3.0))), RESUME_ONLY),
    "optimizer betas garbage": (edit_pt(lambda s, m: s["optimizer"]["param_groups"][0].__setitem__("betas", "x")),
                                RESUME_ONLY),
    "optimizer flag a string": (edit_pt(lambda s, m: s["optimizer"]["param_groups"][0].__setitem__("amsgrad", "x")),
                                RESUME_ONLY),
    "RNG state garbage": (edit_pt(lambda s, m: s.__setitem__("rng_python", "[" * 50_000)), RESUME_ONLY),
}

SHIPPED_VARIANTS: dict[str, tuple[Callable[[Pristine, Path], Path], str]] = {
    "shipped intact": (edit_shipped(), OK),
    "shipped intact, exported before the hash": (edit_shipped(sign=False), OK),
    "shipped weights flipped": (lambda p, dst: _flipped_shipped(p, dst), DAMAGED),
    "shipped trailing garbage": (lambda p, dst: _flipped_shipped(p, dst, garbage=True), DAMAGED),
    "shipped weights not safetensors": (edit_shipped(blob=lambda b: b"garbage", sign=False), DAMAGED),
    "shipped bool weights": (edit_shipped(shipped_weight(EMB, lambda t: t > 0), sign=False), DAMAGED),
    "shipped int weights": (edit_shipped(shipped_weight(EMB, lambda t: (t * 100).to(torch.int16))), DAMAGED),
    "shipped 3e38 weights": (edit_shipped(shipped_weight(QKV, lambda t: torch.full(t.shape, 3e38)), sign=False),
                             DAMAGED),
    "shipped NaN weights": (edit_shipped(shipped_weight(QKV, with_nan)), DAMAGED),
    "shipped wrong shape": (edit_shipped(shipped_weight(QKV, lambda t: t[:-1].clone())), DAMAGED),
    "shipped missing weight": (edit_shipped(lambda w: w.pop(QKV)), DAMAGED),
    "shipped config nested 100000 deep": (edit_shipped(config=lambda c: "[" * 100_000 + "]" * 100_000), DAMAGED),
    "shipped training record nested deep": (edit_shipped(config=setitem("training", DEEP)), DAMAGED),
    "shipped config not UTF-8": (edit_shipped(config=lambda c: b"{\xff}"), DAMAGED),
    "shipped ties a list": (edit_shipped(config=setitem("ties", ["head.weight", EMB])), DAMAGED),
    "shipped ties unhashable": (edit_shipped(config=setitem("ties", {"head.weight": [EMB]})), DAMAGED),
    "shipped ties to nothing": (edit_shipped(config=setitem("ties", {"head.weight": "nope"})), DAMAGED),
    "shipped num_heads 0": (edit_shipped(config=lambda c: c["model_config"].__setitem__("num_heads", 0)), DAMAGED),
    "shipped key_prior of the wrong length": (edit_shipped(config=setitem("key_prior", [1.0])), DAMAGED),
    "shipped without model_config": (edit_shipped(config=drop("model_config")), DAMAGED),
    "shipped config a list": (edit_shipped(config=lambda c: "[]"), DAMAGED),
    "shipped weights grown to 1 GB (sparse)": (lambda p, dst: _grown_shipped(p, dst, WEIGHTS), DAMAGED),
    "shipped config grown to 1 GB (sparse)": (lambda p, dst: _grown_shipped(p, dst, CONFIG), DAMAGED),
    "shipped weights cut short": (edit_shipped(blob=lambda b: b[:-7], sign=False), DAMAGED),
    "shipped vocabulary mismatch": (edit_shipped(config=lambda c: c["model_config"].__setitem__("vocab_size", 99)),
                                    DAMAGED),
}


def _grown_shipped(p: Pristine, dst: Path, name: str) -> Path:
    """The export with one file extended by a hole to 1 GB (no disk used): read whole, it took minutes and
    gigabytes (the config) or memory for the whole file (the weights) before being refused."""
    shutil.copytree(p.shipped, dst)
    os.truncate(dst / name, 2**30)
    return dst


def _flipped_shipped(p: Pristine, dst: Path, garbage: bool = False) -> Path:
    """The export as shipped (its SHA-256 recorded), then its weights file damaged afterwards."""
    shutil.copytree(p.shipped, dst)
    b = (dst / WEIGHTS).read_bytes()
    (dst / WEIGHTS).write_bytes(b + b"\0" * 64 if garbage else flip(b, len(b) * 2 // 3))
    return dst


# ---------------------------------------------------------------- the entry points

def one_line_or_ok(rc: int, err: str) -> None:
    assert rc in (0, 2), (rc, err)
    if rc == 2:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("musesynth: error:") and "Traceback" not in err, err


def via_api(path: Path, p: Pristine, tmp: Path, capsys) -> tuple[int, str]:
    try:
        model = api.load_model(path, device="cpu")
    except MusesynthError as exc:
        return 2, f"musesynth: error: {exc}\n"
    with torch.no_grad():
        logits, _ = model.net(torch.tensor([[model.encoding.bos_id, 5, 6]]))
    assert bool(logits.isfinite().all())
    return 0, ""


def via_generate(path: Path, p: Pristine, tmp: Path, capsys) -> tuple[int, str]:
    out = tmp / "gen"
    rc = main(["generate", "-c", str(path), "-n", "24", "--num-samples", "1", "--no-wav", "--no-png", "-q",
               "-o", str(out)])
    made = sorted(out.glob("*.mid")) if out.exists() else []
    assert bool(made) == (rc == 0), made  # a piece when it worked, nothing when it refused
    return rc, capsys.readouterr().err


def via_evaluate(path: Path, p: Pristine, tmp: Path, capsys) -> tuple[int, str]:
    rc = main(["evaluate", "-c", str(path), "-d", str(p.dataset), "--samples", "0", "--split", "train"])
    cap = capsys.readouterr()
    if rc == 0:
        assert "nll" in cap.out.lower() or "perplexity" in cap.out.lower(), cap.out
    return rc, cap.err


def via_infill(path: Path, p: Pristine, tmp: Path, capsys) -> tuple[int, str]:
    out = tmp / "fill"
    rc = main(["infill", "-c", str(path), "--input", str(p.midi), "--bars", "2-3", "--max-tokens", "40",
               "--no-wav", "--no-png", "-q", "-o", str(out)])
    made = sorted(out.glob("*.mid")) if out.exists() else []
    assert bool(made) == (rc == 0), made
    return rc, capsys.readouterr().err


def via_export(path: Path, p: Pristine, tmp: Path, capsys) -> tuple[int, str]:
    out = tmp / "exported"
    rc = main(["export", "-c", str(path), "-o", str(out)])
    if rc == 0:
        load_model(out)  # what export ships loads and verifies
    else:
        assert not out.exists() and not [f for f in tmp.iterdir() if f.name.startswith(".exported")]
    return rc, capsys.readouterr().err


def via_resume(path: Path, p: Pristine, tmp: Path, capsys) -> tuple[int, str]:
    runs = tmp / "runs"
    shutil.copytree(p.runs, runs)
    shutil.copyfile(path, runs / "t" / "last.pt")
    before = (runs / "t" / "last.pt").read_bytes()
    rc = main(["train", "-d", str(p.dataset), "-o", str(runs), "--max-steps", "4", "--resume", *MODEL_ARGS])
    err = capsys.readouterr().err
    if rc == 0:
        assert load_model(runs / "t" / "last.pt")[2].progress.step == 4
    else:
        assert (runs / "t" / "last.pt").read_bytes() == before  # the damaged file is kept, not replaced
        assert "last good checkpoint" not in err
    return rc, err


PT_ENTRIES = {"load_model": via_api, "generate": via_generate, "evaluate": via_evaluate, "infill": via_infill,
              "export": via_export, "train --resume": via_resume}
SHIPPED_ENTRIES = {k: PT_ENTRIES[k] for k in ("load_model", "generate", "evaluate", "infill")}


def check_variant(path: Path, expect: str, entries: dict[str, Callable], p: Pristine, tmp: Path, capsys) -> None:
    results = {}
    for name, call in entries.items():
        where = tmp / name.replace(" ", "_").replace("-", "")
        where.mkdir()
        rc, err = call(path, p, where, capsys)
        one_line_or_ok(rc, err)
        results[name] = rc
    want = {name: 2 if expect == DAMAGED or (expect == RESUME_ONLY and name == "train --resume") else 0
            for name in entries}
    assert results == want


@pytest.mark.parametrize("variant", PT_VARIANTS)
def test_a_damaged_checkpoint_is_refused_in_one_line_everywhere(variant, pristine, tmp_path, capsys):
    build, expect = PT_VARIANTS[variant]
    path = build(pristine, tmp_path / "damaged.pt")
    capsys.readouterr()
    check_variant(path, expect, PT_ENTRIES, pristine, tmp_path, capsys)


@pytest.mark.parametrize("variant", SHIPPED_VARIANTS)
def test_a_damaged_shipped_model_is_refused_in_one_line_everywhere(variant, pristine, tmp_path, capsys):
    build, expect = SHIPPED_VARIANTS[variant]
    path = build(pristine, tmp_path / "model")
    capsys.readouterr()
    check_variant(path, expect, SHIPPED_ENTRIES, pristine, tmp_path, capsys)


def test_there_are_at_least_forty_variants():
    assert len(PT_VARIANTS) + len(SHIPPED_VARIANTS) >= 40


# ---------------------------------------------------------------- a full disk

@pytest.fixture
def small_disk(tmp_path: Path):
    """A 2 MB tmpfs (needs root, as in CI containers; skipped elsewhere), unmounted afterwards."""
    import subprocess

    where = tmp_path / "disk"
    where.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(where)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=False)


def fill(disk: Path, leave: int) -> None:
    import os

    st = os.statvfs(disk)
    (disk / "filler").write_bytes(b"\0" * max(0, st.f_bavail * st.f_frsize - leave))


def leftovers(folder: Path) -> list[str]:
    return sorted(str(f.relative_to(folder)) for f in folder.rglob("*") if ".tmp" in f.name or ".old." in f.name)


def test_a_full_disk_is_one_line_in_train_and_export_and_leaves_no_partial_file(pristine, small_disk, capsys):
    fill(small_disk, leave=40_000)  # room for the run's small files, not for a checkpoint
    rc = main(["train", "-d", str(pristine.dataset), "-o", str(small_disk / "runs"), "--max-steps", "2",
               *MODEL_ARGS])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "no space left on device" in err, err
    assert not leftovers(small_disk) and not (small_disk / "runs" / "t" / "last.pt").exists()
    rc = main(["export", "-c", str(pristine.last), "-o", str(small_disk / "exported")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "no space left on device" in err, err
    assert not leftovers(small_disk) and not (small_disk / "exported").exists()


def test_a_failed_checkpoint_write_is_one_line_and_removes_its_temp_file(pristine, tmp_path, monkeypatch, capsys):
    """The same without root: torch.save fails the way its zip writer does on a full disk."""
    def failing_save(obj: Any, f: Any, *a: Any, **k: Any) -> None:
        Path(f).write_bytes(b"PK partial")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 576 vs 534")

    monkeypatch.setattr(torch, "save", failing_save)
    rc = main(["train", "-d", str(pristine.dataset), "-o", str(tmp_path / "runs"), "--max-steps", "2", *MODEL_ARGS])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "cannot write" in err and "last.pt" in err, err
    assert not leftovers(tmp_path) and not list((tmp_path / "runs").rglob("*.pt"))
