"""Hostile-input fuzzing (hypothesis in make test; atheris harnesses in make fuzz)."""
