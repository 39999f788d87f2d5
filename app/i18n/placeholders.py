"""Strings of the areas that are still being built (each page says what is coming)."""

STRINGS = {
    "coming.title": {"zh": "即将推出", "en": "Coming soon"},
    "coming.jobs": {
        "zh": "在这里为 SFT / GRPO / PPO / DPO 填写表单，平台生成精确的 verl 或 TRL 命令，在本地、SSH 服务器或 Ray 集群上运行，并支持暂停、恢复和停止。",
        "en": "Fill in one form per algorithm (SFT / GRPO / PPO / DPO); the platform turns it into the exact verl or TRL "
        "run, starts it locally, on an SSH server or a Ray cluster, and lets you pause, resume and stop it.",
    },
    "coming.datasets": {
        "zh": "上传 JSON / JSONL / Parquet 数据集，按分词器统计长度、检查空值与重复、转换为 verl 格式并同步到服务器。",
        "en": "Upload JSON / JSONL / Parquet datasets, audit token lengths, empties and duplicates, convert them to "
        "verl formats and sync them to the server.",
    },
    "coming.configurator": {
        "zh": "预测显存占用，推荐 batch size、分片策略、LoRA 与梯度检查点，并一键应用到新任务。",
        "en": "Predict GPU memory, recommend batch sizes, sharding, LoRA and gradient checkpointing, and apply them to a "
        "new job in one click.",
    },
    "coming.surgery": {
        "zh": "把检查点转换为 HuggingFace 格式，选择最佳检查点，使用 SLERP / TIES / DARE / Linear 合并模型，做 SWA / EMA 权重平均。",
        "en": "Convert checkpoints to Hugging Face format, pick the best one, merge models with SLERP / TIES / DARE / "
        "Linear, and average weights (SWA / EMA).",
    },
    "coming.evaluation": {
        "zh": "在自定义评估集上计算 Accuracy / BLEU / ROUGE / Exact Match / Pass@k，按类别查看结果，与基线做显著性对比。",
        "en": "Score models on your own eval sets with Accuracy / BLEU / ROUGE / Exact Match / Pass@k, per category, "
        "against a baseline with a significance test.",
    },
}
