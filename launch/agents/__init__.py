"""Launchers of the agent experiments (SAC-D, A2C, ...); configs in `launch/agents/configs/`."""
