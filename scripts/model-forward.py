#!/usr/bin/env python3
"""Run a model exported by `sealroom model export` without sealroom.

    python3 scripts/model-forward.py EXPORT_DIR DATA.csv > predictions.json

Reads EXPORT_DIR/model-card.json and the weights file it names (safetensors,
float32, PyTorch convention), applies the card's preprocessing and the
forward pass with numpy alone, and prints one JSON object:
{"classes": K, "records": N, "predictions": [{"row", "class", "probabilities"}]}
(a regressor: {"task": "regression", "records": N, "predictions": [{"row", "value"}]})
in the shape `sealroom model predict --json` prints. A reference for loading
the export elsewhere (docs/trainer.md, "Using the model outside sealroom");
tests/run.rs checks it against `sealroom model predict --json`.

Needs: numpy, safetensors (pip install safetensors numpy).
"""

import csv
import json
import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file


def load(export_dir):
    card = json.loads((export_dir / "model-card.json").read_text())
    if card.get("format") != "sealroom-model-card/1":
        sys.exit(f"{export_dir}/model-card.json: not a sealroom model card")
    tensors = load_file(str(export_dir / card["weights"]["file"]))
    return card, tensors


def read_features(card, data_path):
    names = card["features"]
    if names is None:
        sys.exit("the model card names no features: export with --scenario or --record")
    with open(data_path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        missing = [n for n in names if n not in header]
        if missing:
            sys.exit(f"{data_path}: column `{missing[0]}` is missing")
        cols = [header.index(n) for n in names]
        rows = [[float(r[c]) for c in cols] for r in reader if any(v.strip() for v in r)]
    # Values become float32 as sealroom reads them (decimal -> f64 -> f32).
    return np.array(rows, dtype=np.float64).astype(np.float32)


def forward(card, tensors, x):
    prep = card["preprocessing"]
    offset = np.array(prep["offset"], dtype=np.float64).astype(np.float32)
    scale = np.array(prep["scale"], dtype=np.float64).astype(np.float32)
    h = ((x - offset) / scale).astype(np.float64)  # float32 arithmetic, then f64
    arch = card["architecture"]
    n = h.shape[0]
    if arch["image"] is not None:
        height, width = arch["image"]
        h = h.reshape(n, 1, height, width)
    for layer in card["layers"]:
        w = tensors[layer["name"] + ".weight"].astype(np.float64)
        b = tensors[layer["name"] + ".bias"].astype(np.float64)
        if layer["op"] == "conv2d":  # [out, in, 3, 3], stride 1, zero padding 1
            _, _, hh, ww = h.shape
            p = np.pad(h, ((0, 0), (0, 0), (1, 1), (1, 1)))
            out = np.zeros((n, w.shape[0], hh, ww))
            for ky in range(3):
                for kx in range(3):
                    out += np.einsum("nchw,oc->nohw", p[:, :, ky:ky + hh, kx:kx + ww], w[:, :, ky, kx])
            h = out + b[None, :, None, None]
        elif layer["op"] == "linear":  # y = x W^T + b, W [out, in]
            if h.ndim > 2:
                h = h.reshape(n, -1)  # [channels, height, width] row-major
            h = h @ w.T + b
        else:
            sys.exit(f"unknown layer op {layer['op']}")
        if layer["activation"] == "relu":
            h = np.maximum(h, 0.0)
    z = h - h.max(axis=1, keepdims=True)
    e = np.exp(z)
    return h, e / e.sum(axis=1, keepdims=True)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    card, tensors = load(Path(sys.argv[1]))
    x = read_features(card, sys.argv[2])
    logits, probs = forward(card, tensors, x)
    if card["architecture"].get("task") == "regression":
        # One output per row: the predicted target, in the label's units.
        predictions = [{"row": i + 1, "value": float(logits[i, 0])} for i in range(len(logits))]
        json.dump({"task": "regression", "records": len(predictions), "predictions": predictions}, sys.stdout)
        print()
        return
    predictions = [
        {"row": i + 1, "class": int(np.argmax(logits[i])), "probabilities": probs[i].tolist()}
        for i in range(len(probs))
    ]
    json.dump(
        {"classes": int(probs.shape[1]), "records": len(predictions), "predictions": predictions},
        sys.stdout,
    )
    print()


if __name__ == "__main__":
    main()
