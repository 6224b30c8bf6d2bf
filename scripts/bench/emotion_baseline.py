#!/usr/bin/env python3
"""Baseline throughput of transformers (PyTorch, CPU) for osprey's emotion classification benchmark.

What
    Loads a HuggingFace *ForSequenceClassification directory (default: the random
    DistilRoBERTa-size model written by make_emotion_bench_model.py) with
    transformers on the CPU and measures how many texts per second it classifies
    (tokenize, logits, softmax) from a benchmark corpus, for several batch sizes.
    Also reports model load time and the process's peak RSS.

Why
    This is the number osprey's model-path emotion classifier has to beat: the
    usual Python way to run the same model on the same hardware, with the same
    inputs (fixtures/bench/{short,medium}.txt, see make_corpus.py) and the same
    tokenizer.

How
    pip install -r scripts/reference/requirements.txt
    python scripts/bench/make_emotion_bench_model.py && python scripts/bench/make_corpus.py
    python scripts/bench/emotion_baseline.py --corpus short  > bench-results/emotion-short.json
    python scripts/bench/emotion_baseline.py --corpus fixtures/bench/medium.txt > bench-results/emotion-medium.json

    Options: --model DIR (default models/bench-emotion-distilroberta), --corpus
    (a file, or short / medium for fixtures/bench/<name>.txt; default short),
    --texts N (default 256), --batch-sizes 1,8,32, --threads N
    (torch.set_num_threads, default os.cpu_count()), --repeats R (default 3, the
    median is reported), --max-length 512, --dump-logits N [--dump-path FILE].

Method
    For each batch size b the first n texts of the corpus (cycling if needed) are
    split into consecutive batches of b, where n is --texts rounded up to a whole
    number of batches (so b > --texts still gets one full batch). Each batch is
    processed as a server would handle one request of b texts, under
    torch.inference_mode():
        inputs = tokenizer(batch, padding=True, truncation=True, max_length=512, return_tensors="pt")
        probs = model(**inputs).logits.softmax(-1)
    One untimed warm-up batch (taken from the end of the corpus) precedes each
    measurement. Each of the R repeats times all n texts; texts_per_sec is n over
    the median of the R times, and runs lists every repeat.

    The result is one JSON object on stdout; progress goes to stderr.

    --dump-logits N writes the first N corpus texts' logits (computed one batch of
    at most 32 texts at a time, padded to the batch's longest text) to a JSON file
    (--dump-path, default bench-results/emotion-logits-<model>-<corpus>.json):
        {"model", "corpus", "max_length", "transformers", "torch", "id2label",
         "texts": [...], "token_counts": [...], "logits": [[7 floats], ...]}
    so osprey's logits on the bench model can be compared with transformers'.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from baseline import log, parse_batch_sizes, peak_rss_bytes  # noqa: E402  (same directory)

REPO_ROOT = Path(__file__).resolve().parents[2]
CORPUS_NAMES = ("short", "medium")


def corpus_path(value: str) -> Path:
    if value in CORPUS_NAMES:
        return REPO_ROOT / "fixtures" / "bench" / f"{value}.txt"
    return Path(value)


def main() -> int:
    ap = argparse.ArgumentParser(description="transformers CPU emotion classification baseline")
    ap.add_argument("--model", type=Path, default=REPO_ROOT / "models" / "bench-emotion-distilroberta")
    ap.add_argument("--corpus", type=corpus_path, default=corpus_path("short"),
                    help="corpus file, or short / medium for fixtures/bench/<name>.txt")
    ap.add_argument("--texts", type=int, default=256, help="texts per batch size")
    ap.add_argument("--batch-sizes", type=parse_batch_sizes, default=[1, 8, 32])
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--max-length", type=int, default=512)
    ap.add_argument("--dump-logits", type=int, default=0, metavar="N",
                    help="write the first N texts' logits to --dump-path")
    ap.add_argument("--dump-path", type=Path, default=None)
    args = ap.parse_args()

    if not args.corpus.is_file():
        log(f"error: {args.corpus} not found; run scripts/bench/make_corpus.py")
        return 1
    if not (args.model / "config.json").is_file():
        log(f"error: no model at {args.model}; run scripts/bench/make_emotion_bench_model.py")
        return 1
    corpus = [line for line in args.corpus.read_text(encoding="utf-8").splitlines() if line]
    corpus_name = args.corpus.stem

    t0 = time.perf_counter()
    import torch
    import transformers
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    import_seconds = time.perf_counter() - t0

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForSequenceClassification.from_pretrained(args.model).eval()
    load_seconds = time.perf_counter() - t0
    log(f"loaded {args.model.name} ({type(model).__name__}, {model.config.num_labels} labels) in "
        f"{load_seconds:.2f}s (imports {import_seconds:.2f}s), torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, corpus {corpus_name} ({len(corpus)} lines)")

    def classify(batch: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        inputs = tokenizer(batch, padding=True, truncation=True, max_length=args.max_length,
                           return_tensors="pt")
        logits = model(**inputs).logits
        return logits, logits.softmax(-1)

    results = []
    with torch.inference_mode():
        for b in args.batch_sizes:
            n = math.ceil(max(args.texts, b) / b) * b
            texts = [corpus[i % len(corpus)] for i in range(n)]
            batches = [texts[i:i + b] for i in range(0, n, b)]
            warmup = [corpus[-1 - (i % len(corpus))] for i in range(b)]
            classify(warmup)
            times = []
            for _ in range(max(1, args.repeats)):
                t0 = time.perf_counter()
                for batch in batches:
                    classify(batch)
                times.append(time.perf_counter() - t0)
            seconds = statistics.median(times)
            results.append({"batch_size": b, "texts": n, "seconds": round(seconds, 4),
                            "texts_per_sec": round(n / seconds, 2),
                            "runs": [round(t, 4) for t in times]})
            log(f"  batch {b:>4}: {n} texts in {seconds:.3f}s = {n / seconds:8.1f} texts/s")

    peak_rss = peak_rss_bytes()  # before the bookkeeping below

    if args.dump_logits > 0:
        dump_texts = [corpus[i % len(corpus)] for i in range(args.dump_logits)]
        logits, counts = [], []
        with torch.inference_mode():
            for i in range(0, len(dump_texts), 32):
                batch = dump_texts[i:i + 32]
                logits += classify(batch)[0].tolist()
                counts += tokenizer(batch, truncation=True, max_length=args.max_length,
                                    return_length=True)["length"]
        dump_path = args.dump_path or (REPO_ROOT / "bench-results"
                                       / f"emotion-logits-{args.model.resolve().name}-{corpus_name}.json")
        dump_path.parent.mkdir(parents=True, exist_ok=True)
        dump_path.write_text(json.dumps({
            "model": args.model.resolve().name, "corpus": corpus_name, "max_length": args.max_length,
            "transformers": transformers.__version__, "torch": torch.__version__,
            "id2label": {str(k): v for k, v in model.config.id2label.items()},
            "texts": dump_texts, "token_counts": counts, "logits": logits,
        }))
        log(f"wrote logits of {len(dump_texts)} texts to {dump_path}")

    # Mean word pieces per corpus line (after truncation), to relate runs across engines.
    lengths = tokenizer(corpus, truncation=True, max_length=args.max_length, return_length=True)["length"]
    out = {
        "engine": "transformers",
        "version": transformers.__version__,
        "torch": torch.__version__,
        "device": "cpu",
        "model": args.model.resolve().name,
        "architecture": type(model).__name__,
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "platform": f"{platform.system()} {platform.machine()}, Python {platform.python_version()}",
        "corpus": corpus_name,
        "corpus_mean_tokens": round(statistics.mean(lengths), 1),
        "texts": args.texts,
        "max_length": args.max_length,
        "repeats": max(1, args.repeats),
        "results": results,
        "load_seconds": round(load_seconds, 3),
        "import_seconds": round(import_seconds, 3),
        "peak_rss_mb": round(peak_rss / 2**20, 1),
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
