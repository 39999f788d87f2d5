"""Evaluation center: eval sets, generation (vLLM or transformers, local or over SSH), metrics with standard errors,
per-category results, paired comparisons against a baseline, and multi-model comparisons.

    from platform_core.evaluation.metrics import score_items
    score_items(items, ["accuracy", "bleu", "rouge", "exact_match"])   # -> {"overall": ..., "per_category": ...}
"""
