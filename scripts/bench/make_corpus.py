#!/usr/bin/env python3
"""Generate the benchmark corpora fixtures/bench/short.txt and fixtures/bench/medium.txt.

What
    short.txt   1024 lines, each one English sentence of 10-20 words.
    medium.txt   256 lines, each one paragraph of 100-150 words.

    The texts read like social-media and tech-forum posts across ten topics
    (programming, databases, GPUs and ML, devops, cooking, travel, sports,
    finance, feelings, home life). They are assembled from hand-written sentence
    templates whose slots are filled from word lists, so lines differ from each
    other while staying realistic in length and vocabulary.

Why
    Embedding throughput depends on sequence length, so the benchmarks need
    fixed inputs of known, realistic sizes that every engine (osprey and the
    Python baseline) reads identically. "Words" here are whitespace-separated;
    word-piece counts are roughly 1.2-1.4x higher.

How
    python3 scripts/bench/make_corpus.py [--out-dir fixtures/bench]

    Standard library only. A fixed seed makes the output byte-identical on every
    run; the word-count and line-count limits are checked with asserts.
"""

from __future__ import annotations

import argparse
import random
import re
import string
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SEED = 1337
SHORT_LINES, SHORT_WORDS = 1024, (10, 20)
MEDIUM_LINES, MEDIUM_WORDS = 256, (100, 150)

# Slots shared by every topic.
COMMON = {
    "num": ["two", "three", "four", "five", "six", "ten", "twelve", "twenty", "fifty"],
    "digits": ["2", "3", "5", "8", "12", "15", "30", "45", "90", "120", "500"],
    "when": ["yesterday", "last night", "this morning", "last week", "on Friday",
             "over the weekend", "two days ago", "earlier today", "last month"],
    "person": ["my manager", "a coworker", "my sister", "my roommate", "my partner",
               "an old friend", "my dad", "the new guy on our team", "my neighbour"],
    "feeling": ["frustrated", "relieved", "exhausted", "excited", "confused",
                "proud", "nervous", "grateful", "annoyed", "hopeful"],
    "adv": ["honestly", "seriously", "genuinely", "really", "actually", "somehow"],
}

