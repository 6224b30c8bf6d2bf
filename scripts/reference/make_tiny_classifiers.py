#!/usr/bin/env python3
"""Write tiny, randomly initialised 7-label emotion classifiers with `transformers`, and their logits.

Why: osprey classifies emotions with any HuggingFace `*ForSequenceClassification`
directory whose config.json has the 7 labels of j-hartmann/emotion-english-
distilroberta-base (anger, disgust, fear, joy, neutral, sadness, surprise). It
computes logits = head(encoder(...)) itself, so each head variant needs a
reference: BERT (pooler + classifier), RoBERTa / DistilRoBERTa (classifier.dense
+ tanh + classifier.out_proj on the first token) and DistilBERT (pre_classifier +
ReLU + classifier on the first token). Real models are too large to commit, so
this script makes tiny ones (a few KB) from a fixed seed and records what
`transformers` computes for them.

Every parameter is drawn at random (std 0.2; LayerNorm weights around 1; the
classification head with std 0.5), including biases, LayerNorm and the pooler,
so an implementation that skips or swaps a piece cannot pass by accident, and
the logits are far from zero.

Writes fixtures/tiny-cls/<name>/ for:
    bert           BertForSequenceClassification        model.safetensors
    roberta        RobertaForSequenceClassification     pytorch_model.bin  (pad_token_id 1: positions 2..)
    distilroberta  RobertaForSequenceClassification     model.safetensors  (1 layer, pad_token_id 0: positions 1..)
    distilbert     DistilBertForSequenceClassification  model.safetensors
each with config.json, the minimal WordPiece tokenizer.json of
make_tiny_models.py (same 32-token VOCAB) and reference.json:
    sequences          token-id lists of different lengths (with [CLS]=2 ... [SEP]=3)
    logits             [len(sequences)][7], from one padded batch with attention mask
    probabilities      softmax of logits
    texts              3 short texts of vocabulary words
    text_ids           their token ids, from `tokenizers` with the written tokenizer.json
    text_logits        [3][7], from one padded batch of text_ids
    text_probabilities softmax of text_logits
    id2label           {"0": "anger", ..., "6": "surprise"} as in config.json
    pad_token_id, architecture, transformers_version, format ("safetensors" | "bin")
The padded batches are padded with the config's pad_token_id; the script checks
that every row equals the logits of the same sequence run alone (no padding).

Run once by developers, not by CI:
    .venv/bin/python scripts/reference/make_tiny_classifiers.py
"""
import json
import sys
from pathlib import Path

import torch
from tokenizers import Tokenizer
from transformers import (BertConfig, BertForSequenceClassification, DistilBertConfig,
                          DistilBertForSequenceClassification, RobertaConfig,
                          RobertaForSequenceClassification)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_tiny_models import VOCAB, save  # noqa: E402  (same directory)

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "fixtures" / "tiny-cls"
LABELS = ["anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise"]
ID2LABEL = {i: label for i, label in enumerate(LABELS)}
LABEL2ID = {label: i for i, label in enumerate(LABELS)}
# Ids 0 ([PAD]) and 1 ([UNK], RoBERTa's pad id in the `roberta` fixture) never occur.
SEQUENCES = [
    [2, 7, 11, 3],
    [2, 5, 9, 13, 17, 21, 25, 3],
    [2, 29, 3],
    [2] + [4 + (5 * i) % 28 for i in range(30)] + [3],  # 32 tokens
]
TEXTS = ["w1 w2 w3", "W4 w10  w27 w5 w8 w9", "w20"]
HEAD_PREFIXES = ("classifier.", "pre_classifier.")


def randomize(model, seed):
    """Redraw every parameter: head std 0.5, LayerNorm weight 1 +- 0.2, the rest std 0.2."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=gen)
            if name.startswith(HEAD_PREFIXES):
                p.copy_(0.5 * noise)
            elif ("LayerNorm" in name or "layer_norm" in name) and name.endswith("weight"):
                p.copy_(1.0 + 0.2 * noise)
            else:
                p.copy_(0.2 * noise)
    return model.eval()


def run(model, seqs, pad_id):
    longest = max(len(s) for s in seqs)
    ids = torch.tensor([s + [pad_id] * (longest - len(s)) for s in seqs])
    mask = torch.tensor([[1] * len(s) + [0] * (longest - len(s)) for s in seqs])
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask).logits
        for row, s in zip(logits, seqs):  # padding must not change anything
            alone = model(input_ids=torch.tensor([s])).logits[0]
            assert torch.allclose(row, alone, atol=1e-5), (row, alone)
    return logits, logits.softmax(-1)


def build(name, model, fmt):
    d = OUT / name
    save(d, model, fmt)
    pad_id = model.config.pad_token_id or 0
    logits, probs = run(model, SEQUENCES, pad_id)
    tok = Tokenizer.from_file(str(d / "tokenizer.json"))
    text_ids = [e.ids for e in tok.encode_batch(TEXTS)]
    text_logits, text_probs = run(model, text_ids, pad_id)
    assert logits.abs().max() > 0.5, logits  # far from zero
    ref = {
        "sequences": SEQUENCES,
        "logits": logits.tolist(),
        "probabilities": probs.tolist(),
        "texts": TEXTS,
        "text_ids": text_ids,
        "text_logits": text_logits.tolist(),
        "text_probabilities": text_probs.tolist(),
        "id2label": {str(i): label for i, label in ID2LABEL.items()},
        "pad_token_id": pad_id,
        "architecture": type(model).__name__,
        "transformers_version": __import__("transformers").__version__,
        "format": fmt,
    }
    (d / "reference.json").write_text(json.dumps(ref, indent=1))
    top = [LABELS[i] for i in logits.argmax(-1).tolist()]
    print(f"wrote {d} ({fmt}), logits range [{logits.min():.3f}, {logits.max():.3f}], argmax {top}")


def main():
    torch.manual_seed(1234)
    labels = dict(num_labels=len(LABELS), id2label=ID2LABEL, label2id=LABEL2ID,
                  problem_type="single_label_classification")
    common = dict(vocab_size=len(VOCAB), hidden_size=16, num_hidden_layers=2, num_attention_heads=4,
                  intermediate_size=32, **labels)

    bert = BertForSequenceClassification(BertConfig(**common, max_position_embeddings=40))
    build("bert", randomize(bert, 1), "safetensors")

    roberta = RobertaForSequenceClassification(RobertaConfig(
        **common, max_position_embeddings=42, type_vocab_size=1, pad_token_id=1, bos_token_id=0,
        eos_token_id=2))
    build("roberta", randomize(roberta, 2), "bin")

    # DistilRoBERTa: RoBERTa with fewer layers (distilroberta-base has 6 instead of 12).
    # pad_token_id 0 (the tokenizer's [PAD]) makes positions start at 1, unlike `roberta`.
    distilroberta = RobertaForSequenceClassification(RobertaConfig(
        **{**common, "num_hidden_layers": 1}, max_position_embeddings=42, type_vocab_size=1,
        pad_token_id=0, bos_token_id=2, eos_token_id=3))
    build("distilroberta", randomize(distilroberta, 3), "safetensors")

    distilbert = DistilBertForSequenceClassification(DistilBertConfig(
        vocab_size=len(VOCAB), dim=16, n_layers=2, n_heads=4, hidden_dim=32, max_position_embeddings=40,
        **labels))
    build("distilbert", randomize(distilbert, 4), "safetensors")


if __name__ == "__main__":
    main()
