"""The pieces the generation loop composes, one module each: ``retention`` (which batches the next
model trains on; a registry), ``supply`` (human counts: fresh or pool, budget cap, contamination),
``filters`` (curation and provenance), ``schedules`` (parametric lambda schedules).

``supply`` and ``schedules`` import no JAX (the plain-words description and the CLI's start use
them), so nothing is imported here: import the module you need.
"""
