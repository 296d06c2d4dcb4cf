"""The filtering ELBO of a state-space model with Gaussian latents, and its importance-weighted
bound (Buesing et al. 2018, Sec. 2.2-2.3, Eq. (2)-(4); Burda et al. 2016 for the bound).

A `Cell` holds one step of the model as pure functions of batched arrays. With the latent in
the transition (`position="transition"`, the sSSM):

    z_t ~ p(z_t | s_{t-1}, a_{t-1}) = N(mu_p, sigma_p)           (prior)
    z_t ~ q(z_t | s_{t-1}, a_{t-1}, e_t, mu_p, sigma_p)          (posterior, e_t = enc(o_t))
    s_t = g(s_{t-1}, z_t, a_{t-1}),   log p(o_t, r_t | s_t, z_t) = log_lik(s_t, z_t, target_t)

and with the latent in the decoder only (`position="decoder"`, the dSSM-VAE) the state is
advanced first, `s_t = g(s_{t-1}, None, a_{t-1})`, and prior and posterior read `s_t`. The
ELBO of `o_{1:T}, r_{1:T}` given the initial state (B18 Eq. (4), the posterior factorised over
time and conditioned on the past state and the current observation only, a filtering posterior):

    L = sum_t E_q[ log p(o_t, r_t | s_t, z_t) ] - E_q[ KL(q(z_t | .) || p(z_t | .)) ],

the expectation over `z_{1:t-1}` by one sample path, drawn at the `stochastic_graphs` node "z"
with the pathwise estimator (`stochastic_graphs.sample(..., estimator="pathwise")` inside
`stochastic_graphs.scan`), and [O] the KL of each step in closed form given the sampled path
(diagonal Gaussians; lower variance than the sampled log-ratio). `iw_bound` averages `K`
importance weights `prod_t p(o_t, r_t | s_t, z_t) p(z_t | .) / q(z_t | .)` of `K` sample paths
in log space: `log (1/K) sum_k w_k`, a lower bound on `log p(o_{1:T}, r_{1:T} | s_0)` that
rises to it as `K -> infinity` (Burda et al. 2016, Thm. 1).

Free bits (Kingma et al. 2016, "Improving variational inference with inverse autoregressive
flow", App. C.8) [O] against posterior collapse: with `free_nats = lambda > 0` the training
objective's KL of step `t` is `max(KL_t, lambda)`, `KL_t` the batch mean of the step's KL (the
minibatch average, as Kingma et al. apply it per group of latents; here the group is the
whole `z_t`). Below `lambda` nats the KL costs nothing and has no gradient, so the posterior may
carry that much information about the observed frame before it pays for it. It is emitted as a
separate cost "free_bits" = `N max(lambda - KL_t, 0)` beside "kl", so the sum is the clamped
objective and "kl" still reports the true KL; bounds and log-likelihoods never use it.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import distrax
import jax
import jax.numpy as jnp

import stochastic_graphs as sg

POSITIONS = ("transition", "decoder", "none")


class Cell(NamedTuple):
  """One model step. Arrays carry a leading batch axis `[N]`.

  prior(s, a) -> (mu, sigma); posterior(s, a, e, mu_p, sigma_p) -> (mu, sigma);
  transition(s, z | None, a) -> s'; log_lik(s', z | None, target) -> {part: [N]} (the
  log-likelihood's named parts, e.g. frame and reward; their sum is the step's log-likelihood).
  `position`: "transition" (sSSM), "decoder" (dSSM-VAE) or "none" (dSSM-DET: no latent;
  prior and posterior are not called).
  """
  prior: Callable[..., tuple[jax.Array, jax.Array]] | None
  posterior: Callable[..., tuple[jax.Array, jax.Array]] | None
  transition: Callable[..., jax.Array]
  log_lik: Callable[..., jax.Array]
  position: str = "transition"


class StepTerms(NamedTuple):
  """Per-step terms `[T, N]` of one sample path."""
  log_lik: jax.Array     # log p(o_t, r_t | s_t, z_t), the sum of `parts`
  parts: dict            # part name -> [T, N], as `Cell.log_lik` returns them
  kl: jax.Array          # KL(q || p) in closed form given the path (0 without a latent)
  log_ratio: jax.Array   # log p(z_t | .) - log q(z_t | .) at the sampled z_t (0 without one)


def _sum_event(x: jax.Array) -> jax.Array:
  return jnp.sum(x.reshape((x.shape[0], -1)), axis=-1)


def filtering_terms(cell: Cell, s0: Any, actions: jax.Array, embeddings: Any, targets: Any,
                    key: jax.Array, *, emit_costs: bool = False, unroll: int | bool = 1,
                    free_nats: float = 0.0) -> tuple[Any, StepTerms]:
  """Unrolls `cell` under the posterior over `T` steps (one `stochastic_graphs.scan`).

  Args:
    cell: the model step.
    s0: the initial state `[N, ...]`.
    actions: `[T, N, D]` flat action codes `a_{t-1}`.
    embeddings: `[T, N, ...]` encodings `e_t` of the observed `o_t` (posterior input).
    targets: a pytree with leaves `[T, N, ...]`, passed to `log_lik` per step.
    key: one key; step `t` samples with `fold_in(key, t)`.
    emit_costs: emit the costs "neg_<part>" per log-likelihood part and "kl"
      (`stochastic_graphs.cost`, summed over the batch) for a surrogate.
    unroll: `jax.lax.scan`'s (`True`: a Python-unrolled loop; same values).
    free_nats: lambda of free bits (module doc): with `emit_costs`, also emit the cost
      "free_bits" per step, `N max(lambda - mean_n KL_t, 0)`. 0: none. The terms returned
      are unchanged.

  Returns:
    `(s_T, StepTerms[T, N])`.
  """
  if cell.position not in POSITIONS:
    raise ValueError(f"cell.position must be one of {POSITIONS}; got {cell.position!r}.")
  if not free_nats >= 0:
    raise ValueError(f"free_nats must be >= 0; got {free_nats!r}.")
  t_len = actions.shape[0]

  def latent(s, a, e, k):
    mu_p, sd_p = cell.prior(s, a)
    mu_q, sd_q = cell.posterior(s, a, e, mu_p, sd_p)
    z = sg.sample("z", distrax.Normal(mu_q, sd_q), k, estimator="pathwise")
    p, q = distrax.Normal(mu_p, sd_p), distrax.Normal(mu_q, sd_q)
    kl = _sum_event(q.kl_divergence(p))
    log_ratio = _sum_event(p.log_prob(z) - q.log_prob(z))
    return z, kl, log_ratio

  def body(s, x):
    a, e, t = x
    k = jax.random.fold_in(key, t)
    if cell.position == "transition":
      z, kl, log_ratio = latent(s, a, e, k)
      s = cell.transition(s, z, a)
    elif cell.position == "decoder":
      s = cell.transition(s, None, a)
      z, kl, log_ratio = latent(s, a, e, k)
    else:
      s = cell.transition(s, None, a)
      z = kl = log_ratio = None
    if emit_costs and z is not None:
      sg.cost("kl", jnp.sum(kl))
      if free_nats > 0:
        n = kl.shape[0]
        sg.cost("free_bits", jnp.maximum(free_nats * n - jnp.sum(kl), 0.0))
    return s, (s, z, kl, log_ratio)

  s_t, (states, zs, kl, log_ratio) = sg.scan(
      body, s0, (actions, embeddings, jnp.arange(t_len)), unroll=unroll)
  # [O] The likelihood reads (s_t, z_t) only, never feeds the recurrence: it runs once on all
  # T x N steps after the scan (one batched decoder), not once per step inside it. Same
  # values; on the CPU the decoder's gradient inside the scan's loop was most of a step.
  flat = lambda x: None if x is None else x.reshape((-1,) + x.shape[2:])  # noqa: E731
  parts = dict(cell.log_lik(flat(states), flat(zs), jax.tree.map(flat, targets)))
  parts = {name: value.reshape((t_len, -1)) for name, value in parts.items()}
  ll = sum(parts.values())
  if zs is None:
    kl = log_ratio = jnp.zeros_like(ll)
  if emit_costs:
    for name, value in parts.items():
      sg.cost(f"neg_{name}", -jnp.sum(value))
    if zs is None:
      sg.cost("kl", jnp.sum(kl))
  return s_t, StepTerms(ll, parts, kl, log_ratio)


def elbo(terms: StepTerms) -> jax.Array:
  """`[T, N] -> [N]`: the one-path ELBO with closed-form KLs, `sum_t log_lik - kl`."""
  return jnp.sum(terms.log_lik - terms.kl, axis=0)


def iw_bound(log_weights: jax.Array) -> jax.Array:
  """`[K, N] -> [N]`: `log (1/K) sum_k exp(log_weights[k])` (Burda et al. 2016, Eq. (8))."""
  k = log_weights.shape[0]
  return jax.nn.logsumexp(log_weights, axis=0) - jnp.log(k)


def path_log_weights(terms: StepTerms) -> jax.Array:
  """`[T, N] -> [N]`: the log importance weight of one path, `sum_t log_lik + log_ratio`."""
  return jnp.sum(terms.log_lik + terms.log_ratio, axis=0)
