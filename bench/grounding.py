"""Grounded answers on ../shared/data: retrieval, the relevance check, and what the default model writes.

Documents: StackFAQ's answers, one article per entry (its answers joined, without its question), named
`article-NNN.md` (no title to match: the held-out check's files may have none; --titled names them by
their question instead). Of the 125 entries, --held-out (25) are left out of the documents: their
paraphrases are out-of-scope questions next to the documents' subjects ("near"), beside banking77
questions ("far"). In-scope questions: every paraphrase of the imported entries.

Retrieval (no model): right article among the first 3 sources (after the relevance check), for
 - baseline: all-MiniLM-L6-v2 cosine top-3 over whole articles (each truncated to the model's window);
 - dense: the same embedder over passages (precache.documents.passages), a document by its best passage;
 - hybrid: dense and BM25 scores mixed (precache.documents.retrieval, as shipped);
and the relevance check: in-scope questions keeping a source, out-of-scope ones getting none.
--sweep prints both across least relevances (the ceiling of a cosine cut-off on this data).

Korean (--korean): the answers of ../shared/data/korean/chatbot_data.csv given to at least two questions are
the documents (one per answer; --titled does not apply), their questions the in-scope ones; the questions of
other answers are near out-of-scope, StyleKQC requests far ones. Embedded by the Korean embedder, scored
against its `passage_relevance` (precache/data/calibration.yaml); --sweep prints the curve.

Generation (--generate N, the default model with llama.cpp): N in-scope questions answered from their
passages as the worker does, and the same questions without passages; prints seconds per answer,
groundedness (share of content words in the passages), and how many are served as generated or
replaced by the extractive answer (sentences of the best passage).

    .venv/bin/python bench/grounding.py [--sweep] [--titled] [--generate 20] [--korean]
"""

import argparse
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from precache.config import load_settings  # noqa: E402
from precache.documents.grounding import extractive_answer, grounded_chat, groundedness  # noqa: E402
from precache.documents.passages import split  # noqa: E402
from precache.documents.retrieval import Library, embedded_text, least_relevance, relevant  # noqa: E402
from precache.semantic.embedders import embedder_for  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
# Out of scope of any help center: what askers of a help assistant also type (hand-written).
GENERAL = ["What is the capital of France?", "Tell me a joke", "What's the weather like tomorrow?",
           "Can you write me a poem about the sea?", "Who won the world cup in 2018?",
           "How many calories are in an apple?", "What time is it in Tokyo?", "Play some music",
           "What is the meaning of life?", "Translate hello into Spanish", "How tall is Mount Everest?",
           "Recommend a good movie", "What's 15 times 23?", "Who is the president of the United States?",
           "How do I cook pasta?", "Set an alarm for 7 am", "What is love?", "Book a flight to Paris",
           "Is it going to rain today?", "How old is the universe?"]


def stackfaq(titled: bool) -> list[dict]:
    entries = json.loads((DATA / "stackfaq" / "stackExchange-FAQ.json").read_text())["root"]["qapair"]
    articles = []
    for number, entry in enumerate(entries):
        answers = entry["answer"] if isinstance(entry["answer"], list) else [entry["answer"]]
        name = (entry["question"].strip().replace("/", " ") + ".md") if titled else f"article-{number:03d}.md"
        articles.append({"name": name, "text": "\n\n".join(a.strip() for a in answers if a and a.strip()),
                         "questions": [q for q in entry["rephr"] if q and q.strip() not in ("", "*")]})
    return articles


