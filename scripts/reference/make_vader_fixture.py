#!/usr/bin/env python3
"""Write fixtures/vader/reference.json: vaderSentiment 3.3.2's scores for real
and hand-written texts, the parity target of osprey-nlp's VADER port.

Usage
    .venv/bin/python scripts/reference/make_vader_fixture.py [--out fixtures/vader/reference.json]
                                                              [--per-source 1000] [--seed 20140601]

    The interpreter must have vaderSentiment==3.3.2 installed (for instance
    ``python3 -m venv /tmp/vader-venv && /tmp/vader-venv/bin/pip install
    vaderSentiment==3.3.2``) and pip available. The script checks that the
    installed lexicons are byte-identical to the ones scripts/fetch-models
    installs (same pinned sha256), so the fixture describes exactly the files
    osprey reads.

What it does
    1. ``python -m pip download --no-deps --no-binary=:all: vaderSentiment==3.3.2``
       into a temporary directory and checks the sdist's pinned sha256.
    2. Extracts ``additional_resources/hutto_ICWSM_2014.tar.gz`` from the sdist
       (the corpora of the VADER paper) and reads the four ``*_GroundTruth.txt``
       files (``id<TAB>score<TAB>text``).
    3. Takes every tweet, plus ``--per-source`` sentences drawn with a fixed
       seed from each of the Amazon review, movie review and NYT editorial
       snippets, plus about a hundred hand-written edge cases that exercise
       each rule of ``polarity_scores`` (negation, "no", "never so", "without
       doubt", "but", ALL CAPS, "!" and "?", idioms, "least", "kind of",
       emoji and emoticons, contractions, empty and punctuation-only text,
       very long text, non-ASCII text and Python's notion of whitespace).
    4. Scores each text with ``SentimentIntensityAnalyzer().polarity_scores``
       and writes compact JSON::

         {"vader_version": "3.3.2", "python_version": "3.11.7",
          "sources": {"tweets": 4200, "amazon": 1000, ...},
          "cases": [{"text": ..., "source": ..., "neg": ..., "neu": ...,
                     "pos": ..., "compound": ...}, ...]}

The output is deterministic: the same inputs and seed give byte-identical
JSON. ``python_version`` is recorded because Python 3.12 changed ``sum()`` of
floats to a compensated sum, which the reference uses for the compound score:
where valences cancel, 3.11's plain sum can give exactly 0 and 3.12's a tiny
residue (or the reverse), and "!"/"?" emphasis then applies or not. The
fixture in the repository was generated with Python 3.11, and osprey's port
follows its plain left-to-right sum; none of the fixture's texts is affected.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import platform
import random
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

VADER_VERSION = "3.3.2"
SDIST_NAME = f"vaderSentiment-{VADER_VERSION}.tar.gz"
SDIST_SHA256 = "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9"
CORPUS_MEMBER = f"vaderSentiment-{VADER_VERSION}/additional_resources/hutto_ICWSM_2014.tar.gz"
# Same pins as scripts/fetch_models.py.
LEXICON_SHA256 = {
    "vader_lexicon.txt": "1ec9c6e9ee19aade328f8beb393a6afa71a5bb3acf7d3cc22d4ef568df374bf5",
    "emoji_utf8_lexicon.txt": "b8d54223ae1ce22a3e12c1f745316b71678c328eb5f5d3063a842f37cfbe2823",
}
# Source key -> ground-truth file in hutto_ICWSM_2014/.
CORPORA = {
    "tweets": "tweets_GroundTruth.txt",
    "amazon": "amazonReviewSnippets_GroundTruth.txt",
    "movie": "movieReviewSnippets_GroundTruth.txt",
    "nyt": "nytEditorialSnippets_GroundTruth.txt",
}
SAMPLED = ("amazon", "movie", "nyt")

EDGE_CASES = [
    # empty, whitespace, punctuation only
    "", " ", "   \t\n  ", "\u3000\u00a0\u2003", "\x1c\x1d\x1e\x1f", ".", "!", "?", "!!!", "??", "?!?!",
    "...", "!!!???", ",;:-", "(:)",
    # single words and short texts
    "good", "Good.", "GOOD", "ok.", "no.", "no", "NO", "No way.", "lol", "LOL",
    # boosters and dampeners, at each distance
    "This is very good.", "This is VERY good.", "This is very very good.", "It was extremely bad.",
    "The food is really the best.", "The food is barely good.", "It is slightly annoying.",
    "It was kinda good.", "It was sort of good.", "It was kind of good.", "kind of", "She is kind.",
    "It was just enough good.", "a kind person", "It is sorta ok, kindof nice.",
    # ALL CAPS differential
    "VADER is VERY SMART, handsome, and FUNNY.", "VADER IS VERY SMART AND FUNNY.",
    "I LOVE it", "This is AWESOME", "NOT GOOD at all", "NO GOOD day",
    # negation
    "The movie was not good.", "The movie isn't good.", "The movie wasnt good.",
    "It isn't a horrible book.", "At least it isn't a horrible book.", "Not bad at all",
    "I never said it was good.", "Sentiment analysis has never been good.",
    "Sentiment analysis has never been this good!", "It was never so good.",
    "We never felt so happy.", "It is so good.", "We found this great.", "We really found this great.",
    "Without a doubt, excellent idea.", "Without doubt, an excellent idea.", "Without a doubt, an excellent idea.",
    "without any doubt good", "nothing good", "Neither good nor bad.", "I don't think it is great.",
    "I can't stand it.", "uh-uh, not nice", "He rarely smiles.", "Despite the good reviews, bad.",
    # "no"
    "no good", "There is no good answer.", "no problem", "no no no good", "no love or hate",
    "no love nor hate", "no x y bad", "It was no fun, no joy.",
    # "least"
    "Roger Dodger is one of the least compelling variations on this theme.",
    "Roger Dodger is at least compelling as a variation on the theme.",
    "the very least helpful", "least happy", "At least it works.",
    # "but"
    "The plot was good, but the characters are uncompelling and the dialog is not great.",
    "good but bad", "good but fine", "Good, BUT bad.", "It is great but but terrible.",
    "nice nice nice but nice", "bad bad but good good", "but", "but good", "good but",
    # idioms and special cases
    "That was the kiss of death for the project.", "Yeah right, as if that would work.",
    "This phone is the bomb!", "With VADER, sentiment analysis is the shit!",
    "Most automated sentiment analysis tools are shit.", "On the other hand, VADER is quite bad ass",
    "VADER is such a badass!", "He can't cut the mustard.", "They live hand to mouth.",
    "I am a bit under the weather.", "This cake is to die for.", "my heart is a beating heart",
    "we waited at the bus stop", "the guy is the bomb", "you are on the ball", "break a leg",
    # "!" and "?"
    "Today SUX!", "good!", "good!!", "good!!!!", "good!!!!!!!!", "good?", "good??", "good???",
    "good????", "bad!!! really???", "Why would anyone do this??", "What?! No way!!",
    # emoticons and emoji
    "Make sure you :) or :D today!", ":-)", ":(", ":'(", "<3", "</3", ":-D", ":P", "XD", "o_O",
    "Catch utf-8 emoji such as 💘 and 💋 and 😁", "😁", "😁😁😁", "I❤️you", "I ❤ you", "a😁b",
    "great 👍🏽 work", "👨‍👩‍👧 family time", "🇺🇸 flag", "#️⃣ keycap", "© 2020 ®",
    "so 😡 right now!!", "😂😂😂 hilarious", "☹️ sad", "☺️",
    # contractions
    "I'm happy, you're not.", "It's not that bad, isn't it?", "I wouldn't say it's terrible.",
    "couldn't be better", "Y'all'd've liked it.",
    # non-ASCII text and Unicode case
    "Je suis très content, c'est génial!", "Это очень хорошо", "素晴らしい！", "Καλημέρα ΣΟΦΟΣ",
    "ÇA VA BIEN good", "ǅemal is nice", "İSTANBUL is GREAT", "ＧＯＯＤ ｇｏｏｄ", "\u212aind of good",
    "café naïve résumé good", "good\u200bbad", "tab\tseparated\tgood", "line\nbreak\r\nbad",
    "non\u00a0breaking\u2009good", "good\x1cbad", "ﬁne work",
]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fetch_sdist(workdir: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary=:all:",
           "--disable-pip-version-check", "--no-input", "--progress-bar", "off",
           "-d", str(workdir), f"vaderSentiment=={VADER_VERSION}"]
    log(f"downloading the vaderSentiment {VADER_VERSION} sdist ...")
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"error: pip download failed (exit {r.returncode}):\n{r.stdout}{r.stderr}")
    sdist = workdir / SDIST_NAME
    if not sdist.is_file():
        sys.exit(f"error: pip did not produce {SDIST_NAME}: {sorted(p.name for p in workdir.iterdir())}")
    digest = sha256_bytes(sdist.read_bytes())
    if digest != SDIST_SHA256:
        sys.exit(f"error: {SDIST_NAME} has sha256 {digest}, expected {SDIST_SHA256}")
    return sdist


def read_corpora(sdist: Path) -> dict[str, list[str]]:
    """The texts of each ground-truth file, in file order."""
    with tarfile.open(sdist, "r:gz") as outer:
        inner_bytes = outer.extractfile(CORPUS_MEMBER).read()
    texts: dict[str, list[str]] = {}
    with tarfile.open(fileobj=io.BytesIO(inner_bytes), mode="r:gz") as inner:
        members = {Path(m.name).name: m for m in inner.getmembers() if m.isfile()}
        for key, name in CORPORA.items():
            raw = inner.extractfile(members[name]).read().decode("utf-8")
            rows = []
            for line in raw.split("\n"):
                line = line.rstrip("\r")
                if not line.strip():
                    continue
                fields = line.split("\t", 2)
                if len(fields) != 3:
                    sys.exit(f"error: {name}: malformed line {line!r}")
                rows.append(fields[2])
            texts[key] = rows
    return texts


def check_installed_reference():
    try:
        import vaderSentiment.vaderSentiment as vs
    except ImportError:
        sys.exit(f"error: vaderSentiment is not installed for {sys.executable}; "
                 f"pip install vaderSentiment=={VADER_VERSION}")
    from importlib.metadata import version
    if version("vaderSentiment") != VADER_VERSION:
        sys.exit(f"error: vaderSentiment {version('vaderSentiment')} installed, need {VADER_VERSION}")
    module_dir = Path(vs.__file__).parent
    for name, digest in LEXICON_SHA256.items():
        got = sha256_bytes((module_dir / name).read_bytes())
        if got != digest:
            sys.exit(f"error: installed {name} has sha256 {got}, expected {digest}")
    return vs.SentimentIntensityAnalyzer()


def long_texts(corpora: dict[str, list[str]]) -> list[str]:
    """Two very long texts built from corpus sentences with a fixed seed."""
    rng = random.Random(7)
    movie = corpora["movie"]
    paragraph = " ".join(rng.sample(movie, 300))
    # Many repeated valences around one "but", for its list.index() quirk.
    repeated = " ".join(["good great bad sad"] * 200 + ["but"] + ["good great bad sad!"] * 200)
    return [paragraph, repeated]


def main() -> int:
    repo_root = Path(__file__).resolve().parents[2]
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=repo_root / "fixtures" / "vader" / "reference.json")
    ap.add_argument("--per-source", type=int, default=1000,
                    help="sentences sampled from each of the amazon, movie and nyt sets")
    ap.add_argument("--seed", type=int, default=20140601)
    args = ap.parse_args()

    analyzer = check_installed_reference()
    if sys.version_info >= (3, 12):
        log("note: Python >= 3.12 sums floats with compensation; the committed fixture "
            "was generated with Python 3.11")

    with tempfile.TemporaryDirectory(prefix="vader-fixture-") as tmp:
        corpora = read_corpora(fetch_sdist(Path(tmp)))

    selected: list[tuple[str, str]] = [("tweets", t) for t in corpora["tweets"]]
    rng = random.Random(args.seed)
    for key in SAMPLED:
        pool = corpora[key]
        for index in sorted(rng.sample(range(len(pool)), args.per_source)):
            selected.append((key, pool[index]))
    edge = EDGE_CASES + long_texts(corpora)
    selected += [("edge", t) for t in edge]

    cases = []
    sources: dict[str, int] = {}
    for source, text in selected:
        scores = analyzer.polarity_scores(text)
        cases.append({"text": text, "source": source, "neg": scores["neg"], "neu": scores["neu"],
                      "pos": scores["pos"], "compound": scores["compound"]})
        sources[source] = sources.get(source, 0) + 1

    out = {
        "vader_version": VADER_VERSION,
        "python_version": platform.python_version(),
        "sources": sources,
        "cases": cases,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    data = json.dumps(out, ensure_ascii=False, separators=(",", ":")) + "\n"
    args.out.write_text(data, encoding="utf-8")
    log(f"wrote {args.out} ({len(data.encode('utf-8'))} bytes): {len(cases)} cases {sources}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
