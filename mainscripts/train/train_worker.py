"""`train` on a worker of a multi-machine cluster other than the chief (TF_CONFIG / --worker-hosts).

Every worker runs the same compiled step in lockstep (its gradients join the chief's in each
step's all-reduce), but only the chief saves, writes previews, history and logs: a worker
here trains and prints its iteration line, and writes nothing to its model folder.
"""
from __future__ import annotations

import time

from core import interact


def train_as_worker(model) -> int:
    """Step with the chief until the target iteration; Ctrl-C stops this worker (and so the cluster's steps)."""
    from mainscripts.train.trainer import status_line
    interact.log_info(f"Worker of a cluster ({model.devices}): training in step with the chief, which saves, "
                      f"previews and logs; this worker writes nothing")
    try:
        while not model.reached_target():
            t0 = time.perf_counter()
            src, dst = model.train_iteration()
            print(status_line(model.iter, (time.perf_counter() - t0) * 1000, src, dst if model.SWAPS_FACES else None),
                  flush=True)
    except KeyboardInterrupt:
        pass
    interact.log_info(f"Worker stopped at iteration {model.iter}; the chief holds the model")
    return 0
