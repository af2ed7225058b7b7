"""Optimisers of mixing policies, one module each: ``space`` (the table of optimisable keys, the
baselines), ``gradient`` (optax through the relaxed simulator), ``search`` (Optuna), ``hybrid``,
``evaluators`` (objective values on fixed seeds) and ``evaluate`` (a policy vs the baselines on fresh
seeds). Nothing is imported here, so ``space`` is read without importing JAX: import the module you
need."""
