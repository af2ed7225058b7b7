"""Optimisers of mixing policies: gradients through the simulator (optax) and search (Optuna)."""
from mixopt.optimize.evaluate import Estimate, compare, evaluate
from mixopt.optimize.gradient import GradientResult, optimize_gradient
from mixopt.optimize.space import BASELINES, baseline_configs, parse_space, policy_dict
from mixopt.optimize.search import SearchResult, optimize_search

__all__ = ["BASELINES", "Estimate", "GradientResult", "SearchResult", "baseline_configs", "compare", "evaluate",
           "optimize_gradient", "optimize_search", "parse_space", "policy_dict"]
