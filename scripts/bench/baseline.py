#!/usr/bin/env python3
"""Baseline throughput of sentence-transformers (PyTorch, CPU) for osprey's benchmarks.

What
    Loads all-MiniLM-L6-v2 with sentence-transformers on the CPU and measures how
    many texts per second it embeds from a benchmark corpus, for several batch
    sizes. Also reports model load time and the process's peak RSS.

Why
    This is the number osprey has to beat: the de-facto Python way to serve the
    same model on the same hardware, with the same inputs
    (fixtures/bench/{short,medium}.txt, see make_corpus.py).

How
    pip install -r scripts/reference/requirements.txt
    scripts/fetch-models && python3 scripts/bench/make_corpus.py
    python scripts/bench/baseline.py --corpus short  > bench-results/st-short.json
    python scripts/bench/baseline.py --corpus medium > bench-results/st-medium.json

    Options: --model DIR (default models/all-MiniLM-L6-v2), --threads N
    (torch.set_num_threads, default os.cpu_count()), --batch-sizes 1,8,32,128,
    --texts N (default 256 for short, 64 for medium), --repeats R (default 1).

Method
    For each batch size b the first n texts of the corpus (cycling if needed) are
    split into consecutive batches of b, and each batch is one
    ``model.encode(batch, batch_size=b, normalize_embeddings=True)`` call, like a
    server receiving requests of b texts. n is the --texts value rounded up to a
    whole number of batches, so batch sizes larger than --texts still get one
    full batch (medium with b=128 embeds 128 texts). Batch size 1 uses the same
    n: on a 2-core machine that takes a few seconds, so no reduction is needed.
    One untimed warm-up batch (taken from the end of the corpus) precedes each
    measurement. With --repeats R > 1 the median time is reported.

    The result is one JSON object on stdout; progress goes to stderr.
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

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_TEXTS = {"short": 256, "medium": 64}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def peak_rss_bytes() -> int:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024  # Linux reports KiB


def parse_batch_sizes(value: str) -> list[int]:
    try:
        sizes = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a comma-separated list of integers: {value!r}") from None
    if not sizes or any(b < 1 for b in sizes):
        raise argparse.ArgumentTypeError("batch sizes must be positive integers")
    return sizes


def main() -> int:
    ap = argparse.ArgumentParser(description="sentence-transformers CPU throughput baseline")
    ap.add_argument("--model", type=Path, default=REPO_ROOT / "models" / "all-MiniLM-L6-v2")
    ap.add_argument("--corpus", choices=sorted(DEFAULT_TEXTS), default="short")
    ap.add_argument("--corpus-dir", type=Path, default=REPO_ROOT / "fixtures" / "bench")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--batch-sizes", type=parse_batch_sizes, default=[1, 8, 32, 128])
    ap.add_argument("--texts", type=int, default=None,
                    help="texts per batch size (default: 256 short, 64 medium)")
    ap.add_argument("--repeats", type=int, default=1)
    args = ap.parse_args()

    corpus_path = args.corpus_dir / f"{args.corpus}.txt"
    if not corpus_path.is_file():
        log(f"error: {corpus_path} not found; run scripts/bench/make_corpus.py")
        return 1
    if not (args.model / "modules.json").is_file():
        log(f"error: no sentence-transformers model at {args.model}; run scripts/fetch-models")
        return 1
    corpus = [line for line in corpus_path.read_text(encoding="utf-8").splitlines() if line]
    n_texts = args.texts or DEFAULT_TEXTS[args.corpus]

    t0 = time.perf_counter()
    import sentence_transformers
    import torch
    from sentence_transformers import SentenceTransformer
    import_seconds = time.perf_counter() - t0

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    model = SentenceTransformer(str(args.model), device="cpu")
    load_seconds = time.perf_counter() - t0
    log(f"loaded {args.model.name} in {load_seconds:.2f}s (imports {import_seconds:.2f}s), "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"corpus {args.corpus} ({len(corpus)} lines)")

    def encode(batch: list[str], b: int) -> None:
        model.encode(batch, batch_size=b, normalize_embeddings=True,
                     convert_to_numpy=True, show_progress_bar=False)

    results = []
    for b in args.batch_sizes:
        n = math.ceil(max(n_texts, b) / b) * b
        texts = [corpus[i % len(corpus)] for i in range(n)]
        batches = [texts[i:i + b] for i in range(0, n, b)]
        warmup = [corpus[-1 - (i % len(corpus))] for i in range(b)]
        encode(warmup, b)
        times = []
        for _ in range(max(1, args.repeats)):
            t0 = time.perf_counter()
            for batch in batches:
                encode(batch, b)
            times.append(time.perf_counter() - t0)
        seconds = statistics.median(times)
        results.append({"batch_size": b, "texts": n, "seconds": round(seconds, 4),
                        "texts_per_s": round(n / seconds, 2)})
        log(f"  batch {b:>4}: {n} texts in {seconds:.3f}s = {n / seconds:8.1f} texts/s")

    peak_rss = peak_rss_bytes()  # before the bookkeeping below
    # Mean word pieces per corpus line (after truncation), to relate runs across engines.
    lengths = model.tokenize(corpus)["attention_mask"].sum(dim=1)
    out = {
        "engine": "sentence-transformers",
        "version": sentence_transformers.__version__,
        "torch": torch.__version__,
        "device": "cpu",
        "model": args.model.resolve().name,
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "platform": f"{platform.system()} {platform.machine()}, Python {platform.python_version()}",
        "corpus": args.corpus,
        "corpus_mean_tokens": round(float(lengths.float().mean()), 1),
        "results": results,
        "load_seconds": round(load_seconds, 3),
        "import_seconds": round(import_seconds, 3),
        "peak_rss_bytes": peak_rss,
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
