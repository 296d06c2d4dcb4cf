# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # latent_dynamics: the VILDS posterior against the Kalman smoother
#
# Archer, Park, Buesing, Cunningham, Paninski 2015, *Black box variational inference for state
# space models* (VILDS), Sec. 3-4. For a linear-Gaussian state-space model
#
# $$x_0 \sim \mathcal N(m_0, Q_0), \quad x_{t+1} = A x_t + w_t,\ w_t \sim \mathcal N(0, Q), \quad
# y_t \sim \mathcal N(C x_t + d, R),$$
#
# the structured posterior $q(x) = \mathcal N(\mu, (R_\phi R_\phi^\top)^{-1})$ with a lower
# block-bidiagonal $R_\phi$ (block-tridiagonal precision) can represent the exact posterior. Fitted
# by SGVB on the ELBO $\mathcal L = E_q[\log p(x, y)] + H[q]$ with the generative model held at the
# truth, its means and marginal variances should land on the Kalman (RTS) smoother's, and the
# ELBO on $\log p(y)$.

# %%
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

import latent_dynamics as ld

# %% [markdown]
# A known LDS: latent dimension 2 (a slow rotation), 10 Gaussian observations, one trial of 60
# steps.

# %%
n, p, T = 2, 10, 60
th = 0.2
a = 0.95 * jnp.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
c = jax.random.normal(jax.random.key(1), (p, n)) / np.sqrt(n)
params = ld.lds_params(a, 0.3 ** 2 * jnp.eye(n), c, jnp.ones(p))
model = ld.make_model("lds", n, p)
x, y = model.sample(params, jax.random.key(0), T)

# %% [markdown]
# Fit the structured posterior (free per-trial parameters, `amortized=False`) by SGVB, the
# generative model fixed (`learn_generative=False`). `make_train(config, data)` returns a pure,
# jitted `train(key)` with the whole loop in one `lax.scan`.

# %%
config = ld.default_config()
config.update(model="lds", latent_dim=n, recognition="structured", amortized=False,
              learn_generative=False, num_samples=16, batch_size=1, learning_rate=0.05,
              schedule="cosine", num_steps=600)
data = ld.make_dataset(y[None])
trainer = ld.make_trainer(config, data, gen_params=params)
train = ld.make_train(config, data, gen_params=params)
state, metrics = train(jax.random.key(2))
q = trainer.recognition.posterior(state.params["rec"], params,
                                  {"y": data.y, "mask": data.mask, "index": jnp.array([0])})

# %% [markdown]
# The exact posterior: the Kalman filter and RTS smoother.

# %%
d = ld.dynamics(params)
ks = ld.kalman_smoother(d["m0"], d["lq0"] @ d["lq0"].T, d["a"], d["lq"] @ d["lq"].T,
                        params["obs"]["c"], jnp.diag(jnp.exp(2 * params["obs"]["log_r"])), y)
mean, var = np.asarray(q.mean()[0]), np.asarray(q.variance()[0])
km, kv = np.asarray(ks.smoothed_means), np.asarray(jnp.diagonal(ks.smoothed_covs, 0, 1, 2))
mean_rel_err = np.linalg.norm(mean - km) / np.linalg.norm(km)
var_rel_err = np.mean(np.abs(var - kv) / kv)
elbo = np.asarray(metrics["elbo_per_step"])
log_lik = float(ks.log_likelihood) / T
print(f"posterior means: relative L2 error {mean_rel_err:.4f}")
print(f"marginal variances: mean relative error {var_rel_err:.4f}")
print(f"ELBO per step (last 50 steps) {elbo[-50:].mean():.3f} vs log p(y)/T {log_lik:.3f}")

# %%
t = np.arange(T)
fig, axes = plt.subplots(n + 1, 1, figsize=(8, 6), sharex=False)
for i in range(n):
  axes[i].plot(t, np.asarray(x)[:, i], "k.", ms=3, label="true x")
  axes[i].plot(t, km[:, i], "C0", label="Kalman smoother")
  axes[i].fill_between(t, km[:, i] - 2 * np.sqrt(kv[:, i]), km[:, i] + 2 * np.sqrt(kv[:, i]),
                       color="C0", alpha=0.25)
  axes[i].plot(t, mean[:, i], "C3--", label="VILDS q")
  axes[i].set(ylabel=f"x[{i}]")
axes[0].legend(fontsize=8, loc="upper right")
axes[-1].plot(elbo, label="ELBO per step")
axes[-1].axhline(log_lik, color="k", ls=":", label="log p(y) / T")
axes[-1].set(xlabel="SGVB step", ylim=(log_lik - 1.0, log_lik + 0.2))
axes[-1].legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# The structured posterior sits on the exact one.

# %%
assert mean_rel_err < 0.02, mean_rel_err
assert var_rel_err < 0.1, var_rel_err
