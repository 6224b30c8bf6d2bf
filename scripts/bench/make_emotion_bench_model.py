#!/usr/bin/env python3
"""Write a randomly initialised DistilRoBERTa-size 7-label emotion classifier for benchmarks.

What
    A RobertaForSequenceClassification with the compute shape of distilroberta-base
    (and so of j-hartmann/emotion-english-distilroberta-base): 6 layers, hidden 768,
    12 heads, intermediate 3072, GELU, layer_norm_eps 1e-5, max_position_embeddings
    514, type_vocab_size 1, and the 7 emotion labels anger, disgust, fear, joy,
    neutral, sadness, surprise (in that index order) with
    problem_type single_label_classification. Saved as model.safetensors with
    config.json into models/bench-emotion-distilroberta/ (gitignored).

Why
    osprey's emotion path has to be timed against transformers on a model of the
    real size, but nothing can be downloaded from the HuggingFace hub here. The
    weights are random (fixed seed, so every run writes the same file); speed does
    not depend on their values.

Tokenizer
    No RoBERTa BPE tokenizer is available offline, so the model uses the WordPiece
    tokenizer of models/all-MiniLM-L6-v2 (scripts/fetch-models): tokenizer.json,
    tokenizer_config.json, special_tokens_map.json and vocab.txt are copied, and
    vocab_size is that tokenizer's 30522. The only difference in compute shape
    from distilroberta-base is the embedding table (30522 rows instead of 50265),
    which is a lookup and costs no FLOPs. osprey and the transformers baseline
    (emotion_baseline.py) read the same tokenizer, so the comparison is fair.
    Special tokens: [PAD]=0, [UNK]=100, [CLS]=101, [SEP]=102, all < vocab_size.
    pad_token_id is set to the tokenizer's pad id 0 (not RoBERTa's usual 1), so
    padding is consistent; RoBERTa numbers positions from pad_token_id + 1, here
    1..n for n real tokens (pads get position 0), and 514 positions still cover
    512 tokens. bos/eos_token_id are [CLS]/[SEP] (unused by the forward pass).
    The MiniLM tokenizer.json has truncation (128) and fixed padding (128) baked
    in; the copy has both removed (set to null) and model_max_length 512 in
    tokenizer_config.json, so the caller decides: the baseline truncates at 512
    and pads to the longest text of each batch.

    Encoder parameters use transformers' own initialisation (normal, std 0.02;
    LayerNorm 1/0). The classification head (classifier.dense, classifier.out_proj)
    is redrawn with std 1/sqrt(768) and biases with std 0.5, so the logits are of
    order one and differ across labels, which makes a logits parity check against
    transformers (emotion_baseline.py --dump-logits) meaningful.

How
    .venv/bin/python scripts/bench/make_emotion_bench_model.py [--out DIR] [--seed 0]
        [--tokenizer-from models/all-MiniLM-L6-v2]
    Prints the output path and the parameter count. Takes a few seconds and
    writes about 270 MB.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
LABELS = ["anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise"]
TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description="random DistilRoBERTa-size emotion classifier for benchmarks")
    ap.add_argument("--out", type=Path, default=REPO_ROOT / "models" / "bench-emotion-distilroberta")
    ap.add_argument("--tokenizer-from", type=Path, default=REPO_ROOT / "models" / "all-MiniLM-L6-v2")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    src = args.tokenizer_from
    if not (src / "tokenizer.json").is_file():
        log(f"error: no tokenizer.json in {src}; run scripts/fetch-models")
        return 1

    import torch
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer, RobertaConfig, RobertaForSequenceClassification

    tok = Tokenizer.from_file(str(src / "tokenizer.json"))
    vocab_size = tok.get_vocab_size(with_added_tokens=True)
    special = {t: tok.token_to_id(t) for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")}
    if any(i is None or i >= vocab_size for i in special.values()):
        log(f"error: special tokens {special} do not fit vocab size {vocab_size}")
        return 1

    config = RobertaConfig(
        vocab_size=vocab_size,
        hidden_size=768,
        num_hidden_layers=6,
        num_attention_heads=12,
        intermediate_size=3072,
        hidden_act="gelu",
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
        max_position_embeddings=514,
        type_vocab_size=1,
        initializer_range=0.02,
        layer_norm_eps=1e-5,
        pad_token_id=special["[PAD]"],
        bos_token_id=special["[CLS]"],
        eos_token_id=special["[SEP]"],
        num_labels=len(LABELS),
        id2label=dict(enumerate(LABELS)),
        label2id={label: i for i, label in enumerate(LABELS)},
        problem_type="single_label_classification",
        architectures=["RobertaForSequenceClassification"],
    )
    torch.manual_seed(args.seed)
    model = RobertaForSequenceClassification(config).eval()
    gen = torch.Generator().manual_seed(args.seed + 1)
    with torch.no_grad():
        for name, p in model.classifier.named_parameters():
            std = 1 / math.sqrt(config.hidden_size) if name.endswith("weight") else 0.5
            p.copy_(std * torch.randn(p.shape, generator=gen))

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    for stale in ("model.safetensors", "pytorch_model.bin"):
        (out / stale).unlink(missing_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    for name in TOKENIZER_FILES:
        if (src / name).is_file():
            shutil.copyfile(src / name, out / name)
    tj = json.loads((out / "tokenizer.json").read_text(encoding="utf-8"))
    tj["truncation"] = None
    tj["padding"] = None
    (out / "tokenizer.json").write_text(json.dumps(tj, ensure_ascii=False), encoding="utf-8")
    tc_path = out / "tokenizer_config.json"
    tc = json.loads(tc_path.read_text(encoding="utf-8")) if tc_path.is_file() else {}
    tc.update(model_max_length=512, tokenizer_class=tc.get("tokenizer_class", "BertTokenizer"))
    tc.pop("name_or_path", None)
    tc_path.write_text(json.dumps(tc, indent=2), encoding="utf-8")

    # Smoke test: load it back the way the baseline does.
    tokenizer = AutoTokenizer.from_pretrained(out)
    reloaded = RobertaForSequenceClassification.from_pretrained(out).eval()
    inputs = tokenizer(["I can't believe this happened, I'm so happy!", "ok"], padding=True,
                       truncation=True, max_length=512, return_tensors="pt")
    with torch.inference_mode():
        logits = reloaded(**inputs).logits
    log(f"smoke test logits: {[[round(x, 4) for x in row] for row in logits.tolist()]}")

    n_params = sum(p.numel() for p in model.parameters())
    n_embed = model.roberta.embeddings.word_embeddings.weight.numel()
    print(f"wrote {out}")
    print(f"parameters: {n_params:,} ({n_params - n_embed:,} outside the {vocab_size}-row word embedding table)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
