"""Configs of the agent experiments (`--config=launch/agents/configs/<experiment>.py:<preset>`)."""
