"""Strings of the Model surgery page (pages/surgery.py)."""

STRINGS = {
    "surgery.title": {"zh": "模型手术", "en": "Model surgery"},
    "surgery.intro": {
        "zh": "训练结束后，把检查点变成要发布的模型：转换为 HuggingFace 格式、选择最佳检查点并导出、合并多个模型、做 SWA/EMA 权重平均、合并 LoRA。",
        "en": "After training, turn checkpoints into the model you ship: convert to Hugging Face format, pick and "
        "export the best checkpoint, merge models, average weights (SWA/EMA), merge LoRA adapters.",
    },
    "surgery.tab.merge": {"zh": "模型合并", "en": "Merge"},
    "surgery.tab.average": {"zh": "权重平均", "en": "Average"},
    "surgery.tab.lora": {"zh": "LoRA 合并", "en": "LoRA merge"},
    "surgery.tab.checkpoints": {"zh": "检查点", "en": "Checkpoints"},
    # models
    "surgery.models": {"zh": "已登记的模型", "en": "Registered models"},
    "surgery.models.help": {
        "zh": "按选择的顺序使用。没有列出的模型可以在下方填写路径。",
        "en": "Used in the order you pick them. Models not listed can be given as paths below.",
    },
    "surgery.paths": {"zh": "其他模型目录（每行一个）", "en": "Other model directories (one per line)"},
    "surgery.paths.help": {
        "zh": "任意本机 HuggingFace 模型目录，或已转换的 verl 检查点目录（global_step_N）。",
        "en": "Any local Hugging Face model directory, or a converted verl checkpoint (global_step_N).",
    },
    "surgery.none_registered": {
        "zh": "还没有登记的模型。可在“设置”中登记，或在下方直接填写路径。",
        "en": "No registered models yet. Register some in Settings, or give paths below.",
    },
    "surgery.out": {"zh": "输出名称", "en": "Output name"},
    "surgery.out.help": {
        "zh": "结果写入工作区 models/ 下的这个目录，并登记为模型。",
        "en": "The result is written to this directory inside the workspace models/ and registered as a model.",
    },
    "surgery.overwrite": {"zh": "覆盖已存在的非空目录", "en": "Overwrite an existing non-empty directory"},
    "surgery.check": {"zh": "检查", "en": "Check"},
    "surgery.compatible": {
        "zh": "模型兼容：架构、张量名称与形状、分词器一致。",
        "en": "Compatible: same architecture, tensor names and shapes, tokenizer.",
    },
    "surgery.incompatible": {"zh": "这些模型不能合并：", "en": "These models cannot be merged:"},
    "surgery.need_two": {"zh": "请至少选择两个模型。", "en": "Choose at least two models."},
    "surgery.task_started": {"zh": "已启动任务 #{id}", "en": "Started task #{id}"},
    "surgery.recent": {"zh": "最近的模型手术任务", "en": "Recent surgery tasks"},
    "surgery.col.task": {"zh": "任务", "en": "Task"},
    "surgery.col.kind": {"zh": "类型", "en": "Kind"},
    "surgery.col.title": {"zh": "标题", "en": "Title"},
    "surgery.col.model": {"zh": "模型", "en": "Model"},
    "surgery.col.weight": {"zh": "权重", "en": "Weight"},
    "surgery.col.step": {"zh": "步数", "en": "Step"},
    "surgery.col.format": {"zh": "格式", "en": "Format"},
    "surgery.col.size": {"zh": "大小 (MB)", "en": "Size (MB)"},
    "surgery.col.hf": {"zh": "HF 权重", "en": "HF weights"},
    "surgery.col.lora": {"zh": "LoRA 适配器", "en": "LoRA"},
    # merge
    "surgery.merge.method": {"zh": "合并方法", "en": "Merge method"},
    "surgery.method.slerp": {"zh": "SLERP：两个模型的球面插值", "en": "SLERP: spherical interpolation of two models"},
    "surgery.method.ties": {
        "zh": "TIES：裁剪、选符号、合并任务向量",
        "en": "TIES: trim, elect sign, merge task vectors",
    },
    "surgery.method.dare_ties": {
        "zh": "DARE-TIES：随机丢弃并重缩放，再按符号合并",
        "en": "DARE-TIES: random drop and rescale, then sign consensus",
    },
    "surgery.method.dare_linear": {
        "zh": "DARE-Linear：随机丢弃并重缩放，线性相加",
        "en": "DARE-Linear: random drop and rescale, summed linearly",
    },
    "surgery.method.linear": {"zh": "Linear：加权平均（模型汤）", "en": "Linear: weighted average (model soup)"},
    "surgery.merge.base": {"zh": "基座模型", "en": "Base model"},
    "surgery.merge.base.help": {
        "zh": "其他模型由它微调而来；合并的是它们相对基座的差值（任务向量）。",
        "en": "The model the others were fine-tuned from; what is merged are their differences to it (task vectors).",
    },
    "surgery.merge.base_path": {"zh": "或基座模型目录", "en": "or base model directory"},
    "surgery.merge.t": {
        "zh": "插值系数 t（0 = 第一个模型，1 = 第二个模型）",
        "en": "Interpolation t (0 = first model, 1 = second)",
    },
    "surgery.merge.density": {"zh": "保留比例 density", "en": "Density (share kept)"},
    "surgery.merge.seed": {"zh": "随机种子（DARE 可复现）", "en": "Random seed (reproducible DARE)"},
    "surgery.merge.weight": {"zh": "权重：{name}", "en": "Weight: {name}"},
    "surgery.merge.normalised": {"zh": "归一化后的权重（总和为 1）", "en": "Normalised weights (sum 1)"},
    "surgery.merge.not_normalised": {
        "zh": "DARE 的权重按原值缩放各自的任务向量，不做归一化。",
        "en": "DARE weights scale each task vector as given; they are not normalised.",
    },
    "surgery.merge.slerp_two": {
        "zh": "SLERP 只能合并两个模型；第一个也是基座。",
        "en": "SLERP merges exactly two models; the first one is the base.",
    },
    "surgery.merge.dtype": {"zh": "计算精度", "en": "Compute dtype"},
    "surgery.merge.dtype.auto": {"zh": "与输入相同", "en": "same as the inputs"},
    "surgery.merge.start": {"zh": "开始合并", "en": "Start merge"},
    # average
    "surgery.avg.source": {
        "zh": "检查点目录（含 global_step_N）",
        "en": "Checkpoint directory (holding global_step_N)",
    },
    "surgery.avg.steps": {"zh": "要平均的步数", "en": "Steps to average"},
    "surgery.avg.order": {"zh": "按从旧到新的顺序参与平均：", "en": "Averaged in this order, oldest first:"},
    "surgery.avg.mode": {"zh": "平均方式", "en": "Averaging"},
    "surgery.avg.mode.uniform": {"zh": "均匀平均（SWA）", "en": "Uniform (SWA)"},
    "surgery.avg.mode.ema": {"zh": "指数加权（EMA，越新权重越大）", "en": "Exponential (EMA, newer weigh more)"},
    "surgery.avg.decay": {"zh": "衰减系数 d（权重 ∝ d^(N-1-i)）", "en": "Decay d (weight ∝ d^(N-1-i))"},
    "surgery.avg.weights": {"zh": "各检查点的权重", "en": "Weight of each checkpoint"},
    "surgery.avg.shard": {"zh": "输出分片大小", "en": "Output shard size"},
    "surgery.avg.start": {"zh": "执行平均", "en": "Run averaging"},
    "surgery.avg.need_two": {"zh": "请至少选择两个检查点或模型。", "en": "Choose at least two checkpoints or models."},
    # lora
    "surgery.lora.adapter": {
        "zh": "LoRA 适配器目录（或其上级目录）",
        "en": "LoRA adapter directory (or a folder above it)",
    },
    "surgery.lora.found": {"zh": "找到的适配器", "en": "Adapters found"},
    "surgery.lora.none": {
        "zh": "该目录下没有 adapter_config.json。",
        "en": "No adapter_config.json under this directory.",
    },
    "surgery.lora.info": {
        "zh": "基座：{base}；秩 r = {r}；alpha = {alpha}；目标模块：{modules}",
        "en": "Base: {base}; rank r = {r}; alpha = {alpha}; target modules: {modules}",
    },
    "surgery.lora.base": {
        "zh": "基座模型目录（留空则使用适配器记录的基座）",
        "en": "Base model directory (empty: the base the adapter names)",
    },
    "surgery.lora.dtype": {"zh": "加载精度", "en": "Load dtype"},
    "surgery.lora.start": {"zh": "合并 LoRA", "en": "Merge LoRA"},
    # checkpoints
    "surgery.ckpt.dir": {
        "zh": "检查点目录（含 global_step_N 或 checkpoint-N）",
        "en": "Checkpoint directory (holding global_step_N or checkpoint-N)",
    },
    "surgery.ckpt.dir.help": {
        "zh": "任何含有 global_step_N（verl）或 checkpoint-N（TRL）子目录的目录；平台训练任务的检查点请选择“训练任务”。",
        "en": "Any directory holding global_step_N (verl) or checkpoint-N (TRL) folders; for a platform job's "
        'checkpoints choose "a training job" above.',
    },
    "surgery.ckpt.metrics": {"zh": "指标文件（JSONL，每行一个）", "en": "Metrics files (JSONL, one per line)"},
    "surgery.ckpt.source": {"zh": "检查点来源", "en": "Checkpoints of"},
    "surgery.ckpt.source.job": {"zh": "训练任务", "en": "a training job"},
    "surgery.ckpt.source.dir": {"zh": "任意目录", "en": "any directory"},
    "surgery.ckpt.job": {"zh": "训练任务", "en": "Training job"},
    "surgery.ckpt.no_jobs": {
        "zh": "本机还没有训练任务；也可以选择任意目录。",
        "en": "No training jobs on this machine yet; you can also pick any directory.",
    },
    "surgery.ckpt.none": {"zh": "该目录下没有检查点。", "en": "No checkpoints in this directory."},
    "surgery.ckpt.converted": {"zh": "已转换", "en": "converted"},
    "surgery.ckpt.select": {"zh": "选择检查点", "en": "Choose a checkpoint"},
    "surgery.ckpt.strategy": {"zh": "选择策略", "en": "Strategy"},
    "surgery.strategy.lowest_val_loss": {"zh": "最低验证 Loss", "en": "Lowest validation loss"},
    "surgery.strategy.highest_reward": {"zh": "最高平均 Reward", "en": "Highest mean reward"},
    "surgery.strategy.last": {"zh": "最后一个检查点", "en": "Last checkpoint"},
    "surgery.strategy.custom": {"zh": "自定义步数", "en": "Custom step"},
    "surgery.ckpt.step": {"zh": "步数", "en": "Step"},
    "surgery.ckpt.reason.lowest": {
        "zh": "第 {step} 步的 {metric} 最低：{value}（{count} 个检查点有该指标）",
        "en": "Step {step} has the lowest {metric}: {value} ({count} checkpoints have it)",
    },
    "surgery.ckpt.reason.highest": {
        "zh": "第 {step} 步的 {metric} 最高：{value}（{count} 个检查点有该指标）",
        "en": "Step {step} has the highest {metric}: {value} ({count} checkpoints have it)",
    },
    "surgery.ckpt.reason.last": {"zh": "第 {step} 步是最后一个检查点", "en": "Step {step} is the last checkpoint"},
    "surgery.ckpt.reason.custom": {"zh": "手动选择了第 {step} 步", "en": "Step {step} was chosen by hand"},
    "surgery.ckpt.chart": {
        "zh": "{metric} 随检查点的变化（红点为选中的）",
        "en": "{metric} over the checkpoints (the red point is the pick)",
    },
    "surgery.ckpt.convert": {"zh": "转换为 HF 格式", "en": "Convert to HF"},
    "surgery.ckpt.convert_all": {"zh": "转换所有未转换的检查点", "en": "Convert every unconverted checkpoint"},
    "surgery.ckpt.export_name": {"zh": "导出的模型名称", "en": "Name of the exported model"},
    "surgery.ckpt.export": {"zh": "导出模型", "en": "Export model"},
    "surgery.ckpt.is_hf": {"zh": "可直接使用的 HF 目录：{path}", "en": "Usable HF directory: {path}"},
    "surgery.ckpt.needs_convert": {
        "zh": "该 verl 检查点还没有 HF 权重；导出时会先用 verl.model_merger 转换（CPU 即可，结果会缓存）。",
        "en": "This verl checkpoint has no HF weights yet; exporting converts it first with verl.model_merger "
        "(CPU is fine; the conversion is cached).",
    },
    "surgery.ckpt.needs_convert_lora": {
        "zh": "该 verl LoRA 检查点还没有 HF 权重；导出时会先用 verl.model_merger 转换，再用 peft 把适配器合并进基座。",
        "en": "This verl LoRA checkpoint has no HF weights yet; exporting converts it with verl.model_merger, then "
        "merges the adapter into the base with peft.",
    },
    "surgery.ckpt.export_adapter": {
        "zh": "该检查点只含 LoRA 适配器（TRL）；导出时会用 peft 把它合并进 adapter_config.json 记录的基座模型。",
        "en": "This checkpoint holds only a LoRA adapter (TRL); exporting merges it with peft into the base model "
        "named in its adapter_config.json.",
    },
    "surgery.ckpt.unknown_format": {
        "zh": "无法识别该检查点的格式（既不是 verl 检查点、HF 模型，也不是 LoRA 适配器），不能导出。",
        "en": "This checkpoint's format is not recognised (not a verl checkpoint, an HF model or a LoRA adapter); "
        "it cannot be exported.",
    },
    "surgery.compatible_pending": {
        "zh": "已能检查的模型彼此兼容；尚未转换的 verl 检查点会在任务开始时先转换，再一起检查。",
        "en": "The models that can be checked now are compatible; the verl checkpoints not converted yet are "
        "converted when the task starts and checked then.",
    },
    # compatibility findings (platform_core/surgery/compat.py REASONS), by code
    "surgery.reason.architecture": {
        "zh": "架构不同：{a} 是 {arch_a}（{type_a}），{b} 是 {arch_b}（{type_b}）",
        "en": "different architecture: {a} is {arch_a} ({type_a}), {b} is {arch_b} ({type_b})",
    },
    "surgery.reason.missing_tensors": {
        "zh": "张量不同：{other} 缺少 {first} 中的 {count} 个张量（如 {names}）",
        "en": "different tensors: {other} lacks {names}{more} (which {first} has)",
    },
    "surgery.reason.extra_tensors": {
        "zh": "张量不同：{other} 多出 {first} 没有的 {count} 个张量（如 {names}）",
        "en": "different tensors: {other} has {names}{more}, which {first} has not",
    },
    "surgery.reason.shape": {
        "zh": "{name} 的形状不同：{first} 为 {shape_a}，{other} 为 {shape_b}",
        "en": "different shape for {name}: {first} has {shape_a}, {other} has {shape_b}",
    },
    "surgery.reason.tokenizer": {
        "zh": "分词器不同：{a} 与 {b} 的词表不一致（分词器文件不同）",
        "en": "different tokenizer: {a} and {b} have different vocabularies (tokenizer files differ)",
    },
    "surgery.reason.no_tokenizer": {
        "zh": "{lacks} 没有分词器文件；将使用 {has} 的分词器",
        "en": "{lacks} has no tokenizer files; the tokenizer of {has} is used",
    },
    "surgery.reason.dtype": {
        "zh": "{a} 的精度是 {dtype_a}，{b} 是 {dtype_b}；结果采用第一个模型的精度",
        "en": "{a} is {dtype_a} and {b} is {dtype_b}; the result takes the first's dtype",
    },
    "surgery.reason.pending_conversion": {
        "zh": "{path} 是尚未转换为 Hugging Face 格式的 verl 检查点；任务会先转换它（结果缓存），转换后再检查",
        "en": "{path} is a verl checkpoint not converted to Hugging Face format yet; the task converts it first "
        "(cached) and checks it then",
    },
}
