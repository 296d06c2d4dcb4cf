"""Estimators for discrete nodes built on continuous relaxations and antithetic pairs.

- Gumbel-softmax / Concrete (Jang et al. 2017; Maddison et al. 2017) and their straight-through
  variants: biased, low-variance pathwise gradients; usable per node in `sample(estimator=...)`.
- REBAR (Tucker et al. 2017) and RELAX (Grathwohl et al. 2018) for Bernoulli nodes: the relaxed
  cost as a control variate with its reparameterised correction; unbiased.
- ARM (Yin & Zhou 2019) and DisARM (Dong et al. 2020) for Bernoulli nodes: antithetic pairs of
  samples; unbiased.

The function-style estimators take `f(b) -> scalar`. `f` may itself return a surrogate (forward
value = cost, gradient = an unbiased estimate for parameters other than the logits), so
estimators compose layer by layer in multi-layer models.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import distrax
import jax
import jax.numpy as jnp

from stochastic_graphs import nodes as nodes_lib


def _logistic_noise(key: jax.Array, shape, dtype) -> jax.Array:
  u = jax.random.uniform(key, shape, dtype, minval=jnp.finfo(dtype).tiny, maxval=1.0)
  return jnp.log(u) - jnp.log1p(-u)


def binary_concrete(logits: jax.Array, key: jax.Array, temperature: float | jax.Array
                    ) -> tuple[jax.Array, jax.Array]:
  """Relaxed Bernoulli (Maddison et al. 2017, Eq. (21)): `(hard, relaxed)` from one noise draw.

  `hard = 1[logits + L > 0]` is an exact Bernoulli(sigmoid(logits)) sample and
  `relaxed = sigmoid((logits + L) / temperature)`, with L ~ Logistic(0, 1).
  """
  logits = jnp.asarray(logits)
  dtype = jnp.result_type(logits.dtype, jnp.float32)
  z = logits + _logistic_noise(key, logits.shape, dtype)
  return jax.lax.stop_gradient((z > 0).astype(dtype)), jax.nn.sigmoid(z / temperature)


def gumbel_softmax(logits: jax.Array, key: jax.Array, temperature: float | jax.Array
                   ) -> tuple[jax.Array, jax.Array]:
  """Concrete / Gumbel-softmax (Jang et al. 2017, Eq. (1)): `(hard one-hot, relaxed)`."""
  logits = jnp.asarray(logits)
  z = logits + jax.random.gumbel(key, logits.shape, jnp.result_type(logits.dtype, jnp.float32))
  hard = jax.nn.one_hot(jnp.argmax(z, axis=-1), logits.shape[-1], dtype=z.dtype)
  return jax.lax.stop_gradient(hard), jax.nn.softmax(z / temperature, axis=-1)


def straight_through(hard: jax.Array, relaxed: jax.Array) -> jax.Array:
  """Forward value `hard`, gradient of `relaxed` (Bengio et al. 2013; Jang et al. 2017)."""
  return hard + relaxed - jax.lax.stop_gradient(relaxed)


class GumbelSoftmax(nodes_lib.Relaxation):
  """Per-node relaxation for Bernoulli and OneHotCategorical distrax nodes.

  Args:
    temperature: relaxation temperature (> 0); lower is less biased and noisier.
    straight_through: pass the hard sample forward and the relaxed gradient backward.
  """

  def __init__(self, temperature: float = 0.5, straight_through: bool = False):
    if not temperature > 0:
      raise ValueError(f"temperature must be > 0; got {temperature}.")
    self.temperature = temperature
    self.straight_through = straight_through

  def __repr__(self):
    return (f"GumbelSoftmax(temperature={self.temperature}, "
            f"straight_through={self.straight_through})")

  def sample(self, dist: Any, key: jax.Array) -> tuple[jax.Array, jax.Array]:
    if isinstance(dist, distrax.Bernoulli):
      hard, relaxed = binary_concrete(dist.logits, key, self.temperature)
    elif isinstance(dist, distrax.OneHotCategorical):
      hard, relaxed = gumbel_softmax(dist.logits, key, self.temperature)
    else:
      raise ValueError(f"GumbelSoftmax relaxes Bernoulli and OneHotCategorical nodes; got "
                       f"{type(dist).__name__}.")
    return hard, (straight_through(hard, relaxed) if self.straight_through else relaxed)


class StraightThrough(GumbelSoftmax):
  """Per-node straight-through Gumbel-softmax: `GumbelSoftmax(temperature, straight_through=True)`.

  The node's value is the exact (hard) sample; its gradient is that of the Concrete relaxation
  (Jang et al. 2017, Sec. 2.2; Bengio et al. 2013).
  """

  def __init__(self, temperature: float = 0.5):
    super().__init__(temperature, straight_through=True)

  def __repr__(self):
    return f"StraightThrough(temperature={self.temperature})"


class DisARM(nodes_lib.Antithetic):
  """Per-node DisARM (Dong et al. 2020, Eq. (6)) for a Bernoulli node of any shape.

  The node's value is b = 1[u < sigmoid(a)]; `make_surrogate` also evaluates the node's
  downstream cost R at the antithetic b~ = 1[1 - u < sigmoid(a)] (other nodes redrawn from the
  same keys) and uses g = 1/2 (R(b) - R(b~)) (-1)^{b~} 1[b != b~] sigmoid(|a|) as the gradient
  w.r.t. the logits a. Unbiased; the node passes no gradient downstream. Costs one extra run of
  the model per DisARM node; not available inside `scan` or with `dice=True`.
  """

  def __repr__(self):
    return "DisARM()"

  def pair(self, dist: Any, key: jax.Array) -> tuple[jax.Array, jax.Array]:
    if not isinstance(dist, distrax.Bernoulli):
      raise ValueError(f"DisARM needs a Bernoulli node; got {type(dist).__name__}.")
    sl = jax.lax.stop_gradient(dist.logits)
    dtype = dist.dtype if jnp.issubdtype(dist.dtype, jnp.floating) else sl.dtype
    u = jax.random.uniform(key, sl.shape, sl.dtype)
    p = jax.nn.sigmoid(sl)
    return (u < p).astype(dtype), (1.0 - u < p).astype(dtype)

  def gradient(self, dist, sample, partner, cost, partner_cost):
    sl = jax.lax.stop_gradient(dist.logits)
    sign = jnp.where(partner > 0, -1.0, 1.0)
    return 0.5 * (cost - partner_cost) * sign * (sample != partner) * jax.nn.sigmoid(jnp.abs(sl))


def _check_logits(logits: jax.Array) -> jax.Array:
  logits = jnp.asarray(logits)
  if not jnp.issubdtype(logits.dtype, jnp.floating):
    raise ValueError(f"logits must be a floating array; got dtype {logits.dtype}.")
  return logits


def _bernoulli_log_prob(logits, b):
  return jnp.sum(b * jax.nn.log_sigmoid(logits) + (1 - b) * jax.nn.log_sigmoid(-logits))


def arm_surrogate(f: Callable[[jax.Array], jax.Array], logits: jax.Array, key: jax.Array
                  ) -> jax.Array:
  """ARM (Yin & Zhou 2019, Eq. (5)) for b ~ Bernoulli(sigmoid(logits)) (any shape).

  g = (f(1[u > sigmoid(-logits)]) - f(1[u < sigmoid(logits)])) (u - 1/2), one u per element.

  Returns:
    Scalar with forward value (f(b1) + f(b2)) / 2 and gradient g w.r.t. the logits (plus the
    average of f's own gradients over the two valid samples).
  """
  logits = _check_logits(logits)
  u = jax.random.uniform(key, logits.shape, logits.dtype)
  sl = jax.lax.stop_gradient(logits)
  b1 = (u > jax.nn.sigmoid(-sl)).astype(logits.dtype)
  b2 = (u < jax.nn.sigmoid(sl)).astype(logits.dtype)
  f1, f2 = f(b1), f(b2)
  g = jax.lax.stop_gradient((f1 - f2) * (u - 0.5))
  return 0.5 * (f1 + f2) + jnp.sum(g * (logits - sl))


def disarm_surrogate(f: Callable[[jax.Array], jax.Array], logits: jax.Array, key: jax.Array
                     ) -> jax.Array:
  """DisARM (Dong et al. 2020, Eq. (6)) for b ~ Bernoulli(sigmoid(logits)) (any shape).

  With antithetic b = 1[u < sigmoid(a)] and b~ = 1[1 - u < sigmoid(a)]:
  g = 1/2 (f(b) - f(b~)) (-1)^{b~} 1[b != b~] sigmoid(|a|).

  Returns:
    Scalar with forward value (f(b) + f(b~)) / 2 and gradient g w.r.t. the logits.
  """
  logits = _check_logits(logits)
  u = jax.random.uniform(key, logits.shape, logits.dtype)
  sl = jax.lax.stop_gradient(logits)
  b = (u < jax.nn.sigmoid(sl)).astype(logits.dtype)
  bt = (1.0 - u < jax.nn.sigmoid(sl)).astype(logits.dtype)
  f1, f2 = f(b), f(bt)
  g = 0.5 * (f1 - f2) * jnp.where(bt > 0, -1.0, 1.0) * (b != bt) * jax.nn.sigmoid(jnp.abs(sl))
  g = jax.lax.stop_gradient(g)
  return 0.5 * (f1 + f2) + jnp.sum(g * (logits - sl))


def relax_surrogate(f: Callable[[jax.Array], jax.Array], logits: jax.Array, key: jax.Array, *,
                    temperature: float | jax.Array = 0.5, eta: float | jax.Array = 1.0,
                    control: Callable[[jax.Array], jax.Array] | None = None) -> jax.Array:
  """REBAR (Tucker et al. 2017, Eq. (7)) or, with `control`, RELAX (Grathwohl et al. 2018, Eq. (8)).

  With z = logits + L, b = H(z) and z~ ~ p(z | b) (reparameterised), and the control
  c(z) = eta * f(sigmoid(z / temperature)) + control(z):
      g = [f(b) - c(z~)] grad log p(b) + grad c(z) - grad c(z~),
  unbiased for any c. `temperature`, `eta` and the parameters of `control` may be tuned by
  minimising the squared norm of g (the variance objective of both papers): differentiating g
  (the surrogate's gradient w.r.t. the logits) w.r.t. them gives the gradient of that objective,
  score part included. The surrogate's own first-order gradient w.r.t. them, and w.r.t.
  parameters that `f` reads inside the control, is zero: the control only enters through the
  logits' gradient (E[grad c(z) - grad c(z~)] = 0 for any other parameter, so leaving it out
  keeps those gradients unbiased and removes noise).

  Returns:
    Scalar with forward value f(b) and the gradient g w.r.t. the logits (plus f's own gradients
    at b for its other parameters).
  """
  logits = _check_logits(logits)
  dtype = logits.dtype
  ku, kv = jax.random.split(key)
  tiny = jnp.finfo(dtype).tiny
  u = jax.random.uniform(ku, logits.shape, dtype, minval=tiny, maxval=1.0)
  v = jax.random.uniform(kv, logits.shape, dtype, minval=tiny, maxval=1.0)
  noise = jnp.log(u) - jnp.log1p(-u)
  b = jax.lax.stop_gradient((logits + noise > 0).astype(dtype))

  def c(zz):
    out = eta * f(jax.nn.sigmoid(zz / temperature))
    if control is not None:
      out = out + control(zz)
    return out

  def relaxed(lg):
    """(c(z) - c(z~), c(z~)) as functions of the logits, with the noise u, v and b held fixed."""
    theta = jax.nn.sigmoid(lg)
    # p(z | b): u | b=1 ~ U(1 - theta, 1), u | b=0 ~ U(0, 1 - theta), written in logit space.
    u_cond = jnp.where(b > 0, (1.0 - theta) + v * theta, v * (1.0 - theta))
    u_cond = jnp.clip(u_cond, tiny, 1.0 - jnp.finfo(dtype).eps)
    czt = c(lg + jnp.log(u_cond) - jnp.log1p(-u_cond))
    return c(lg + noise) - czt, czt

  sl = jax.lax.stop_gradient(logits)
  grad_diff, czt = jax.grad(relaxed, has_aux=True)(sl)
  fb = f(b)
  log_p = _bernoulli_log_prob(logits, b)
  # Forward-zero factors: the first derivative w.r.t. the logits is [f(b) - c(z~)] grad log p +
  # grad (c(z) - c(z~)); the control's parameters keep their path into it for the variance
  # objective, and get no first-order gradient of their own.
  score = (log_p - jax.lax.stop_gradient(log_p)) * (jax.lax.stop_gradient(fb) - czt)
  correction = jnp.sum((logits - sl) * grad_diff)
  return fb + score + correction
