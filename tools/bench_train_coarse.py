"""Coarse-trainer steps/s on CPU: batch 4 at 224 px and the demo config's size (64 px, batch 2)."""

import tempfile
import time

from face_gcn.synthesis import dataset as synthetic
from face_gcn.morphable import configured
from face_gcn.train import coarse, config as config_lib


def bench(size, batch, steps):
    data = tempfile.mkdtemp()
    synthetic.write_dataset(data, configured.load_demo(), max(batch * 2, 4), seed=0,
                            config=synthetic.SyntheticConfig(image_size=size), batch_size=batch)
    config = config_lib.build_config(coarse.SCHEMA, None, [
        f"data.train={data}", f"data.crop_size={size}", f"data.batch_size={batch}", "data.shuffle_buffer=8",
        "train.steps=2", "train.checkpoint_every=1000", "train.summary_every=1000"])
    workdir = tempfile.mkdtemp()
    coarse.train_coarse(config, workdir, log=lambda *_: None)  # trace + warm-up
    times = []
    for extra in (1, 1 + steps):  # the difference removes rebuild + retrace of a resumed run
        config["train"]["steps"] += extra
        start = time.perf_counter()
        losses = coarse.train_coarse(config, workdir, log=lambda *_: None)
        times.append(time.perf_counter() - start)
    return steps / (times[1] - times[0]), losses["total"]


if __name__ == "__main__":
    print("size batch steps/s  (tracing excluded)  last total")
    for size, batch, steps in ((64, 2, 6), (224, 4, 3)):
        rate, total = bench(size, batch, steps)
        print(f"{size:4d} {batch:5d} {rate:7.3f}  {total:.4g}")
