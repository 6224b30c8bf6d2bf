#!/usr/bin/env python3
"""The watch pipeline as a Python service would run it: the baseline of `osprey bench watch`.

What
    Reads a JSONL file of posts (one JSON object per line: id, title, body,
    created) and runs the same stages as an `osprey watch` definition with
    topics, summary, sentiment and emotion, on the usual Python stack:

      1. dedup by content hash (hashlib) against what this run has seen;
      2. embed each post's head (title, blank line, body, cut at --head-chars
         characters) with sentence-transformers, normalised, batch --batch;
      3. near-duplicates: cosine against the last --window kept vectors (numpy);
      4. topics: best cosine against each topic's phrases (label and examples),
         keep at --threshold;
      5. for kept posts: VADER (vaderSentiment 3.3.2) on the whole post and on
         each sentence (the trajectory's valences), a keyword emotion lexicon
         per sentence weighted by length, and a TF-IDF centroid summary
         (scikit-learn) of --summary-k sentences;
      6. store post and analyses in SQLite (sqlite3, one transaction per batch).

    Prints one JSON object: posts, kept, seconds (first read to last commit,
    model load excluded), posts_per_sec, model_load_secs.

Why
    The issue's users run Python pipelines like this one and report about
    20 posts/s; osprey's figure means something only next to this one, run on
    the same machine with the same posts and the same topics.

How
    .venv/bin/python scripts/bench/watch_baseline.py --posts posts.jsonl \
        --topics topics.json [--model models/all-MiniLM-L6-v2] [--threads N]

    `osprey bench watch --python .venv/bin/python` writes the posts and
    topics and runs this script itself.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

EMOTIONS = {
    "anger": "angry furious rage hate hated annoyed annoying mad outraged livid fed up",
    "disgust": "disgusting gross awful terrible nasty horrible vile sick",
    "fear": "afraid scared worried anxious nervous terrified panic fear risky",
    "joy": "happy glad great love loved excellent awesome fantastic delighted excited wonderful",
    "sadness": "sad unhappy depressed disappointed miss lonely cry crying lost",
    "surprise": "surprised unexpected suddenly shocked amazed wow finally",
}
LEXICON = {w: e for e, words in EMOTIONS.items() for w in words.split()}
SENTENCE = re.compile(r"(?<=[.!?])\s+")
WORD = re.compile(r"[a-z']+")


def emotion(sentences: list[str]) -> dict[str, float]:
    acc = {e: 0.0 for e in [*EMOTIONS, "neutral"]}
    total = 0.0
    for s in sentences:
        counts = {}
        for w in WORD.findall(s.lower()):
            if w in LEXICON:
                counts[LEXICON[w]] = counts.get(LEXICON[w], 0) + 1
        n = sum(counts.values())
        dist = {e: c / n for e, c in counts.items()} if n else {"neutral": 1.0}
        weight = max(len(s), 1)
        total += weight
        for e, p in dist.items():
            acc[e] += weight * p
    return {e: v / total for e, v in acc.items()} if total else acc


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--posts", required=True)
    ap.add_argument("--topics", required=True, help="JSON: [{label, examples}]")
    ap.add_argument("--model", default="models/all-MiniLM-L6-v2")
    ap.add_argument("--threshold", type=float, default=0.35)
    ap.add_argument("--near-duplicate", type=float, default=0.95)
    ap.add_argument("--window", type=int, default=2048)
    ap.add_argument("--head-chars", type=int, default=512)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--summary-k", type=int, default=2)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    args = ap.parse_args()

    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer
    from sklearn.feature_extraction.text import TfidfVectorizer
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    model = SentenceTransformer(args.model, device="cpu")
    load_secs = time.perf_counter() - t0
    vader = SentimentIntensityAnalyzer()
    topics = json.loads(Path(args.topics).read_text())
    phrases, owners = [], []
    for i, t in enumerate(topics):
        for p in [t["label"], *t.get("examples", [])]:
            phrases.append(p)
            owners.append(i)
    phrase_vecs = model.encode(phrases, normalize_embeddings=True)
    owners = np.array(owners)

    db_dir = tempfile.mkdtemp(prefix="watch-baseline-")
    db = sqlite3.connect(os.path.join(db_dir, "posts.db"))
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE posts (id TEXT PRIMARY KEY, title TEXT, body TEXT, topic TEXT, hash TEXT UNIQUE, created REAL)")
    db.execute("CREATE TABLE analyses (post_id TEXT, task TEXT, result TEXT)")

    seen: set[str] = set()
    recent = np.zeros((0, phrase_vecs.shape[1]), dtype=np.float32)
    total = kept_total = 0
    started = time.perf_counter()
    with open(args.posts, encoding="utf-8") as f:
        lines = f.readlines()
    for start in range(0, len(lines), args.batch):
        batch = [json.loads(line) for line in lines[start:start + args.batch] if line.strip()]
        total += len(batch)
        fresh = []
        for p in batch:
            h = hashlib.blake2b((p.get("title", "") + "\0" + p.get("body", "")).encode(), digest_size=16).hexdigest()
            if h not in seen:
                seen.add(h)
                fresh.append((p, h))
        if not fresh:
            continue
        heads = [(p["title"] + "\n\n" + p["body"])[: args.head_chars] for p, _ in fresh]
        vecs = model.encode(heads, batch_size=args.batch, normalize_embeddings=True)
        rows = []
        for (p, h), v in zip(fresh, vecs):
            if len(recent) and float((recent @ v).max()) >= args.near_duplicate:
                continue
            recent = np.vstack([recent, v[None, :]])[-args.window:]
            sims = phrase_vecs @ v
            best = np.array([sims[owners == i].max() for i in range(len(topics))])
            b = int(best.argmax())
            if best[b] < args.threshold:
                continue
            text = p["title"] + "\n\n" + p["body"]
            sentences = [s for s in SENTENCE.split(text.replace("\n\n", " ")) if s.strip()] or [text]
            sentiment = vader.polarity_scores(text)
            valences = [vader.polarity_scores(s)["compound"] for s in sentences]
            emo = emotion(sentences)
            if len(sentences) > args.summary_k:
                tfidf = TfidfVectorizer().fit_transform(sentences)
                centroid = np.asarray(tfidf.mean(axis=0))
                scores = np.asarray(tfidf @ centroid.T).ravel()
                top = sorted(np.argsort(-scores)[: args.summary_k])
                summary = [sentences[i] for i in top]
            else:
                summary = sentences
            rows.append((p, h, topics[b]["label"], sentiment, valences, emo, summary))
        with db:
            db.executemany(
                "INSERT OR IGNORE INTO posts VALUES (?, ?, ?, ?, ?, ?)",
                [(p["id"], p["title"], p["body"], topic, h, p.get("created")) for p, h, topic, *_ in rows],
            )
            db.executemany(
                "INSERT INTO analyses VALUES (?, ?, ?)",
                [
                    (p["id"], task, json.dumps(result))
                    for p, _, _, sentiment, valences, emo, summary in rows
                    for task, result in (("sentiment", sentiment), ("trajectory", valences), ("emotion", emo), ("summary", summary))
                ],
            )
        kept_total += len(rows)
    seconds = time.perf_counter() - started
    print(json.dumps({
        "engine": "python (sentence-transformers + vaderSentiment + scikit-learn + sqlite3)",
        "posts": total,
        "kept": kept_total,
        "seconds": seconds,
        "posts_per_sec": total / seconds if seconds > 0 else 0.0,
        "model_load_secs": load_secs,
        "threads": args.threads,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
