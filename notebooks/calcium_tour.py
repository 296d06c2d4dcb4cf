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

# %% [markdown]
# # calcium: DeepSpike on simulated cells
#
# Speiser, Yan, Archer, Buesing, Turaga, Macke 2017, *Fast amortized inference of neural activity
# from calcium imaging data with variational autoencoders* (DeepSpike), Secs. 2-3.1. The SCF
# generative model (Sec. 2.2) of one cell is
#
# $$c_t = \gamma c_{t-1} + s_t, \qquad f_t = \alpha c_t + \beta + \sigma \epsilon_t, \qquad
# s_t \sim \mathrm{Bernoulli}(p),$$
#
# and the recognition network is a CNN giving the factorised posterior
# $q(s \mid f) = \prod_t \mathrm{Bernoulli}(s_t; \mathrm{CNN}_t(f))$ (Eq. 5). Network and per-cell
# parameters $(\gamma, \alpha, \beta, \sigma, p)$ are trained together, without labels, on the
# multi-sample bound $\mathcal L_K = E[\log \frac1K \sum_k p(f, s^k) / q(s^k \mid f)]$ (Eq. 8)
# with the VIMCO gradient from `stochastic_graphs`. Inference on a trace is one forward pass.

# %%
import jax
import matplotlib.pyplot as plt
import numpy as np

import calcium

# %% [markdown]
# Six simulated GCaMP6-like cells at 60 Hz, 50 s each: decay times 0.4-1 s, 1 Hz firing, one
# isolated spike peaking at 3 noise standard deviations.

# %%
model = calcium.make_model("scf", frame_rate=60.0)
raws = calcium.random_cells(model, np.random.default_rng(0), 6, tau_range=(0.4, 1.0),
                            noise_std=1.0, firing_rate=1.0, spike_snr=3.0)
spikes, traces = calcium.simulate(model, raws, jax.random.split(jax.random.key(0), 6), 3000)
true = spikes[:, :, 0]

# %% [markdown]
# Unsupervised DeepSpike (no labels): a small CNN (3 layers of 16 channels, a 25-frame receptive
# field), $K = 16$ samples, snippets of 200 frames. The per-cell models start from each trace's
# moments; the network's first 150 steps are a warm start on traces simulated from those models
# (`pretrain_steps`), the next 150 maximise the bound jointly with the per-cell models.

# %%
config = calcium.default_config()
config.update(model="scf", features=(16, 16, 16), num_samples=16, batch_size=4,
              snippet_frames=200, buffer_frames=20, learning_rate=3e-3,
              generative_learning_rate=1e-2, pretrain_steps=150, num_steps=300,
              steps_per_chunk=300)
dataset = calcium.make_dataset(list(traces))
trainer = calcium.make_trainer(config, dataset)
state, metrics = jax.jit(trainer.chunk)(trainer.init(jax.random.key(1)))
infer = jax.jit(trainer.recognition.probabilities)
p_spike = [np.asarray(infer(state.recognition_params, f))[:, 0] for f in dataset.fluorescence]
corr = np.mean([calcium.pearson(p, s) for p, s in zip(p_spike, true)])

# %% [markdown]
# For reference, the model-free inverse filter $\max(0, f_t - \gamma f_{t-1})$ with each cell's
# *true* decay: the exact inversion of the calcium dynamics, without a noise model.

# %%
gamma = np.exp(-1.0 / (60.0 * np.asarray(model.constrain(raws)["tau"])))
naive = [np.maximum(0, np.diff(f[:, 0], prepend=f[0, 0]) + (1 - g) * np.r_[0, f[:-1, 0]])
         for f, g in zip(np.asarray(traces), gamma)]
naive_corr = np.mean([calcium.pearson(n, s) for n, s in zip(naive, true)])
print(f"correlation with the true spikes per 60 Hz frame, mean over 6 cells: DeepSpike "
      f"{corr:.3f}, inverse filter {naive_corr:.3f}")

# %%
bound = np.asarray(metrics["bound_per_frame"])[150:]   # the steps on the bound
seconds = np.arange(600) / 60.0
fig, axes = plt.subplots(3, 1, figsize=(10, 6), gridspec_kw={"height_ratios": [2, 1, 1.4]})
axes[0].plot(seconds, np.asarray(dataset.fluorescence[0])[:600, 0], "k", lw=0.7)
axes[0].set(ylabel="f (noise sd)", title="cell 0, first 10 s")
axes[1].vlines(seconds[true[0, :600] > 0], 0, 1, color="k", lw=1, label="true spikes")
axes[1].plot(seconds, p_spike[0][:600], "C3", lw=0.8, label="DeepSpike q(s_t = 1 | f)")
axes[1].set(xlabel="s")
axes[1].legend(fontsize=8, loc="upper right")
axes[2].plot(np.arange(150, 300), bound, lw=0.8)
axes[2].set(xlabel="training step (after the warm start)", ylabel="bound per frame",
            ylim=(np.percentile(bound, 5) - 0.2, bound.max() + 0.2))
fig.tight_layout()
plt.show()

# %% [markdown]
# Without labels, DeepSpike finds the spikes, better than the exact inverse filter.

# %%
assert corr > 0.6 and corr > naive_corr, (corr, naive_corr)
