"""Device placement: one data-parallel mesh over every device, and multi-host start-up.

Experiments never name devices. `train_loop` places the training state replicated and the data
sharded along its leading (batch) axis on a 1-D mesh over `jax.devices()`; XLA's SPMD partitioner
then inserts the gradient all-reduce, so the same experiment code runs on one CPU, on all local
accelerators and, after `initialize_distributed`, on every device of a multi-host job.
"""
from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np
from absl import logging
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

DATA_AXIS = "data"


def initialize_distributed(coordinator_address: str | None = None,
                           num_processes: int | None = None,
                           process_id: int | None = None) -> None:
  """Joins a multi-host job through `jax.distributed.initialize`.

  Arguments left as None are read from the environment (`JAX_COORDINATOR_ADDRESS`,
  `JAX_NUM_PROCESSES`, `JAX_PROCESS_ID`) and, failing that, from the cluster (SLURM, Open MPI,
  Kubernetes and TPU pods are detected by JAX itself). Must run before any other JAX call.
  On CPU hosts the collectives go through gloo.
  """
  env = os.environ
  coordinator_address = coordinator_address or env.get("JAX_COORDINATOR_ADDRESS") or None
  if num_processes is None and env.get("JAX_NUM_PROCESSES"):
    num_processes = int(env["JAX_NUM_PROCESSES"])
  if process_id is None and env.get("JAX_PROCESS_ID"):
    process_id = int(env["JAX_PROCESS_ID"])
  if (num_processes is None) != (process_id is None):
    raise ValueError(
        "--num_processes and --process_id must be given together (or both left to the cluster's "
        f"environment); got num_processes={num_processes}, process_id={process_id}.")
  if process_id is not None and not 0 <= process_id < num_processes:
    raise ValueError(f"--process_id must be in [0, {num_processes}); got {process_id}.")
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  jax.distributed.initialize(coordinator_address=coordinator_address,
                             num_processes=num_processes, process_id=process_id)
  logging.info("joined distributed job: process %d of %d, %d local / %d global devices",
               jax.process_index(), jax.process_count(), jax.local_device_count(),
               jax.device_count())


def data_mesh(devices=None) -> Mesh:
  """A 1-D mesh over `devices` (default: all devices of all processes), axis name 'data'."""
  devices = jax.devices() if devices is None else list(devices)
  return Mesh(np.asarray(devices), (DATA_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, PartitionSpec())


def _place(x: Any, sharding: NamedSharding) -> jax.Array:
  if jax.process_count() == 1:
    return jax.device_put(x, sharding, may_alias=False)  # The loop donates its state.
  # Every process holds the same host value (same seed, same data): each supplies its own shards.
  host = np.asarray(x)
  return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


def replicate(tree: Any, mesh: Mesh) -> Any:
  """Places every leaf of `tree` on every device of `mesh`."""
  sharding = replicated(mesh)
  return jax.tree.map(lambda x: _place(x, sharding), tree)


def shard_leading_axis(tree: Any, mesh: Mesh) -> Any:
  """Splits each leaf's leading axis over the mesh; leaves it cannot split evenly are replicated.

  Replicating an indivisible leaf costs memory, not correctness: the partitioned program computes
  the same values either way.
  """
  n = mesh.devices.size
  split = NamedSharding(mesh, PartitionSpec(DATA_AXIS))
  whole = replicated(mesh)

  def place(path, x):
    shape = np.shape(x)
    if shape and shape[0] % n == 0:
      return _place(x, split)
    if n > 1:
      logging.warning("leaf %s with shape %s is not divisible over %d devices; replicated",
                      jax.tree_util.keystr(path), shape, n)
    return _place(x, whole)

  return jax.tree_util.tree_map_with_path(place, tree)


def fetch(tree: Any) -> Any:
  """Brings a pytree of (replicated or sharded) arrays back to host numpy on every process."""
  def get(x):
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
      x = multihost_utils.process_allgather(x, tiled=True)
    return np.asarray(x)
  return jax.tree.map(get, tree)
