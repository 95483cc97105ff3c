#!/usr/bin/env python3
"""Splits the two shipped datasets into party shards and an owner-held
validation set, deterministically (fixed seed, stratified by label).

Run from this directory: python3 split_datasets.py ../../../shared/datasets
Inputs: breast_cancer.csv and digits.csv.gz from the scikit-learn 1.9.1 wheel
(see README.md in this directory for attribution). The outputs are committed;
this script documents exactly how they were made.
"""
import csv, gzip, os, random, sys

SEED = 20261122

BC_FEATURES = [
    f"{prefix}{name}{suffix}"
    for prefix, suffix in (("mean_", ""), ("", "_error"), ("worst_", ""))
    for name in ("radius", "texture", "perimeter", "area", "smoothness", "compactness",
                 "concavity", "concave_points", "symmetry", "fractal_dimension")
]


def stratified_split(rows, label_of, fractions, rng):
    """Splits rows into len(fractions) parts, keeping each label's share."""
    by_label = {}
    for r in rows:
        by_label.setdefault(label_of(r), []).append(r)
    parts = [[] for _ in fractions]
    for label in sorted(by_label):
        group = by_label[label]
        rng.shuffle(group)
        n = len(group)
        start = 0
        acc = 0.0
        for i, f in enumerate(fractions):
            acc += f
            end = n if i == len(fractions) - 1 else round(acc * n)
            parts[i].extend(group[start:end])
            start = end
    for p in parts:
        rng.shuffle(p)
    return parts


def write(path, header, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)
    print(f"{path}: {len(rows)} rows")


def main(src):
    rng = random.Random(SEED)
    # Breast cancer: line 1 is a count header, then 30 features + label.
    with open(os.path.join(src, "breast_cancer.csv")) as f:
        lines = f.read().strip().split("\n")[1:]
    rows = [l.split(",") for l in lines]
    assert len(rows) == 569 and all(len(r) == 31 for r in rows)
    label = lambda r: r[-1]
    rest, val = stratified_split(rows, label, [0.8, 0.2], rng)
    a, b, c = stratified_split(rest, label, [0.5, 0.3, 0.2], rng)
    os.makedirs("breast-cancer", exist_ok=True)
    header = BC_FEATURES + ["diagnosis"]
    for name, part in (("hospital-a", a), ("hospital-b", b), ("hospital-c", c), ("owner-validation", val)):
        write(f"breast-cancer/{name}.csv", header, part)

    # Digits: gzip CSV, no header, 64 pixels + label.
    with gzip.open(os.path.join(src, "digits.csv.gz"), "rt") as f:
        rows = [l.split(",") for l in f.read().strip().split("\n")]
    rows = [[str(int(float(v))) for v in r] for r in rows]
    assert len(rows) == 1797 and all(len(r) == 65 for r in rows)
    rest, val = stratified_split(rows, label, [0.8, 0.2], rng)
    a, b, c = stratified_split(rest, label, [0.6, 0.25, 0.15], rng)
    os.makedirs("digits", exist_ok=True)
    header = [f"px{i}" for i in range(64)] + ["digit"]
    for name, part in (("lab-a", a), ("lab-b", b), ("lab-c", c), ("owner-validation", val)):
        write(f"digits/{name}.csv", header, part)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../../../shared/datasets")
