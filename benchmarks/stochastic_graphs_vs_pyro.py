"""Sigmoid belief net on binarised digits: stochastic_graphs (NVIL) vs Pyro's TraceGraph_ELBO.

The same one-layer linear SBN (64 pixels, H binary latents), the same initial parameters and the
same minibatch, trained by the equivalent estimator in both: the score function of the encoder
with the causal downstream cost and a learned input-dependent (linear) baseline, i.e. Pyro's
`TraceGraph_ELBO` with an `nn_baseline`, and `stochastic_graphs.make_surrogate` with
`baseline(node, b(x))` and, as in Pyro, no direct gradient of the log q(h) cost (see
`make_sbn`). We report steady-state time per gradient step (grad + Adam update; JAX
after compilation, which is reported apart), and the variance of the encoder-weight gradient
over independent estimates, both at identical parameters (the initial ones, and those after
training with a learned baseline), as ratios (ours / Pyro) with standard errors.

    python -m benchmarks.stochastic_graphs_vs_pyro [--quick] [--steps N --repeats N
        --variance_samples N --train_steps N --out DIR]
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


def make_sbn(direct_entropy_gradient=False):
  """The SBN as a stochastic computation graph; the costs sum to the negative ELBO.

  Pyro's TraceGraph_ELBO does not differentiate the guide's log q(h) directly at a
  non-reparameterised site: that term is a score, E[grad log q(h)] = 0, and log q(h) still enters
  the site's downstream cost. We write the same estimator by stopping the gradient of the
  "log_q" cost. With `direct_entropy_gradient` its direct gradient is kept instead, which adds
  grad log q(h) (a shift of the learning signal by 1 nat) to the estimate.
  """
  def sbn(params, x, key):
    logits = x @ params["enc_w"] + params["enc_b"]
    h = sg.sample("h", distrax.Bernoulli(logits=logits, dtype=x.dtype), key)
    sg.baseline("h", (x @ params["base_w"] + params["base_b"])[0])
    log_q = _bern_lp(logits, h)
    sg.cost("log_q", log_q if direct_entropy_gradient else jax.lax.stop_gradient(log_q))
    sg.cost("prior", -_bern_lp(params["prior"], h))
    sg.cost("nll", -_bern_lp(h @ params["dec_w"] + params["dec_b"], x))
  return sbn


SURROGATE = sg.make_surrogate(make_sbn())
SURROGATE_DIRECT = sg.make_surrogate(make_sbn(direct_entropy_gradient=True))


def ours_loss(params, batch, key, surrogate=SURROGATE):
  """Sum over the batch (Pyro's convention): surrogate -ELBO plus the baseline's fitting loss."""
  keys = jax.random.split(key, batch.shape[0])
  s, info = jax.vmap(lambda x, k: surrogate(params, x, k))(batch, keys)
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


def trace_variance(grads):
  """Trace of the covariance of `grads` (n, ...) and its standard error (delta method).

  The estimate is the mean of the n/(n-1)-scaled squared deviations ||g_i - mean||^2; its standard
  error is their standard deviation over sqrt(n).
  """
  g = np.asarray(grads, np.float64).reshape(len(grads), -1)
  n = len(g)
  sq = np.sum((g - g.mean(0)) ** 2, axis=1) * n / (n - 1)
  return float(sq.mean()), float(sq.std(ddof=1) / np.sqrt(n))


def ours_encoder_grads(params_np, batch, n, seed, surrogate=SURROGATE):
  params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), params_np)
  grad = jax.grad(lambda p, k: ours_loss(p, batch, k, surrogate))
  return np.asarray(jax.jit(jax.vmap(lambda k: grad(params, k)["enc_w"]))(
      jax.random.split(jax.random.PRNGKey(seed), n)))


def pyro_encoder_grads(params_np, batch_np, n, lr):
  import torch
  # Pyro's downstream cost is log p - log q, the negative of ours, and so is the baseline that
  # fits it: b_Pyro(x) = -b_ours(x).
  params_np = dict(params_np, base_w=-params_np["base_w"], base_b=-params_np["base_b"])
  svi, elbo, model, guide, enc = make_pyro(params_np, lr)
  tbatch = torch.tensor(batch_np)
  grads = []
  for _ in range(n):
    enc.zero_grad()
    elbo.loss_and_grads(model, guide, tbatch)
    grads.append(enc.w.grad.detach().numpy().copy())
  return np.stack(grads)


def compare_variance(params_np, batch_np, n, lr, seed):
  """Encoder-gradient variance of both at the same parameters (model, encoder and baseline)."""
  g_ours = ours_encoder_grads(params_np, jnp.asarray(batch_np), n, seed)
  g_direct = ours_encoder_grads(params_np, jnp.asarray(batch_np), n, seed + 100,
                                SURROGATE_DIRECT)
  g_pyro = pyro_encoder_grads(params_np, batch_np, n, lr)
  var_ours, se_ours = trace_variance(g_ours)
  var_direct, se_direct = trace_variance(g_direct)
  var_pyro, se_pyro = trace_variance(g_pyro)

  def ratio_and_se(a, se_a):
    r = a / var_pyro
    return float(r), float(r * np.sqrt((se_a / a) ** 2 + (se_pyro / var_pyro) ** 2))
  ratio, ratio_se = ratio_and_se(var_ours, se_ours)
  ratio_direct, ratio_direct_se = ratio_and_se(var_direct, se_direct)
  # Same estimator: the mean gradients agree up to Monte Carlo error.
  se = np.sqrt(np.var(g_pyro, axis=0, ddof=1) / n + np.var(g_ours, axis=0, ddof=1) / n)
  z = np.abs(g_pyro.mean(0) - g_ours.mean(0)) / np.maximum(se, 1e-12)
  return {"ours_grad_variance": var_ours, "ours_grad_variance_se": se_ours,
          "pyro_grad_variance": var_pyro, "pyro_grad_variance_se": se_pyro,
          "variance_ratio_ours_over_pyro": ratio, "variance_ratio_se": ratio_se,
          "direct_entropy_grad_variance": var_direct,
          "direct_entropy_variance_ratio_over_pyro": ratio_direct,
          "direct_entropy_variance_ratio_se": ratio_direct_se,
          "mean_gradient_max_z": float(np.max(z)),
          "mean_gradient_frac_within_4se": float(np.mean(z < 4))}


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--quick", action="store_true", help="Small sizes (smoke test).")
  parser.add_argument("--steps", type=int, default=0, help="Timed steps per repeat (0: preset).")
  parser.add_argument("--repeats", type=int, default=0, help="Timing repeats (0: preset).")
  parser.add_argument("--variance_samples", type=int, default=0,
                      help="Gradient estimates per variance (0: preset).")
  parser.add_argument("--train_steps", type=int, default=0,
                      help="Training steps before the second variance (0: preset).")
  parser.add_argument("--seed", type=int, default=0,
                      help="Offsets every seed (parameters, keys, minibatches; 0: the table's).")
  parser.add_argument("--out", default=str(ROOT / "results" / "bench"),
                      help="Directory of the JSON output.")
  args = parser.parse_args(argv)
  import torch
  torch.manual_seed(args.seed)
  off = 1000 * args.seed  # seed offset of every key and draw below
  # Small tensors: one intra-op thread is fastest for torch and avoids oversubscribing the cores
  # (XLA's CPU client likewise runs these small ops on one thread).
  torch.set_num_threads(1)
  hidden, batch_size, lr = 32, 50, 1e-3
  steps = args.steps or (10 if args.quick else 100)
  repeats = args.repeats or (3 if args.quick else 7)
  var_samples = args.variance_samples or (50 if args.quick else 1000)
  train_steps = args.train_steps or (50 if args.quick else 2000)
  x = (load_digits().data > 7).astype(np.float32)
  batch_np = x[:batch_size]
  params_np = init_numpy(hidden, x.shape[1], args.seed)

  # Ours: compile once, then time `steps` steps (blocking at the end).
  state, step = make_ours(params_np, lr)
  batch = jnp.asarray(batch_np)
  t0 = time.perf_counter()
  jax.block_until_ready(step(state, batch, jax.random.PRNGKey(off)))
  compile_s = time.perf_counter() - t0
  keys = jax.random.split(jax.random.PRNGKey(off + 1), steps)

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

  # Variance of the encoder-weight gradient, both estimators at identical parameters: at the
  # initial ones (zero baseline: plain causal REINFORCE in both), and after `train_steps` steps of
  # our training on random minibatches, where the learned baseline b(x) is non-trivial.
  at_init = compare_variance(params_np, batch_np, var_samples, lr, seed=off + 2)
  s = state
  rng = np.random.RandomState(off + 3)
  for i in range(train_steps):
    minibatch = jnp.asarray(x[rng.randint(0, len(x), batch_size)])
    s = step(s, minibatch, jax.random.PRNGKey(off + 10 + i))
  trained_np = jax.tree.map(lambda a: np.asarray(a, np.float32), s[0])
  trained = compare_variance(trained_np, batch_np, var_samples, lr, seed=off + 4)

  table = {
      "ours_step_ms": ours_step * 1e3, "pyro_step_ms": pyro_step * 1e3,
      "speedup_pyro_over_ours": pyro_step / ours_step, "ours_compile_s": compile_s,
      **{f"init/{k}": v for k, v in at_init.items()},
      **{f"trained/{k}": v for k, v in trained.items()},
      "variance_ratio_ours_over_pyro": trained["variance_ratio_ours_over_pyro"],
      "variance_ratio_se": trained["variance_ratio_se"],
      "batch_size": batch_size, "hidden": hidden, "steps_timed": steps, "repeats": repeats,
      "variance_samples": var_samples, "train_steps_before_variance": train_steps,
      "quick": args.quick, "torch_threads": torch.get_num_threads(),
      "jax_device": str(jax.devices()[0]),
  }
  print("| quantity | stochastic_graphs | Pyro TraceGraph_ELBO | ratio |")
  print("|---|---|---|---|")
  print(f"| time per step (ms) | {table['ours_step_ms']:.3f} | {table['pyro_step_ms']:.3f} | "
        f"Pyro/ours = {table['speedup_pyro_over_ours']:.1f}x |")
  for name, r in (("initial params", at_init), (f"after {train_steps} steps", trained)):
    print(f"| encoder grad variance, {name} | {r['ours_grad_variance']:.4g} "
          f"+- {r['ours_grad_variance_se']:.2g} | {r['pyro_grad_variance']:.4g} "
          f"+- {r['pyro_grad_variance_se']:.2g} | ours/Pyro = "
          f"{r['variance_ratio_ours_over_pyro']:.3f} +- {r['variance_ratio_se']:.3f} |")
    print(f"| same, log q differentiated directly, {name} | "
          f"{r['direct_entropy_grad_variance']:.4g} | - | ours/Pyro = "
          f"{r['direct_entropy_variance_ratio_over_pyro']:.3f} +- "
          f"{r['direct_entropy_variance_ratio_se']:.3f} |")
  print(f"| compile (s, ours only) | {compile_s:.2f} | - | - |")
  for name, r in (("initial", at_init), ("trained", trained)):
    print(f"mean gradients agree ({name}): {100 * r['mean_gradient_frac_within_4se']:.1f}% of "
          "coordinates within 4 standard errors")
  out = pathlib.Path(args.out) / "stochastic_graphs_vs_pyro.json"
  out.parent.mkdir(parents=True, exist_ok=True)
  out.write_text(json.dumps(table, indent=2))
  return table


if __name__ == "__main__":
  main()