# Each topic: slot word lists and sentence templates using {slots}.
TOPICS: dict[str, dict] = {
    "programming": {
        "slots": {
            "lang": ["Rust", "Python", "Go", "TypeScript", "Java", "C++", "Kotlin", "Elixir"],
            "thing": ["borrow checker", "type system", "package manager", "async runtime",
                      "test suite", "build system", "error messages", "generics"],
            "task": ["refactor the parser", "fix a flaky test", "review a huge pull request",
                     "upgrade our dependencies", "write a small CLI tool",
                     "debug a race condition", "port the service to async"],
            "bug": ["an off-by-one error", "a missing null check", "a deadlock",
                    "a memory leak", "a timezone bug", "an integer overflow"],
        },
        "templates": [
            "I spent {when} trying to {task} and it took {num} times longer than expected.",
            "The {lang} {thing} is {adv} the best part of the language once it clicks.",
            "Turns out the crash was caused by {bug} that has been there for years.",
            "Does anyone else think the {thing} in {lang} gets too much hate online?",
            "{person} asked me to {task} before the release, so no weekend for me.",
            "After {num} years of {lang} I still forget how the {thing} works sometimes.",
            "Found {bug} in production {when} and the fix was a single line.",
            "Is it worth learning {lang} in 2024 if I mostly write backend services?",
            "Our team finally agreed to {task} instead of adding another workaround.",
            "Pro tip: write the test first, then {task}, and you will thank yourself later.",
            "I love how {lang} catches {bug} at compile time instead of at runtime.",
            "Code review took {digits} comments because I tried to {task} in one commit.",
        ],
    },
    "databases": {
        "slots": {
            "db": ["Postgres", "MySQL", "SQLite", "MongoDB", "Redis", "Cassandra",
                   "ClickHouse", "DynamoDB"],
            "op": ["a full table scan", "the nightly vacuum", "a schema migration",
                   "an index rebuild", "a long-running transaction", "the replication lag"],
            "fix": ["adding a composite index", "rewriting the query with a join",
                    "partitioning the table by month", "increasing the connection pool",
                    "batching the inserts", "turning off the ORM lazy loading"],
        },
        "templates": [
            "Our {db} cluster slowed to a crawl because of {op} during peak traffic.",
            "We cut query time from {digits} seconds to milliseconds just by {fix}.",
            "Is {db} a good choice for storing time series data at a small startup?",
            "{op} locked the orders table for {digits} minutes {when}, and support was not happy.",
            "Honest question: why does everyone recommend {db} for every single project?",
            "I finally understand isolation levels after {op} corrupted our test data.",
            "Moving from {db} to a managed service was the best decision we made this year.",
            "The fix for the slow dashboard was {fix}, which took {num} lines of SQL.",
            "Never run {op} on a Friday afternoon unless you enjoy pager alerts.",
            "Our {db} backups were silently failing for {num} weeks before anyone noticed.",
            "Does {fix} actually help with write-heavy workloads or only with reads?",
        ],
    },
    "gpus": {
        "slots": {
            "gpu": ["RTX 4090", "RTX 3060", "A100", "H100", "RX 7900 XTX", "L4", "T4"],
            "model": ["a seven billion parameter model", "Stable Diffusion", "a small BERT",
                      "an embedding model", "a vision transformer", "Llama"],
            "issue": ["running out of VRAM", "thermal throttling", "driver crashes",
                      "coil whine", "slow data loading", "mixed precision errors"],
            "setting": ["batch size", "sequence length", "learning rate", "power limit",
                        "fan curve", "number of workers"],
        },
        "templates": [
            "Is a used {gpu} still worth buying for running {model} at home?",
            "My {gpu} keeps {issue} whenever I try to fine-tune {model} overnight.",
            "Lowering the {setting} fixed the {issue} but training is now twice as slow.",
            "We benchmarked {model} on a {gpu} and the throughput {adv} surprised us.",
            "Anyone else dealing with {issue} after the latest driver update {when}?",
            "Quantizing {model} to eight bits let it fit on a single {gpu} at last.",
            "The cloud bill for our {gpu} instances was higher than our entire payroll.",
            "Tip: tune the {setting} before blaming the {gpu} for poor utilisation.",
            "I ran {model} on the CPU for comparison and it was {digits} times slower.",
            "{person} bought a {gpu} for gaming and now trains {model} on it every night.",
            "Profiling showed ninety percent idle time because of {issue}, not the model.",
        ],
    },
    "devops": {
        "slots": {
            "tool": ["Kubernetes", "Terraform", "Docker", "Ansible", "Helm", "Nginx",
                     "Prometheus", "GitHub Actions"],
            "incident": ["a certificate expired", "the disk filled up", "DNS stopped resolving",
                         "a config typo took down the gateway", "the pods kept getting OOM killed",
                         "the load balancer dropped health checks"],
        },
        "templates": [
            "The outage {when} happened because {incident} and nobody got an alert.",
            "We replaced our shell scripts with {tool} and deployments became boring, "
            "in a good way.",
            "Is {tool} overkill for a team of {num} people running a single web app?",
            "Spent {digits} hours debugging {tool} only to discover {incident}.",
            "Our postmortem found that {incident}, so we added monitoring for it.",
            "{tool} is great until you need to debug it at three in the morning.",
            "CI builds take {digits} minutes now, mostly waiting on {tool} to pull images.",
            "I automated the boring parts with {tool} and now I have time for real work.",
            "Every quarter {incident}, and every quarter we promise to fix it properly.",
        ],
    },
    "cooking": {
        "slots": {
            "dish": ["sourdough bread", "lasagna", "chicken curry", "ramen", "banana bread",
                     "risotto", "tacos", "lentil soup", "pad thai", "apple pie"],
            "ingredient": ["garlic", "fresh basil", "smoked paprika", "brown butter",
                           "fish sauce", "lemon zest", "miso paste", "chili flakes"],
            "mistake": ["burned the bottom", "forgot the salt", "used too much flour",
                        "overcooked the pasta", "let the dough overproof"],
        },
        "templates": [
            "I made {dish} for the first time {when} and it came out better than expected.",
            "Adding a spoon of {ingredient} to {dish} completely changes the flavour.",
            "{person} {mistake} while making {dish}, but we ate it anyway.",
            "What is the secret to {dish} that tastes like the one from a restaurant?",
            "My kitchen smells amazing because there is {dish} in the oven right now.",
            "Cheap weeknight dinner idea: {dish} with plenty of {ingredient} and rice.",
            "I {mistake} again, so this batch of {dish} is going straight to the bin.",
            "Meal prepping {num} portions of {dish} on Sunday saves me so much time.",
            "Never underestimate how much {ingredient} improves a boring {dish}.",
            "Tried the viral {dish} recipe and it {adv} lived up to the hype.",
        ],
    },
    "travel": {
        "slots": {
            "place": ["Lisbon", "Kyoto", "Mexico City", "Iceland", "the Scottish Highlands",
                      "Vietnam", "Patagonia", "the Amalfi Coast", "Istanbul", "New Zealand"],
            "transport": ["night train", "budget airline", "rental car", "ferry", "bus",
                          "bike"],
            "problem": ["missed our connection", "lost a suitcase", "got food poisoning",
                        "had our flight cancelled", "booked the wrong dates"],
        },
        "templates": [
            "Just got back from {num} days in {place} and I already want to go again.",
            "Taking the {transport} across {place} was slower but far more beautiful.",
            "We {problem} on the way to {place}, but the trip was still worth it.",
            "Is {place} too crowded in summer, or should we go in the spring?",
            "Best meal of my life was a tiny family restaurant somewhere in {place}.",
            "Travel tip: book the {transport} early, because prices triple in the last week.",
            "{person} and I {problem} in {place} and ended up having the best adventure.",
            "I spent {digits} hours on a {transport} {when} and finished three books.",
            "Any recommendations for quiet places to stay in {place} away from the tourists?",
            "Solo travel in {place} made me {feeling} at first, then completely confident.",
        ],
    },
    "sports": {
        "slots": {
            "team": ["the Warriors", "Arsenal", "the Yankees", "Real Madrid", "the Packers",
                     "the Lakers", "Liverpool", "the home side"],
            "sport": ["football", "basketball", "tennis", "cycling", "climbing", "running",
                      "swimming"],
            "moment": ["a last-minute goal", "a missed penalty", "a buzzer beater",
                       "a controversial red card", "an injury in the first half"],
        },
        "templates": [
            "{team} lost again after {moment}, and I am {adv} running out of patience.",
            "Watching {moment} live {when} was the best sports moment of my year.",
            "Started {sport} {num} months ago and I finally feel like I am improving.",
            "The referee should review {moment} instead of ignoring the replay screen.",
            "Does anyone have a beginner plan for {sport} that does not wreck your knees?",
            "{team} fans, how are we feeling about the new coach after that performance?",
            "My legs are destroyed after {digits} kilometres of {sport} this morning.",
            "{person} dragged me to a {sport} match and now I am completely hooked.",
            "Say what you want about {team}, their defence has been excellent this season.",
            "Nothing beats {moment} to make a whole stadium go silent at once.",
        ],
    },
    "finance": {
        "slots": {
            "asset": ["index funds", "Bitcoin", "tech stocks", "government bonds", "gold",
                      "real estate", "a high-yield savings account"],
            "expense": ["rent", "student loans", "car repairs", "groceries", "childcare",
                        "my credit card bill"],
        },
        "templates": [
            "I put {digits} percent of my salary into {asset} every month and never look at it.",
            "{expense} went up again, so the budget spreadsheet needs another revision.",
            "Is it smarter to pay off {expense} first or to start investing in {asset}?",
            "Sold my {asset} {when} and of course the price jumped the very next day.",
            "Finally paid off {expense} after {num} years and I feel {feeling} and free.",
            "{person} keeps telling me to buy {asset}, but I do not understand the risk.",
            "The market dropped {digits} percent this week and my portfolio is deep in the red.",
            "Automating transfers into {asset} was the easiest money habit I ever built.",
            "Every financial advisor I asked gave a different answer about {asset}.",
            "Tracking every expense for {num} months showed me how much {expense} really costs.",
        ],
    },
    "feelings": {
        "slots": {
            "situation": ["starting a new job", "moving to a new city", "a breakup",
                          "finishing my thesis", "losing my grandmother", "becoming a parent",
                          "getting laid off"],
            "coping": ["long walks", "journaling", "therapy", "talking to friends",
                       "going to the gym", "turning off my phone"],
        },
        "templates": [
            "I have been feeling {feeling} ever since {situation}, and I do not know why.",
            "{coping} has helped me more than anything else since {situation}.",
            "Some days I feel {feeling}, and some days I feel like nothing matters at all.",
            "Just wanted to say that {person} made my day {when} with a simple message.",
            "Does anyone else feel {feeling} on Sunday evenings before the week starts?",
            "It has been {num} months since {situation} and things are slowly getting better.",
            "I am {adv} {feeling} about {situation}, but also a little bit scared.",
            "Reminder to drink water, get some sleep, and be kind to yourself today.",
            "Tried {coping} for a month and my anxiety is noticeably lower than before.",
            "I cried at work {when} and {person} quietly brought me a cup of tea.",
        ],
    },
    "home": {
        "slots": {
            "pet": ["my cat", "our dog", "the puppy", "my parrot", "our old labrador"],
            "chore": ["fix the leaking tap", "paint the hallway", "assemble the wardrobe",
                      "clean the gutters", "repot the plants", "organise the garage"],
            "thing": ["the washing machine", "the router", "the boiler", "the fridge",
                      "the smoke alarm"],
        },
        "templates": [
            "{pet} knocked a glass off the table {when} while staring directly at me.",
            "It took me {digits} hours to {chore}, and the instructions were useless.",
            "{thing} died {when}, right after the warranty expired, of course.",
            "Does anyone know why {thing} keeps beeping at two in the morning?",
            "Finally decided to {chore} myself instead of waiting for the landlord.",
            "{pet} refuses to eat anything except the most expensive food in the shop.",
            "{person} helped me {chore} and we ordered pizza to celebrate afterwards.",
            "Working from home means {pet} attends every single one of my video calls.",
            "The repair guy fixed {thing} in {digits} minutes and charged me a fortune.",
        ],
    },
}

