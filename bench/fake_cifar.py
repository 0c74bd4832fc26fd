"""CIFAR-10 binary files of random bytes, the official sizes (5 x 10,000 training records and
10,000 test records of 1 label byte + 3,072 pixel bytes): data of CIFAR's shape for timing and
memory where the real files are not at hand. Usage: python3 bench/fake_cifar.py DIR"""
import os
import sys

import numpy as np

out = sys.argv[1] if len(sys.argv) > 1 else "/tmp/cifar"
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(0)
for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
    records = rng.integers(0, 256, size=(10000, 3073), dtype=np.uint8)
    records[:, 0] = rng.integers(0, 10, size=10000)
    records.tofile(os.path.join(out, name))
print(f"wrote 60,000 random CIFAR-10 records to {out}")
