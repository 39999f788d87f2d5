"""Evaluation types (the kind of task an eval set holds) and the metrics each suggests; light to import."""

EVAL_TYPES = ("qa", "multiple_choice", "math", "code", "translation", "summarization", "general")
DEFAULT_METRICS = {
    "qa": ["accuracy", "exact_match"],
    "multiple_choice": ["accuracy"],
    "math": ["accuracy"],
    "code": ["pass@k"],
    "translation": ["bleu"],
    "summarization": ["rouge"],
    "general": ["accuracy", "exact_match", "bleu", "rouge"],
}