def korean(seed: int) -> tuple[list[dict], list[str], list[str]]:
    """Return (articles, near out-of-scope questions, far ones) of the Korean set (see the module)."""
    import csv

    with (DATA / "korean" / "chatbot_data.csv").open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    by_answer: dict[str, list[str]] = {}
    for row in rows:
        by_answer.setdefault(row["A"].strip(), []).append(row["Q"].strip())
    shared = sorted(answer for answer, questions in by_answer.items() if len(questions) >= 2)
    random.Random(seed).shuffle(shared)
    articles = [{"name": f"article-{n:03d}.md", "text": answer, "questions": by_answer[answer]}
                for n, answer in enumerate(shared[:300])]
    near = [q for answer in shared[300:] for q in by_answer[answer]][:300]
    lines = (DATA / "korean" / "stylekqc_groups_train_dev.jsonl").read_text(encoding="utf-8").splitlines()
    far = [json.loads(line)["formal"][0] for line in random.Random(seed).sample(lines, 300)]
    return articles, near, far


def banking77(count: int, seed: int) -> list[str]:
    import csv

    with (DATA / "banking77" / "test.csv").open(encoding="utf-8", newline="") as f:
        rows = [row["text"] for row in csv.DictReader(f)]
    return random.Random(seed).sample(rows, count)


def build(articles: list[dict], embedder) -> Library:
    rows, texts, pid = [], [], 0
    for doc_id, article in enumerate(articles):
        for passage in split(article["text"]):
            rows.append((pid, doc_id, article["name"], passage.heading, passage.text))
            texts.append(embedded_text(article["name"], passage.heading, passage.text))
            pid += 1
    print(f"{len(articles)} documents, {len(rows)} passages; embedding them ...", file=sys.stderr)
    return Library(rows, embedder.encode(texts), (len(rows), pid))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--held-out", type=int, default=25)
    parser.add_argument("--far", type=int, default=200, help="banking77 questions asked as out of scope")
    parser.add_argument("--titled", action="store_true", help="name each article by its question")
    parser.add_argument("--sweep", action="store_true")
    parser.add_argument("--generate", type=int, default=0)
    parser.add_argument("--korean", action="store_true", help="the Korean set instead of StackFAQ")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    settings = load_settings() if args.korean else load_settings(korean_embedding_model="")
    embedder = embedder_for(settings, threads=None)
    if args.korean:
        imported, near, far = korean(args.seed)
    else:
        articles = stackfaq(args.titled)
        random.Random(args.seed).shuffle(articles)
        imported, held = articles[args.held_out:], articles[:args.held_out]
        near, far = [q for a in held for q in a["questions"]], banking77(args.far, args.seed)
    asked = [(q, doc_id) for doc_id, a in enumerate(imported) for q in a["questions"]]
    library = build(imported, embedder)

    started = time.perf_counter()
    vectors = embedder.encode([q for q, _ in asked] + near + far)
    encode_ms = (time.perf_counter() - started) * 1000 / len(vectors)
    in_vec, near_vec, far_vec = vectors[:len(asked)], vectors[len(asked):len(asked) + len(near)], \
        vectors[len(asked) + len(near):]

    # Baseline: whole articles, top-3 by cosine.
    whole = embedder.encode([a["text"] for a in imported])
    base_hits = np.mean([doc_id in np.argsort(-(whole @ v))[:3] for (_, doc_id), v in zip(asked, in_vec)])

    def searched(questions, vecs, fuse=True):
        out = []
        for q, v in zip(questions, vecs):
            found = library.search(q if fuse else "", v, settings.grounding_passages)
            out.append((q, found))
        return out

    dense = searched([q for q, _ in asked], in_vec, fuse=False)
    hybrid = searched([q for q, _ in asked], in_vec)
    near_found = searched(near, near_vec)
    far_found = searched(far, far_vec)
    general_found = [] if args.korean else searched(GENERAL, embedder.encode(GENERAL))

    def recall(results, floor=None) -> float:
        hits = 0
        for (q, found), (_, doc_id) in zip(results, asked):
            kept = [f for f in found if floor is None or f.similarity >= floor]
            hits += any(f.document_id == doc_id for f in kept)
        return hits / len(results)

    def refused(results, floor) -> float:
        return float(np.mean([not any(f.similarity >= floor for f in found) for _, found in results]))

    floor = least_relevance(settings, asked[0][0])
    print(f"\n{len(imported)} articles imported, {len(asked)} in-scope questions, {len(near)} near and {len(far)} "
          f"far out-of-scope questions; {encode_ms:.1f} ms per question encode\n")
    print("| retrieval | right article in the first 3 sources |")
    print("|---|---|")
    print(f"| baseline: cosine top-3 over whole articles (the question's embedder) | {base_hits:.1%} |")
    print(f"| dense over passages | {recall(dense):.1%} |")
    print(f"| hybrid (dense + BM25 mixed), shipped | {recall(hybrid):.1%} |")
    print(f"| hybrid, after the relevance check (>= {floor}) | {recall(hybrid, floor):.1%} |")
    print(f"\nrelevance check at {floor}: in-scope keeping a source "
          f"{1 - refused(hybrid, floor):.1%}; not in the documents: near {refused(near_found, floor):.1%}, "
          f"far {refused(far_found, floor):.1%}")
    if general_found:
        general = sum(not any(f.similarity >= floor for f in found) for _, found in general_found)
        print(f"general questions (20 hand-written): {general} of 20 get the not-in-documents answer")
    if args.sweep:
        print("\n| least relevance | right in first 3 | in-scope answered | near refused | far refused |")
        print("|---|---|---|---|---|")
        for cut in (np.arange(0.78, 0.92, 0.01) if args.korean else np.arange(floor - 0.2, floor + 0.125, 0.025)):
            print(f"| {cut:.3f} | {recall(hybrid, cut):.1%} | {1 - refused(hybrid, cut):.1%} | "
                  f"{refused(near_found, cut):.1%} | {refused(far_found, cut):.1%} |")
    if args.generate:
        generate(settings, hybrid[:], asked, args.generate, args.seed)


