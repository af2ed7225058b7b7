"""Policies: retention rules (and, later, schedules, curation and provenance filters)."""
from mixopt.policies.retention import (RETENTIONS, Batch, Retention, SampleBatch, accumulate,
                                       combine_batches, replace, soft_window, subsample, window)

__all__ = ["RETENTIONS", "Batch", "Retention", "SampleBatch", "accumulate", "combine_batches",
           "replace", "soft_window", "subsample", "window"]
