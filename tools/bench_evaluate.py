"""`face-gcn evaluate` throughput on CPU: images/s of report.evaluate_results (PNG reading plus
L1, PSNR and SSIM) on 224 x 224 crops, and of each metric alone at batch 16."""

import os
import sys
import tempfile
import time

import cv2
import numpy as np

from face_gcn.evaluation import metrics, report


def make_results(folder, count, size=224, seed=0):
    rng = np.random.default_rng(seed)
    mask = np.zeros((size, size), np.uint8)
    cv2.ellipse(mask, (size // 2, size // 2), (size // 3, size * 2 // 5), 0, 0, 360, 255, -1)
    for index in range(count):
        image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        render = np.clip(image + rng.normal(0, 10, image.shape), 0, 255).astype(np.uint8)
        cv2.imwrite(os.path.join(folder, f"i{index}.input.png"), image)
        cv2.imwrite(os.path.join(folder, f"i{index}.render.png"), render)
        cv2.imwrite(os.path.join(folder, f"i{index}.mask.png"), mask)


def main():
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 32
    folder = tempfile.mkdtemp()
    make_results(folder, count)
    start = time.perf_counter()
    results = report.evaluate_results(folder)
    elapsed = time.perf_counter() - start
    print(f"evaluate_results, {count} images 224x224: {count / elapsed:.1f} images/s "
          f"(PSNR {results[os.path.basename(folder)]['psnr']['mean']:.2f} dB)")
    rng = np.random.default_rng(1)
    x = rng.uniform(size=(16, 224, 224, 3))
    y = np.clip(x + rng.normal(0, 0.05, x.shape), 0, 1)
    m = rng.uniform(size=(16, 224, 224)) < 0.5
    for name, fn in (("l1", metrics.masked_l1), ("psnr", metrics.masked_psnr),
                     ("ssim", metrics.masked_ssim)):
        start = time.perf_counter()
        fn(x, y, m)
        print(f"{name:5s} batch 16: {16 / (time.perf_counter() - start):8.1f} images/s")


if __name__ == "__main__":
    main()
