#!/usr/bin/env python3
"""The baseline the diabetes scenario is held to: ordinary least squares
(scikit-learn's LinearRegression when scikit-learn is installed, otherwise
the same least-squares fit with an intercept through numpy's lstsq) on the
three clinics' pooled rows, features standardised with the pooled training
rows' mean and standard deviation (as the sealroom trainer's `standardize`
does), scored on the owner's validation set. Prints R² and RMSE and which
solver ran; README.md records the result and tests/run.rs compares
sealroom's R² against what this prints (within 0.02).

Run from this directory: python3 baseline_diabetes.py  (scikit-learn 1.9.1
and numpy alone both print r2 0.4612 rmse 50.437)
"""
import csv
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def load(path):
    with open(HERE / path) as f:
        rows = list(csv.reader(f))[1:]
    a = np.array([[float(v) for v in r] for r in rows if r])
    return a[:, :-1], a[:, -1]


parts = [load(f"diabetes/clinic-{c}.csv") for c in "abc"]
x = np.vstack([p[0] for p in parts])
y = np.concatenate([p[1] for p in parts])
xv, yv = load("diabetes/owner-validation.csv")
mu, sd = x.mean(axis=0), x.std(axis=0)
sd[sd == 0] = 1.0
xs, xvs = (x - mu) / sd, (xv - mu) / sd
try:
    from sklearn.linear_model import LinearRegression

    pred = LinearRegression().fit(xs, y).predict(xvs)
    solver = "sklearn.linear_model.LinearRegression"
except ImportError:
    design = np.hstack([xs, np.ones((len(xs), 1))])
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    pred = np.hstack([xvs, np.ones((len(xvs), 1))]) @ coef
    solver = "numpy.linalg.lstsq"
r2 = 1.0 - ((yv - pred) ** 2).sum() / ((yv - yv.mean()) ** 2).sum()
rmse = float(np.sqrt(((yv - pred) ** 2).mean()))
print(f"r2 {r2:.4f} rmse {rmse:.3f} (train {len(y)} rows, validation {len(yv)} rows; {solver})")
