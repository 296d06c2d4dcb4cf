"""Evaluation of fitted models: latent recovery and predictive log-likelihoods.

* `best_linear_map_r2`: latents are identifiable only up to an affine map, so recovery is the R^2
  of the best affine map from inferred to true latents (Archer et al. 2015, Sec. 4).
* `one_step_ahead_loglik`: log p(y_{t+1} | y_{0:t}) by inferring q(x_{0:t} | y_{0:t}) (the
  recognition model on the masked prefix), propagating x_t one step through the dynamics and
  averaging the likelihood over samples (Gao et al. 2016, experiments, one-step-ahead prediction).
* `leave_one_neuron_out_loglik`: log p(y_ti | y_{t,-i}) with neuron i hidden from the recognition
  network (Gao et al. 2016, experiments, leave-one-neuron-out prediction).
Both predictive numbers are Monte Carlo estimates per bin (per neuron and bin for the second).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.scipy.special import logsumexp

from latent_dynamics import models as models_lib


def best_linear_map_r2(x_true: jax.Array, x_est: jax.Array, mask: jax.Array | None = None):
  """R^2 of the least-squares affine map x_est -> x_true over valid steps.

  Args:
    x_true: (..., T, n_true).  x_est: (..., T, n_est) (the same leading shape).
    mask: optional (..., T).

  Returns:
    1 - SS_res / SS_tot, pooled over the true latent dimensions.
  """
  if x_true.shape[:-1] != x_est.shape[:-1]:
    raise ValueError(f"x_true and x_est must agree up to the last axis; got {x_true.shape} and "
                     f"{x_est.shape}.")
  xt = x_true.reshape(-1, x_true.shape[-1])
  xe = x_est.reshape(-1, x_est.shape[-1])
  w = jnp.ones(xt.shape[0]) if mask is None else mask.reshape(-1).astype(xt.dtype)
  design = jnp.concatenate([xe, jnp.ones((xe.shape[0], 1), xe.dtype)], axis=1)
  sw = jnp.sqrt(w)[:, None]
  coef, *_ = jnp.linalg.lstsq(design * sw, xt * sw)
  resid = (xt - design @ coef) * sw
  centred = (xt - jnp.sum(xt * w[:, None], 0) / jnp.sum(w)) * sw
  return 1.0 - jnp.sum(resid ** 2) / jnp.sum(centred ** 2)


def one_step_ahead_loglik(model: models_lib.StateSpaceModel, gen_params, recognition, rec_params,
                          y: jax.Array, key: jax.Array, *, t_start: int = 1,
                          num_samples: int = 64, inputs: jax.Array | None = None) -> jax.Array:
  """Mean over trials and t in [t_start, T-1) of log p(y_{t+1} | y_{0:t}) (summed over neurons).

  Args:
    y: (N, T, p) complete trials (no padding).
    t_start: first conditioning step t (>= 1 for posteriors that need two steps).
  """
  n_trials, t_len, _ = y.shape
  if not 1 <= t_start < t_len - 1:
    raise ValueError(f"t_start must be in [1, T-1) = [1, {t_len - 1}); got {t_start}.")
  dyn = models_lib.dynamics(gen_params)
  ts = jnp.arange(t_start, t_len - 1)

  def one(index, trial_y, trial_u, t, k):
    mask = (jnp.arange(t_len) <= t).astype(y.dtype)
    batch = {"y": trial_y[None], "mask": mask[None], "index": index[None]}
    if trial_u is not None:
      batch["inputs"] = trial_u[None]
    q = recognition.posterior(rec_params, gen_params, batch)
    k1, k2 = jax.random.split(k)
    x = q.sample(seed=k1, sample_shape=(num_samples,))[:, 0]  # (S, T, n)
    xt = x[:, t]
    drift = 0.0 if trial_u is None or dyn["b"] is None else dyn["b"] @ trial_u[t]
    noise = jax.random.normal(k2, xt.shape) @ dyn["lq"].T
    x_next = xt @ dyn["a"].T + drift + noise
    ll = model.log_likelihood_terms(gen_params, x_next, jnp.broadcast_to(
        trial_y[t + 1], (num_samples,) + trial_y.shape[1:]))
    return logsumexp(jnp.sum(ll, -1)) - jnp.log(num_samples)

  keys = jax.random.split(key, (n_trials, ts.shape[0]))
  over_t = jax.vmap(one, in_axes=(None, None, None, 0, 0))
  vals = jax.vmap(over_t, in_axes=(0, 0, 0 if inputs is not None else None, None, 0))(
      jnp.arange(n_trials), y, inputs, ts, keys)
  return jnp.mean(vals)


def leave_one_neuron_out_loglik(model: models_lib.StateSpaceModel, gen_params, recognition,
                                rec_params, y: jax.Array, key: jax.Array, *,
                                num_samples: int = 64,
                                inputs: jax.Array | None = None) -> jax.Array:
  """Mean over trials, steps and neurons i of log p(y_ti | y_{:, -i}) (Monte Carlo over q).

  The recognition model must have been built with `neuron_mask_input=True`.
  """
  n_trials, t_len, p = y.shape

  def one(i, k):
    nm = 1.0 - jax.nn.one_hot(i, p, dtype=y.dtype)
    batch = {"y": y, "mask": jnp.ones((n_trials, t_len), y.dtype), "neuron_mask": nm,
             "index": jnp.arange(n_trials)}
    if inputs is not None:
      batch["inputs"] = inputs
    q = recognition.posterior(rec_params, gen_params, batch)
    x = q.sample(seed=k, sample_shape=(num_samples,))  # (S, N, T, n)
    ll = jax.vmap(jax.vmap(model.log_likelihood_terms, in_axes=(None, 0, 0)),
                  in_axes=(None, 0, None))(gen_params, x, y)[..., i]  # (S, N, T)
    return jnp.mean(logsumexp(ll, axis=0) - jnp.log(num_samples))

  return jnp.mean(jax.lax.map(lambda a: one(*a), (jnp.arange(p), jax.random.split(key, p))))