# Extra sentences used only in paragraphs: openers, connectors and sign-offs.
OPENERS = [
    "Long time lurker, first time posting.", "Quick update for anyone who followed my last post.",
    "Bit of a rant, sorry in advance.", "So this happened {when}.",
    "I need some advice from people who have been through this.",
    "Not sure if this is the right place to ask, but here goes.",
    "Sharing this in case it helps someone else.", "Okay, story time.",
]
CONNECTORS = [
    "To make things worse,", "On the bright side,", "Meanwhile,", "A few days later,",
    "In hindsight,", "The funny thing is,", "After that,", "To be fair,",
]
CLOSERS = [
    "Anyway, thanks for reading this far.", "Any advice would be appreciated.",
    "Let me know if you have had the same experience.", "Edit: thanks for all the replies!",
    "I will post an update if anything changes.", "TL;DR: it worked out in the end.",
    "Curious what everyone else thinks about this.", "Sorry for the wall of text.",
]

SLOT_RE = re.compile(r"{(\w+)}")


def fill(template: str, slots: dict[str, list[str]], rng: random.Random) -> str:
    text = SLOT_RE.sub(lambda m: rng.choice(slots[m.group(1)]), template)
    return text[0].upper() + text[1:]


def words(text: str) -> int:
    return len(text.split())


