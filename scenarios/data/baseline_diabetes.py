#!/usr/bin/env python3
"""The baseline the diabetes scenario is held to: scikit-learn's
LinearRegression fitted on the three clinics' pooled rows (features
standardised with the pooled training rows' mean and standard deviation,
as the sealroom trainer's `standardize` does), scored on the owner's
validation set. Prints R² and RMSE; README.md records the result and
tests/run.rs compares sealroom's R² against it (within 0.02).

Run from this directory: python3 baseline_diabetes.py  (scikit-learn 1.9.1)
"""
import csv

import numpy as np
from sklearn.linear_model import LinearRegression
from sklearn.metrics import mean_squared_error, r2_score


def load(path):
    with open(path) as f:
        rows = list(csv.reader(f))[1:]
    a = np.array([[float(v) for v in r] for r in rows])
    return a[:, :-1], a[:, -1]


parts = [load(f"diabetes/clinic-{c}.csv") for c in "abc"]
x = np.vstack([p[0] for p in parts])
y = np.concatenate([p[1] for p in parts])
xv, yv = load("diabetes/owner-validation.csv")
mu, sd = x.mean(axis=0), x.std(axis=0)
sd[sd == 0] = 1.0
model = LinearRegression().fit((x - mu) / sd, y)
pred = model.predict((xv - mu) / sd)
print(f"r2 {r2_score(yv, pred):.4f} rmse {mean_squared_error(yv, pred) ** 0.5:.3f} "
      f"(train {len(y)} rows, validation {len(yv)} rows)")
