#!/usr/bin/env python3
"""Splits scikit-learn's diabetes data (442 patients, 10 baseline variables,
a quantitative measure of disease progression one year later) into three
clinics' shards and an owner-held validation set, deterministically.

Run from this directory: python3 split_diabetes.py
Input: diabetes_data_raw.csv.gz and diabetes_target.csv.gz from the
scikit-learn 1.9.1 wheel (sklearn/datasets/data/; the *raw*, unscaled
values). The outputs are committed; this script documents how they were
made. See README.md here for attribution.
"""
import csv, gzip, os, random

import sklearn

SEED = 20261201
FEATURES = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]
LABEL = "progression"


def write(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(FEATURES + [LABEL])
        w.writerows(rows)
    print(f"{path}: {len(rows)} rows")


def main():
    data = os.path.join(os.path.dirname(sklearn.__file__), "datasets", "data")
    with gzip.open(os.path.join(data, "diabetes_data_raw.csv.gz"), "rt") as f:
        xs = [l.split() for l in f.read().strip().split("\n")]
    with gzip.open(os.path.join(data, "diabetes_target.csv.gz"), "rt") as f:
        ys = [float(l) for l in f.read().strip().split("\n")]
    assert len(xs) == len(ys) == 442 and all(len(r) == 10 for r in xs)
    rows = [x + [f"{int(y)}" if y == int(y) else f"{y}"] for x, y in zip(xs, ys)]
    rng = random.Random(SEED)
    rng.shuffle(rows)
    n_val = round(0.2 * len(rows))
    val, rest = rows[:n_val], rows[n_val:]
    a_end = round(0.5 * len(rest))
    b_end = a_end + round(0.3 * len(rest))
    os.makedirs("diabetes", exist_ok=True)
    for name, part in (("clinic-a", rest[:a_end]), ("clinic-b", rest[a_end:b_end]),
                       ("clinic-c", rest[b_end:]), ("owner-validation", val)):
        write(f"diabetes/{name}.csv", part)


if __name__ == "__main__":
    main()