def topic_slots(topic: str) -> dict[str, list[str]]:
    return {**COMMON, **TOPICS[topic]["slots"]}


def check_templates() -> None:
    """Every slot used by a template must exist for its topic."""
    formatter = string.Formatter()
    for topic, spec in TOPICS.items():
        slots = topic_slots(topic)
        for t in spec["templates"]:
            for _, name, _, _ in formatter.parse(t):
                assert name is None or name in slots, (topic, name, t)
    for t in OPENERS:
        for _, name, _, _ in formatter.parse(t):
            assert name is None or name in COMMON, t


def make_short(rng: random.Random) -> list[str]:
    topics = sorted(TOPICS)
    lines: list[str] = []
    seen: set[str] = set()
    while len(lines) < SHORT_LINES:
        topic = topics[len(lines) % len(topics)]  # round-robin keeps topics balanced
        text = fill(rng.choice(TOPICS[topic]["templates"]), topic_slots(topic), rng)
        if SHORT_WORDS[0] <= words(text) <= SHORT_WORDS[1] and text not in seen:
            seen.add(text)
            lines.append(text)
    return lines


def make_paragraph(topic: str, rng: random.Random) -> str:
    slots = topic_slots(topic)
    others = [t for t in sorted(TOPICS) if t != topic]
    parts = [fill(rng.choice(OPENERS), COMMON, rng)] if rng.random() < 0.6 else []
    used: set[str] = set()
    # Aim for a length spread over the whole range; the closer adds ~5-9 words.
    target = rng.randint(MEDIUM_WORDS[0], MEDIUM_WORDS[1]) - 7
    while words(" ".join(parts)) < target:
        if rng.random() < 0.12:  # the odd digression into another topic
            other = rng.choice(others)
            t = rng.choice(TOPICS[other]["templates"])
            s = fill(t, topic_slots(other), rng)
        else:
            templates = TOPICS[topic]["templates"]
            t = rng.choice(templates)
            if t in used and not used.issuperset(templates):
                continue  # prefer templates this paragraph has not used yet
            s = fill(t, slots, rng)
        used.add(t)
        # Prefix a connector only where lower-casing the first word is safe.
        if (parts and rng.random() < 0.3 and not t.startswith(("{", "I ", "Is ", "Does "))
                and not t.endswith("?") and s[1:2].islower()):
            s = f"{rng.choice(CONNECTORS)} {s[0].lower()}{s[1:]}"
        parts.append(s)
    parts.append(rng.choice(CLOSERS))
    return " ".join(parts)


