"""Train the immune system's classifier layer and write ``memory/data/immune_model.json``.

Data: ``memory/data/immune_train.jsonl`` (hand-written training corpus),
``memory/data/immune_corpus.jsonl`` (the rules' corpus, both splits),
``memory/data/immune_heldout.jsonl`` and ``immune_heldout2.jsonl`` (the first two held-out
corpora, each measured once and then released for training), ``memory/data/immune_blind_v3.jsonl``
(the first blind corpus, seen since its measurements), ``memory/data/immune_train2.jsonl``
(generated: hand-written hostile cores in 21 languages, framed, hidden inside useful tips,
obfuscated) and ``memory/data/immune_train3.jsonl`` (generated: grounded-source hard negatives
such as worked examples quoting "Score: 0.33", risky-word ordinary lessons, and indirect score
gaming, scope overreach and hostile sentences embedded in useful lessons; rows of one core share a
``group``). Never ``memory/data/immune_blind_v4.jsonl``: it is the blind set.

Features: the multilingual-e5-small embedding (:mod:`purpose_agent.memory._immune_encoder`)
plus hashed n-grams.

Steps, all deterministic (seed 0):

1. every text goes through the scanner's normaliser and the classifier's id mask (what the
   classifier sees at scan time);
2. augmentation: a lower-cased copy, a copy behind a lesson-style prefix, and a copy joined
   to an ordinary lesson (a hostile sentence hidden in a benign lesson stays hostile);
3. 5-fold cross-validation (folds by original row, or by ``group`` for the generated rows, so
   the variants of one core never straddle folds; augmentation partners come from the same fold)
   over the n-gram bins and the hidden layer (one ReLU layer over [embedding, n-grams], L2 1e-4,
   ordinary rows weighted 2:1, full-batch Adam, 300 epochs); the decision threshold is the
   one with the best catch of rules + classifier while the classifier's own cross-validated
   false-positive rate on the ordinary lessons stays at or under ``--max-fp``.
   A row counts as flagged when its text or any of its sentences is (the scan classifies up to
   four sentences of a lesson of several); the sentences of ordinary rows are also ordinary
   training examples;
4. the chosen setting is refitted on everything and saved with its numbers in the header.

Run: ``python benchmarks/train_immune.py [--max-fp 0.01] [--hidden 128] [--ngram-dims 0]
[--out PATH] [--cache PATH]`` (needs the ``embed`` extra; embedding 4,821 texts took 6 minutes on
a loaded 2-core machine, then cached; each cross-validated MLP setting takes a few minutes).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from purpose_agent.memory._immune_encoder import default_encoder
from purpose_agent.memory._immune_model import CLASSES, MODEL_FILE, LessonClassifier, hashed_ngrams, mask_ids
from purpose_agent.memory._normalize import normalize
from purpose_agent.memory.immune import ImmuneSystem, _sentence_units

DATA = resources.files("purpose_agent.memory") / "data"
TRAIN_FILES = (
    "immune_train.jsonl",
    "immune_corpus.jsonl",
    "immune_heldout.jsonl",
    "immune_train2.jsonl",
    "immune_heldout2.jsonl",
    "immune_blind_v3.jsonl",
    "immune_train3.jsonl",
)
HELD_OUT = "immune_blind_v4.jsonl"  # never read here
SEED = 0
SENTENCES_PER_ROW = 4  # as many sentence units as a scan classifies (immune._CLF_MAX_SENTENCES)
PREFIXES = (
    "Lesson: ",
    "Tip: ",
    "Note: ",
    "Strategy: ",
    "When the task fails: ",
    "When working on the repository: ",
    "Pattern: the tests are slow. Strategy: ",
    "Learned from run 12: ",
)


@dataclass(slots=True)
class Example:
    text: str
    label: int
    group: int  # the original row
    fold: int
    original: bool


def load_rows() -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for name in TRAIN_FILES:
        for line in (DATA / name).read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                if "text" in row:
                    if "label" not in row:  # the blind corpora mark hostile rows with a boolean
                        row["label"] = "hostile" if row["hostile"] else "ordinary"
                    if row.get("category") == "ordinary":
                        row["category"] = None
                    row["file"] = name
                    rows.append(row)
    return rows


def corpus_sha256() -> str:
    h = hashlib.sha256()
    for name in TRAIN_FILES:
        h.update((DATA / name).read_bytes())
    return h.hexdigest()


def build_examples(rows: list[dict[str, object]], folds: int) -> list[Example]:
    rng = random.Random(SEED)
    group_fold: dict[str, int] = {}
    fold_of = []
    for i, row in enumerate(rows):
        key = f"{row['file']}:{row.get('group', i)}"
        if key not in group_fold:
            group_fold[key] = rng.randrange(folds)
        fold_of.append(group_fold[key])
    ordinary_by_fold: dict[int, list[str]] = {}
    for row, fold in zip(rows, fold_of, strict=True):
        if row["label"] == "ordinary":
            ordinary_by_fold.setdefault(fold, []).append(str(row["text"]))
    out: list[Example] = []
    for gid, (row, fold) in enumerate(zip(rows, fold_of, strict=True)):
        text = str(row["text"])
        label = CLASSES.index(str(row["category"] or "ordinary"))
        variants = [(text, True)]
        if row.get("source") in ("gen", "gen3"):  # already framed, hidden and obfuscated in the file
            out.extend(Example(mask_ids(normalize(v).text), label, gid, fold, o) for v, o in variants)
            continue
        if rng.random() < 0.2:
            variants.append((text.lower(), False))
        if rng.random() < 0.3:
            variants.append((rng.choice(PREFIXES) + text, False))
        partner = rng.choice(ordinary_by_fold[fold])
        if partner != text and rng.random() < 0.6:
            joined = f"{partner} {text}" if rng.random() < 0.5 else f"{text} {partner}"
            variants.append((joined, False))
        for v, original in variants:
            out.append(Example(mask_ids(normalize(v).text), label, gid, fold, original))
    return out


def embed_all(texts: list[str], cache_path: Path) -> np.ndarray:
    cache: dict[str, np.ndarray] = {}
    if cache_path.is_file():
        with np.load(cache_path, allow_pickle=False) as z:
            cache = dict(zip(z["keys"].tolist(), z["vecs"], strict=True))
    missing = sorted({t for t in texts if t not in cache})
    if missing:
        print(f"embedding {len(missing)} texts ...", flush=True)
        vecs = default_encoder().embed(missing)
        cache.update(zip(missing, vecs, strict=True))
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        keys = list(cache)
        np.savez(cache_path, keys=np.array(keys), vecs=np.stack([cache[k] for k in keys]))
    return np.stack([cache[t] for t in texts]).astype(np.float32)


Params = list[np.ndarray]


def fit(
    x: np.ndarray, y: np.ndarray, l2: float, ordinary_weight: float, hidden: int = 0, epochs: int = 300
) -> Params:
    """Softmax regression (``hidden=0``) or one ReLU hidden layer, full-batch Adam, L2 on the
    weights; ordinary rows weighted up. Returns ``[w, b]`` or ``[w1, b1, w2, b2]``."""
    d = x.shape[1]
    k = len(CLASSES)
    rng = np.random.default_rng(SEED)
    onehot = np.eye(k, dtype=np.float32)[y]
    sw = np.where(y == 0, ordinary_weight, 1.0).astype(np.float32)
    sw /= sw.sum()
    if hidden:
        params = [
            (rng.standard_normal((d, hidden)) * np.sqrt(2.0 / d)).astype(np.float32),
            np.zeros(hidden, np.float32),
            (rng.standard_normal((hidden, k)) * np.sqrt(1.0 / hidden)).astype(np.float32),
            np.zeros(k, np.float32),
        ]
    else:
        params = [np.zeros((d, k), np.float32), np.zeros(k, np.float32)]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    lr = 0.02 if not hidden else 0.005
    for it in range(1, epochs + 1):
        if hidden:
            h = np.maximum(x @ params[0] + params[1], 0.0)
            z = h @ params[2] + params[3]
        else:
            z = x @ params[0] + params[1]
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        g = (p - onehot) * sw[:, None]
        if hidden:
            gh = (g @ params[2].T) * (h > 0)
            grads = [x.T @ gh + l2 * params[0], gh.sum(axis=0), h.T @ g + l2 * params[2], g.sum(axis=0)]
        else:
            grads = [x.T @ g + l2 * params[0], g.sum(axis=0)]
        for param, grad, mi, vi in zip(params, grads, m, v, strict=True):
            mi *= 0.9
            mi += 0.1 * grad
            vi *= 0.999
            vi += 0.001 * grad * grad
            param -= lr * (mi / (1 - 0.9**it)) / (np.sqrt(vi / (1 - 0.999**it)) + 1e-8)
    return params


def probs(x: np.ndarray, params: Params) -> np.ndarray:
    if len(params) == 4:
        x = np.maximum(x @ params[0] + params[1], 0.0)
    z = x @ params[-2] + params[-1]
    z -= z.max(axis=1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(axis=1, keepdims=True)


def choose_threshold(
    p_ord: np.ndarray, hostile: np.ndarray, rules: np.ndarray, max_fp: float
) -> tuple[float, float, float]:
    """(threshold, catch, fp) of rules + classifier: the best catch while the classifier's own
    false-positive rate stays at or under ``max_fp`` (the rules' own false positives come on top)."""
    best = (0.99, -1.0, 1.0)
    for thr in np.arange(0.50, 0.995, 0.01):
        clf = p_ord < 1 - thr
        flagged = rules | clf
        catch = float(flagged[hostile].mean())
        if float(clf[~hostile].mean()) <= max_fp and catch > best[1] + 1e-9:
            best = (round(float(thr), 2), catch, float(flagged[~hostile].mean()))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--max-fp", type=float, default=0.01, help="cross-validated FP budget of the classifier alone"
    )
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument(
        "--hidden", type=int, nargs="+", default=[128], help="hidden units to try (0: logistic regression)"
    )
    parser.add_argument(
        "--ngram-dims", type=int, nargs="+", default=[0], help="hashed n-gram bins to try (0: none)"
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="default: the package's data/immune_model.json"
    )
    parser.add_argument(
        "--cache", type=Path, default=Path.home() / ".cache" / "purpose_agent" / "immune_emb_e5.npz"
    )
    args = parser.parse_args()
    t0 = time.perf_counter()

    rows = load_rows()
    examples = build_examples(rows, args.folds)
    # the scan also classifies each sentence of a lesson of several: the sentences of the original
    # rows are predicted out of fold, and those of ordinary rows are ordinary training examples too
    units = [
        (e.group, e.fold, mask_ids(u))
        for e in examples
        if e.original
        for u, _view in _sentence_units(normalize(str(rows[e.group]["text"])))[:SENTENCES_PER_ROW]
    ]
    unit_group = np.array([g for g, _, _ in units], dtype=int)
    unit_fold = np.array([f for _, f, _ in units], dtype=int)
    unit_y = np.array([0 if rows[g]["label"] == "ordinary" else -1 for g in unit_group], dtype=int)
    texts = [e.text for e in examples]
    y = np.array([e.label for e in examples])
    fold = np.array([e.fold for e in examples])
    original = np.array([e.original for e in examples])
    emb = embed_all(texts + [u for _, _, u in units], args.cache)
    emb, unit_emb = emb[: len(texts)], emb[len(texts) :]
    row_of = {e.group: i for i, e in enumerate(examples) if e.original}
    grams_by_dim = {d: hashed_ngrams(texts, d) for d in {0, *args.ngram_dims}}
    rules_only = ImmuneSystem(classifier=None)
    rules = np.array([not rules_only.scan(str(r["text"])).safe for r in rows])
    rule_flag = np.array([rules[e.group] for e in examples])
    print(
        f"{len(rows)} rows, {len(examples)} examples after augmentation, {time.perf_counter() - t0:.0f} s",
        flush=True,
    )

    grid = [(1e-4, ngd, 1.0, 2.0, hidden) for hidden in args.hidden for ngd in args.ngram_dims]
    results = []
    for l2, ngd, ngw, ow, hidden in grid:
        x = np.hstack([emb, grams_by_dim[ngd] * ngw])
        xu = np.hstack([unit_emb, hashed_ngrams([u for _, _, u in units], ngd) * ngw])
        p_ord = np.zeros(len(examples))
        for k in range(args.folds):
            train = fold != k
            extra = (unit_fold != k) & (unit_y == 0)
            params = fit(
                np.vstack([x[train], xu[extra]]), np.concatenate([y[train], unit_y[extra]]), l2, ow, hidden
            )
            p_ord[~train] = probs(x[~train], params)[:, 0]
            held = unit_fold == k
            for g, p in zip(unit_group[held], probs(xu[held], params)[:, 0], strict=True):
                p_ord[row_of[g]] = min(p_ord[row_of[g]], p)  # a row is flagged when any of its units is
        sel = original
        thr, catch, fp = choose_threshold(p_ord[sel], y[sel] > 0, rule_flag[sel], args.max_fp)
        clf_only = p_ord[sel] < 1 - thr
        results.append(
            (
                catch,
                -fp,
                l2,
                ngd,
                ngw,
                ow,
                hidden,
                thr,
                float(clf_only[y[sel] > 0].mean()),
                float(clf_only[y[sel] == 0].mean()),
            )
        )
        flagged = rule_flag[sel] | clf_only
        per_class = ", ".join(f"{c} {flagged[y[sel] == i].mean():.3f}" for i, c in enumerate(CLASSES) if i)
        print(
            f"l2={l2:g} ngram_dim={ngd} ordinary_weight={ow} hidden={hidden}: threshold {thr:.2f}, "
            f"cv catch {catch:.3f}, cv fp {fp:.3f} (rules+classifier; classifier alone "
            f"{results[-1][8]:.3f}/{results[-1][9]:.3f}); per class {per_class}",
            flush=True,
        )
    catch, neg_fp, l2, ngd, ngw, ow, hidden, thr, clf_catch, clf_fp = max(results)
    rules_catch = float(rules[[r["label"] == "hostile" for r in rows]].mean())
    rules_fp = float(rules[[r["label"] == "ordinary" for r in rows]].mean())
    x = np.hstack([emb, grams_by_dim[ngd] * ngw])
    xu = np.hstack([unit_emb, hashed_ngrams([u for _, _, u in units], ngd) * ngw])
    params = fit(np.vstack([x, xu[unit_y == 0]]), np.concatenate([y, unit_y[unit_y == 0]]), l2, ow, hidden)
    model = LessonClassifier(
        weights=params[-2],
        bias=params[-1],
        threshold=thr,
        ngram_dim=ngd,
        ngram_weight=ngw,
        embedder_name=default_encoder().name,
        hidden_weights=params[0] if hidden else None,
        hidden_bias=params[1] if hidden else None,
        meta={
            "trained_on": list(TRAIN_FILES),
            "corpus_sha256": corpus_sha256(),
            "rows": len(rows),
            "examples": len(examples),
            "sentence_units": len(units),
            "l2": l2,
            "ordinary_weight": ow,
            "hidden": hidden,
            "seed": SEED,
            "cv_folds": args.folds,
            "cv_max_fp": args.max_fp,
            "cv_catch_rules_plus_classifier": round(catch, 4),
            "cv_fp_rules_plus_classifier": round(-neg_fp, 4),
            "cv_catch_classifier_alone": round(clf_catch, 4),
            "cv_fp_classifier_alone": round(clf_fp, 4),
            "rules_catch_same_rows": round(rules_catch, 4),
            "rules_fp_same_rows": round(rules_fp, 4),
            "date": time.strftime("%Y-%m-%d"),
        },
    )
    out = args.out
    if out is None:
        with resources.as_file(DATA / MODEL_FILE) as p:
            out = Path(p)
    model.save(out)
    print(
        f"chosen: l2={l2:g} ngram_dim={ngd} ordinary_weight={ow} hidden={hidden} threshold={thr:.2f}; "
        f"cv rules+classifier catch {catch:.3f} fp {-neg_fp:.3f} (rules alone {rules_catch:.3f}/{rules_fp:.3f})"
    )
    print(f"wrote {out} ({out.stat().st_size // 1024} kB) in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    sys.exit(main())
