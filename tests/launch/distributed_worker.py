"""One process of the two-process jax.distributed test (see app_test.py).

Joins the job, builds the mesh over the devices of both processes, runs the regression
experiment's training (data sharded over all global devices, so each step all-reduces across
processes) and prints its final parameters as one JSON line.
"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))

from launch import app, parallel  # noqa: E402


def main():
  address, num_processes, process_id, workdir = sys.argv[1:5]
  parallel.initialize_distributed(address, int(num_processes), int(process_id))
  import jax
  import regression_experiment as rx

  config = rx.get_config("smoke")
  summary = app.execute(rx.experiment, config, workdir, progress=False)
  print("RESULT " + json.dumps({"process": jax.process_index(), "devices": jax.device_count(),
                                "w": summary["w"], "b": summary["b"]}), flush=True)
  jax.distributed.shutdown()


if __name__ == "__main__":
  sys.path.insert(0, os.path.dirname(__file__))
  main()