def make_medium(rng: random.Random) -> list[str]:
    topics = sorted(TOPICS)
    lines: list[str] = []
    seen: set[str] = set()
    while len(lines) < MEDIUM_LINES:
        topic = topics[len(lines) % len(topics)]
        text = make_paragraph(topic, rng)
        if MEDIUM_WORDS[0] <= words(text) <= MEDIUM_WORDS[1] and text not in seen:
            seen.add(text)
            lines.append(text)
    return lines


def write_lines(path: Path, lines: list[str]) -> None:
    for line in lines:
        assert "\n" not in line and "\r" not in line and line == line.strip(), line
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tmp.replace(path)


def summarize(name: str, lines: list[str], bounds: tuple[int, int], count: int) -> str:
    counts = [words(line) for line in lines]
    assert len(lines) == count, (name, len(lines))
    assert len(set(lines)) == len(lines), f"{name}: duplicate lines"
    assert all(bounds[0] <= c <= bounds[1] for c in counts), (name, min(counts), max(counts))
    return (f"{name}: {len(lines)} lines, words/line {min(counts)}..{max(counts)} "
            f"(mean {sum(counts) / len(counts):.1f}, total {sum(counts)})")


def main() -> int:
    ap = argparse.ArgumentParser(description="Generate the benchmark text corpora.")
    ap.add_argument("--out-dir", type=Path, default=REPO_ROOT / "fixtures" / "bench")
    args = ap.parse_args()

    check_templates()
    short = make_short(random.Random(f"{SEED}-short"))
    medium = make_medium(random.Random(f"{SEED}-medium"))
    print(summarize("short.txt", short, SHORT_WORDS, SHORT_LINES))
    print(summarize("medium.txt", medium, MEDIUM_WORDS, MEDIUM_LINES))
    write_lines(args.out_dir / "short.txt", short)
    write_lines(args.out_dir / "medium.txt", medium)
    print(f"wrote {args.out_dir / 'short.txt'} and {args.out_dir / 'medium.txt'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
