"""Sigmoid belief net on binarised digits: stochastic_graphs (NVIL) vs Pyro's TraceGraph_ELBO.

The same one-layer linear SBN (64 pixels, H binary latents), the same initial parameters and the
same minibatch, trained by the equivalent estimator in both: the score function of the encoder
with the causal downstream cost and a learned input-dependent (linear) baseline, i.e. Pyro's
`TraceGraph_ELBO` with an `nn_baseline`, and `stochastic_graphs.make_surrogate` with
`baseline(node, b(x))`. We report steady-state time per gradient step (grad + Adam update; JAX
after compilation, which is reported apart), and the variance of the encoder-weight gradient
over independent estimates at the initial parameters, as ratios (ours / Pyro).

    python -m benchmarks.stochastic_graphs_vs_pyro [--quick]
"""
from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import time

import distrax
import jax
import jax.numpy as jnp
import numpy as np
import optax
from sklearn.datasets import load_digits

import stochastic_graphs as sg

ROOT = pathlib.Path(__file__).resolve().parents[1]


def init_numpy(hidden, dim, seed):
  rng = np.random.RandomState(seed)
  return {"enc_w": 0.01 * rng.randn(dim, hidden), "enc_b": np.zeros(hidden),
          "dec_w": 0.01 * rng.randn(hidden, dim), "dec_b": np.zeros(dim),
          "prior": np.zeros(hidden), "base_w": np.zeros((dim, 1)), "base_b": np.zeros(1)}


# ---- ours -------------------------------------------------------------------------------------
def _bern_lp(logits, b):
  return jnp.sum(b * jax.nn.log_sigmoid(logits) + (1 - b) * jax.nn.log_sigmoid(-logits))


def sbn(params, x, key):
  h = sg.sample("h", distrax.Bernoulli(logits=x @ params["enc_w"] + params["enc_b"],
                                       dtype=x.dtype), key)
  sg.baseline("h", (x @ params["base_w"] + params["base_b"])[0])
  sg.cost("log_q", _bern_lp(x @ params["enc_w"] + params["enc_b"], h))
  sg.cost("prior", -_bern_lp(params["prior"], h))
  sg.cost("nll", -_bern_lp(h @ params["dec_w"] + params["dec_b"], x))


SURROGATE = sg.make_surrogate(sbn)


def ours_loss(params, batch, key):
  """Sum over the batch (Pyro's convention): surrogate -ELBO plus the baseline's fitting loss."""
  keys = jax.random.split(key, batch.shape[0])
  s, info = jax.vmap(lambda x, k: SURROGATE(params, x, k))(batch, keys)
  return jnp.sum(s) + jnp.sum(info.baseline_loss)


def make_ours(params_np, lr):
  params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), params_np)
  opt = optax.adam(lr)

  @jax.jit
  def step(state, batch, key):
    p, o = state
    g = jax.grad(ours_loss)(p, batch, key)
    u, o = opt.update(g, o, p)
    return optax.apply_updates(p, u), o

  return (params, opt.init(params)), step


# ---- Pyro -------------------------------------------------------------------------------------
def make_pyro(params_np, lr):
  import pyro
  import pyro.distributions as pdist
  import torch
  from pyro.infer import SVI, TraceGraph_ELBO

  pyro.clear_param_store()
  t = {k: torch.tensor(v, dtype=torch.float32) for k, v in params_np.items()}

  class Linear(torch.nn.Module):
    def __init__(self, w, b):
      super().__init__()
      self.w = torch.nn.Parameter(w.clone())
      self.b = torch.nn.Parameter(b.clone())

    def forward(self, x):
      return x @ self.w + self.b

  enc = Linear(t["enc_w"], t["enc_b"])
  dec = Linear(t["dec_w"], t["dec_b"])
  base = Linear(t["base_w"], t["base_b"])
  prior0 = t["prior"].clone()

  def model(x):
    pyro.module("decoder", dec)
    prior = pyro.param("prior", prior0.clone())
    with pyro.plate("data", x.shape[0]):
      h = pyro.sample("h", pdist.Bernoulli(logits=prior.expand(x.shape[0], -1)).to_event(1))
      pyro.sample("x", pdist.Bernoulli(logits=dec(h)).to_event(1), obs=x)

  def guide(x):
    pyro.module("encoder", enc)
    pyro.module("baseline", base)
    with pyro.plate("data", x.shape[0]):
      pyro.sample("h", pdist.Bernoulli(logits=enc(x)).to_event(1),
                  infer={"baseline": {"nn_baseline": lambda z: base(z).squeeze(-1),
                                      "nn_baseline_input": x}})

  elbo = TraceGraph_ELBO()
  svi = SVI(model, guide, pyro.optim.Adam({"lr": lr}), elbo)
  return svi, elbo, model, guide, enc


