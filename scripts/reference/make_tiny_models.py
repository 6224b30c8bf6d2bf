#!/usr/bin/env python3
"""Write tiny, randomly initialised encoders with `transformers`, and their outputs.

Why: osprey must read any BERT-family directory, in safetensors or in a PyTorch
pickle (`pytorch_model.bin`), and compute what `transformers` computes. Real models
are too large to commit, so this script makes tiny ones (a few KB) from a fixed
seed. It records `transformers`' last hidden state for a few padded token
sequences, and the Rust tests compare against those values.

Models: BERT (safetensors and pickle), RoBERTa (pickle), DistilBERT (safetensors).
Writes fixtures/tiny/<name>/ with config.json, a minimal tokenizer.json, weights
(model.safetensors or pytorch_model.bin), and reference.json.

Run once by developers, not by CI:
    .venv/bin/python scripts/reference/make_tiny_models.py
"""
import json
from pathlib import Path

import torch
from transformers import BertConfig, BertModel, DistilBertConfig, DistilBertModel, RobertaConfig, RobertaModel

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "fixtures" / "tiny"
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"] + [f"w{i}" for i in range(28)]
SEQUENCES = [[2, 7, 11, 3], [2, 5, 9, 13, 17, 21, 25, 3], [2, 29, 3]]


def tokenizer_json():
    """A WordPiece tokenizer over VOCAB with BERT's single-sequence template."""
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [
            {"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
             "normalized": False, "special": True}
            for i, t in enumerate(VOCAB[:4])
        ],
        "normalizer": {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": True,
                       "strip_accents": None, "lowercase": True},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}},
                       {"Sequence": {"id": "A", "type_id": 0}},
                       {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}},
                     {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "[SEP]", "type_id": 0}},
                     {"Sequence": {"id": "B", "type_id": 1}},
                     {"SpecialToken": {"id": "[SEP]", "type_id": 1}}],
            "special_tokens": {
                "[CLS]": {"id": "[CLS]", "ids": [2], "tokens": ["[CLS]"]},
                "[SEP]": {"id": "[SEP]", "ids": [3], "tokens": ["[SEP]"]},
            },
        },
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": True},
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                  "max_input_chars_per_word": 100, "vocab": {t: i for i, t in enumerate(VOCAB)}},
    }


def save(d, model, fmt):
    """Writes `model` (weights in `fmt`) and the tiny tokenizer to directory `d`."""
    d.mkdir(parents=True, exist_ok=True)
    for stale in ("model.safetensors", "pytorch_model.bin"):
        (d / stale).unlink(missing_ok=True)
    model.save_pretrained(d, safe_serialization=(fmt == "safetensors"))
    (d / "tokenizer.json").write_text(json.dumps(tokenizer_json(), indent=1))


def build(name, model, fmt):
    d = OUT / name
    save(d, model, fmt)
    longest = max(len(s) for s in SEQUENCES)
    ids = torch.tensor([s + [0] * (longest - len(s)) for s in SEQUENCES])
    mask = torch.tensor([[1] * len(s) + [0] * (longest - len(s)) for s in SEQUENCES])
    with torch.no_grad():
        hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state
    # Mean pooling over real tokens, as sentence-transformers does.
    pooled = (hidden * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True)
    ref = {"sequences": SEQUENCES, "mean_pooled": pooled.tolist(),
           "transformers_version": __import__("transformers").__version__, "format": fmt}
    (d / "reference.json").write_text(json.dumps(ref, indent=1))
    print(f"wrote {d} ({fmt})")


def main():
    torch.manual_seed(1234)
    common = dict(vocab_size=len(VOCAB), hidden_size=16, num_hidden_layers=2, num_attention_heads=4,
                  intermediate_size=32, max_position_embeddings=40)
    bert = BertModel(BertConfig(**common), add_pooling_layer=False).eval()
    build("bert-safetensors", bert, "safetensors")
    build("bert-pytorch-bin", bert, "bin")
    roberta = RobertaModel(RobertaConfig(**common, pad_token_id=1, bos_token_id=0, eos_token_id=2),
                           add_pooling_layer=False).eval()
    build("roberta-pytorch-bin", roberta, "bin")
    distil = DistilBertModel(DistilBertConfig(vocab_size=len(VOCAB), dim=16, n_layers=2, n_heads=4, hidden_dim=32,
                                              max_position_embeddings=40)).eval()
    build("distilbert-safetensors", distil, "safetensors")


if __name__ == "__main__":
    main()