def generate(settings, hybrid, asked, count: int, seed: int) -> None:
    """Answer `count` in-scope questions from their relevant passages, and without them, with the default model."""
    from worker.backends import load_backend
    from worker.batch import chat_for

    backend = load_backend(settings)
    picks = [r for r in random.Random(seed).sample(hybrid, len(hybrid)) if relevant(settings, r[0], r[1])][:count]
    rows = []
    for question, found in picks:
        passages = relevant(settings, question, found)
        texts = [p.text for p in passages]
        started = time.perf_counter()
        [grounded] = backend.generate([grounded_chat(settings.system_prompt, settings.grounded_instruction,
                                                     question, passages)], settings.llm_max_tokens_quick)
        grounded_s = time.perf_counter() - started
        started = time.perf_counter()
        [alone] = backend.generate([chat_for(settings, question)], settings.llm_max_tokens_quick)
        alone_s = time.perf_counter() - started
        extract = extractive_answer(question, passages)
        rows.append({"grounded_s": grounded_s, "alone_s": alone_s,
                     "generated": groundedness(grounded.text, texts), "alone": groundedness(alone.text, texts),
                     "extract": groundedness(extract, texts)})
    least = settings.grounded_min_support
    served = sum(r["generated"] >= least for r in rows)
    print(f"\n{len(rows)} questions, {settings.llm_backend} {settings.llm_model}:\n")
    print("| answer | s per answer (median) | groundedness (median) | >= {:.0%} supported |".format(least))
    print("|---|---|---|---|")
    print(f"| model alone | {statistics.median(r['alone_s'] for r in rows):.2f} | "
          f"{statistics.median(r['alone'] for r in rows):.2f} | {sum(r['alone'] >= least for r in rows)} |")
    print(f"| from passages | {statistics.median(r['grounded_s'] for r in rows):.2f} | "
          f"{statistics.median(r['generated'] for r in rows):.2f} | {served} |")
    print(f"| extractive | 0 | {statistics.median(r['extract'] for r in rows):.2f} | "
          f"{sum(r['extract'] >= least for r in rows)} |")
    print(f"\nserved as generated: {served} of {len(rows)}; replaced by the extractive answer: {len(rows) - served}")


if __name__ == "__main__":
    main()