def median_time(fn, repeats):
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t0)
  return statistics.median(times)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--quick", action="store_true", help="Small sizes (smoke test).")
  args = parser.parse_args(argv)
  import torch
  torch.manual_seed(0)
  # Small tensors: one intra-op thread is fastest for torch and avoids oversubscribing the cores
  # (XLA's CPU client likewise runs these small ops on one thread).
  torch.set_num_threads(1)
  hidden, batch_size, lr = 32, 50, 1e-3
  steps = 10 if args.quick else 100
  repeats = 3 if args.quick else 7
  var_samples = 50 if args.quick else 1000
  x = (load_digits().data > 7).astype(np.float32)
  batch_np = x[:batch_size]
  params_np = init_numpy(hidden, x.shape[1], 0)

  # Ours: compile once, then time `steps` steps (blocking at the end).
  state, step = make_ours(params_np, lr)
  batch = jnp.asarray(batch_np)
  t0 = time.perf_counter()
  jax.block_until_ready(step(state, batch, jax.random.PRNGKey(0)))
  compile_s = time.perf_counter() - t0
  keys = jax.random.split(jax.random.PRNGKey(1), steps)

  def run_ours():
    s = state
    for k in keys:
      s = step(s, batch, k)
    jax.block_until_ready(s)
  run_ours()
  ours_step = median_time(run_ours, repeats) / steps

  svi, elbo, model, guide, enc = make_pyro(params_np, lr)
  tbatch = torch.tensor(batch_np)
  svi.step(tbatch)  # Warm up (creates the parameters).

  def run_pyro():
    for _ in range(steps):
      svi.step(tbatch)
  pyro_step = median_time(run_pyro, repeats) / steps

  # Variance of the encoder-weight gradient at the initial parameters.
  params0 = jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), params_np)
  g_ours = jax.jit(jax.vmap(lambda k: jax.grad(ours_loss)(params0, batch, k)["enc_w"]))(
      jax.random.split(jax.random.PRNGKey(2), var_samples))
  var_ours = float(jnp.sum(jnp.var(g_ours, axis=0, ddof=1)))
  mean_ours = np.asarray(jnp.mean(g_ours, axis=0))
  import pyro
  svi, elbo, model, guide, enc = make_pyro(params_np, lr)
  grads = []
  for _ in range(var_samples):
    enc.zero_grad()
    pyro.get_param_store()  # Parameters live in the modules; gradients accumulate there.
    elbo.loss_and_grads(model, guide, tbatch)
    grads.append(enc.w.grad.detach().numpy().copy())
  grads = np.stack(grads)
  var_pyro = float(np.sum(np.var(grads, axis=0, ddof=1)))
  mean_pyro = grads.mean(0)
  # Same estimator: the mean gradients agree up to Monte Carlo error.
  se = np.sqrt(np.var(grads, axis=0, ddof=1) / var_samples +
               np.asarray(jnp.var(g_ours, axis=0, ddof=1)) / var_samples)
  z = np.abs(mean_pyro - mean_ours) / np.maximum(se, 1e-12)

  table = {
      "ours_step_ms": ours_step * 1e3, "pyro_step_ms": pyro_step * 1e3,
      "speedup_pyro_over_ours": pyro_step / ours_step, "ours_compile_s": compile_s,
      "ours_grad_variance": var_ours, "pyro_grad_variance": var_pyro,
      "variance_ratio_ours_over_pyro": var_ours / var_pyro,
      "mean_gradient_max_z": float(np.max(z)), "mean_gradient_frac_within_4se":
          float(np.mean(z < 4)),
      "batch_size": batch_size, "hidden": hidden, "steps_timed": steps, "repeats": repeats,
      "variance_samples": var_samples, "quick": args.quick,
      "torch_threads": torch.get_num_threads(), "jax_device": str(jax.devices()[0]),
  }
  print("| quantity | stochastic_graphs | Pyro TraceGraph_ELBO | ratio |")
  print("|---|---|---|---|")
  print(f"| time per step (ms) | {table['ours_step_ms']:.3f} | {table['pyro_step_ms']:.3f} | "
        f"Pyro/ours = {table['speedup_pyro_over_ours']:.1f}x |")
  print(f"| encoder grad variance | {var_ours:.4g} | {var_pyro:.4g} | "
        f"ours/Pyro = {table['variance_ratio_ours_over_pyro']:.3f} |")
  print(f"| compile (s, ours only) | {compile_s:.2f} | - | - |")
  print(f"mean gradients agree: {100 * table['mean_gradient_frac_within_4se']:.1f}% of "
        "coordinates within 4 standard errors")
  out = ROOT / "results" / "bench" / "stochastic_graphs_vs_pyro.json"
  out.parent.mkdir(parents=True, exist_ok=True)
  out.write_text(json.dumps(table, indent=2))
  return table


if __name__ == "__main__":
  main()
