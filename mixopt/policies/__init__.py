"""Policies: retention rules (and, later, schedules, curation and provenance filters)."""
from mixopt.policies.retention import (RETENTIONS, Batch, Retention, SampleBatch, accumulate,
                                       combine_batches, replace, subsample, window)

__all__ = ["RETENTIONS", "Batch", "Retention", "SampleBatch", "accumulate", "combine_batches",
           "replace", "subsample", "window"]
