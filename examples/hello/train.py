"""A tiny training script: prints progress, writes ./logs and ./outputs."""

import os
import time

import numpy as np

rng = np.random.default_rng(0)
weights = rng.normal(size=4)
print(f"hello from trainyard, run {os.environ.get('TRAINYARD_RUN_ID', 'offline')}")

os.makedirs("logs", exist_ok=True)
os.makedirs("outputs", exist_ok=True)
for epoch in range(5):
    weights *= 0.5
    loss = float(np.abs(weights).sum())
    print(f"epoch {epoch} loss {loss:.4f}", flush=True)
    with open("logs/train.log", "a") as log:
        log.write(f"epoch={epoch} loss={loss}\n")
    time.sleep(0.5)

np.save("outputs/weights.npy", weights)
print("saved outputs/weights.npy")
