"""Strings of the compute configurator page."""

STRINGS = {
    "configurator.title": {"zh": "计算配置器", "en": "Compute configurator"},
    "configurator.intro": {
        "zh": "在动用任何 GPU 之前回答“能不能放下、用什么设置、要跑多久”：按实测公式预测每张 GPU 的显存峰值，推荐 batch size、分片、LoRA 与梯度检查点。",
        "en": "Answers “will it fit, with which settings, and how long” before any GPU is touched: predicts the peak "
        "memory per GPU from measured formulas and recommends batch sizes, sharding, LoRA and gradient checkpointing.",
    },
    # inputs
    "configurator.model": {"zh": "模型", "en": "Model"},
    "configurator.model.local": {"zh": "本地：{name}", "en": "Local: {name}"},
    "configurator.model.dir": {
        "zh": "或本地模型目录（读取 config.json）",
        "en": "Or a local model directory (reads config.json)",
    },
    "configurator.model.dir.help": {
        "zh": "填写后优先于上面的选择；目录中需要有 config.json（Llama / Qwen2 / Qwen3 / Mistral 结构）。",
        "en": "Takes precedence over the choice above; the directory needs a config.json (Llama / Qwen2 / Qwen3 / "
        "Mistral style).",
    },
    "configurator.gpu": {"zh": "GPU 类型", "en": "GPU type"},
    "configurator.gpu.custom": {"zh": "自定义显存", "en": "Custom memory"},
    "configurator.gpu.memory": {"zh": "显存 (GiB)", "en": "Memory (GiB)"},
    "configurator.gpus_per_node": {"zh": "每节点 GPU 数", "en": "GPUs per node"},
    "configurator.nodes": {"zh": "节点数", "en": "Nodes"},
    "configurator.algorithm": {"zh": "训练算法", "en": "Algorithm"},
    "configurator.algo.sft": {"zh": "SFT（全参）", "en": "SFT (full)"},
    "configurator.algo.sft-lora": {"zh": "SFT（LoRA）", "en": "SFT (LoRA)"},
    "configurator.algo.dpo": {"zh": "DPO（直接偏好优化）", "en": "DPO"},
    "configurator.algo.grpo": {"zh": "GRPO（组相对策略优化）", "en": "GRPO"},
    "configurator.algo.ppo": {"zh": "PPO（近端策略优化）", "en": "PPO"},
    "configurator.seq_len": {"zh": "序列长度", "en": "Sequence length"},
    "configurator.prompt_len": {"zh": "最大 prompt 长度", "en": "Max prompt length"},
    "configurator.response_len": {"zh": "最大 response 长度", "en": "Max response length"},
    "configurator.rollout_n": {"zh": "每个 prompt 采样数 (n)", "en": "Responses per prompt (n)"},
    "configurator.lora_rank": {"zh": "LoRA rank（0 = 自动）", "en": "LoRA rank (0 = decide)"},
    "configurator.lora_rank.help": {
        "zh": "0：先尝试全参训练，放不下时再推荐 LoRA；大于 0：强制使用该 rank 的 LoRA。",
        "en": "0: try full fine-tuning first and recommend LoRA only when it does not fit; above 0: always LoRA "
        "with this rank.",
    },
    "configurator.advanced": {"zh": "更多选项", "en": "More options"},
    "configurator.global_batch": {"zh": "全局 batch（0 = 自动）", "en": "Global batch (0 = decide)"},
    "configurator.auto.help": {"zh": "0 表示由配置器决定。", "en": "0 lets the configurator decide."},
    "configurator.samples": {"zh": "每轮样本数（RL 为 prompt 数）", "en": "Samples per epoch (RL: prompts)"},
    "configurator.epochs": {"zh": "训练轮数", "en": "Epochs"},
    "configurator.mfu": {"zh": "MFU（0 = 默认）", "en": "MFU (0 = default)"},
    "configurator.reward_model": {
        "zh": "使用与策略同尺寸的奖励模型",
        "en": "Reward model of the policy's size",
    },
    "configurator.mode": {"zh": "模式", "en": "Mode"},
    "configurator.mode.recommend": {"zh": "推荐配置", "en": "Recommend a configuration"},
    "configurator.mode.predict": {"zh": "预测给定配置", "en": "Predict a given configuration"},
    "configurator.strategy": {"zh": "分片策略", "en": "Strategy"},
    "configurator.micro_batch": {"zh": "每 GPU micro batch", "en": "Micro batch per GPU"},
    "configurator.gradient_checkpointing": {"zh": "梯度检查点", "en": "Gradient checkpointing"},
    "configurator.offload": {"zh": "CPU 卸载", "en": "CPU offload"},
    "configurator.precision": {"zh": "精度", "en": "Precision"},
    "configurator.fused_ce": {"zh": "融合交叉熵", "en": "Fused cross entropy"},
    "configurator.packing": {"zh": "序列打包", "en": "Sequence packing"},
    "configurator.token_budget": {
        "zh": "每 GPU token 预算（0 = 按 micro batch）",
        "en": "Tokens per GPU (0 = micro batch × length)",
    },
    "configurator.gmu": {
        "zh": "rollout 显存比例 (gpu_memory_utilization)",
        "en": "Rollout memory fraction (gpu_memory_utilization)",
    },
    "configurator.rollout_tp": {"zh": "rollout 张量并行", "en": "Rollout tensor parallel size"},
    "configurator.on": {"zh": "开启", "en": "on"},
    "configurator.off": {"zh": "关闭", "en": "off"},
    "configurator.yes": {"zh": "是", "en": "yes"},
    "configurator.no": {"zh": "否", "en": "no"},
    # results
    "configurator.result": {"zh": "结果", "en": "Result"},
    "configurator.fits": {"zh": "放得下", "en": "Fits"},
    "configurator.does_not_fit": {"zh": "放不下", "en": "Does not fit"},
    "configurator.peak": {"zh": "每 GPU 显存峰值", "en": "Peak per GPU"},
    "configurator.usable": {"zh": "GPU 可用显存", "en": "GPU memory"},
    "configurator.peak_phase": {"zh": "峰值阶段", "en": "Peak phase"},
    "configurator.params": {"zh": "参数量", "en": "Parameters"},
    "configurator.phase.train": {"zh": "训练更新", "en": "Update"},
    "configurator.phase.rollout": {"zh": "Rollout 生成", "en": "Rollout"},
    "configurator.phase.log_prob": {"zh": "log-prob 计算", "en": "Log-prob pass"},
    "configurator.phase.critic_update": {"zh": "Critic 更新", "en": "Critic update"},
    "configurator.part.parameters": {"zh": "参数", "en": "Parameters"},
    "configurator.part.gradients": {"zh": "梯度", "en": "Gradients"},
    "configurator.part.optimizer": {"zh": "优化器状态", "en": "Optimizer state"},
    "configurator.part.reference_model": {"zh": "参考模型", "en": "Reference model"},
    "configurator.part.critic": {"zh": "Critic 价值模型", "en": "Critic"},
    "configurator.part.reward_model": {"zh": "奖励模型", "en": "Reward model"},
    "configurator.part.framework_buffers": {"zh": "框架缓冲（FSDP/ZeRO）", "en": "Framework buffers (FSDP/ZeRO)"},
    "configurator.part.activations": {"zh": "激活值", "en": "Activations"},
    "configurator.part.logits": {"zh": "Logits / 损失", "en": "Logits / loss"},
    "configurator.part.transient": {"zh": "反向/重计算临时峰值", "en": "Backward / recompute transient"},
    "configurator.part.rollout_engine": {"zh": "vLLM（权重 + KV cache）", "en": "vLLM (weights + KV cache)"},
    "configurator.part.cuda_context": {"zh": "CUDA 上下文 + NCCL", "en": "CUDA context + NCCL"},
    "configurator.part.fragmentation": {"zh": "显存碎片", "en": "Fragmentation"},
    "configurator.note.rollout_kv_too_small": {
        "zh": "vLLM 的显存比例装不下一条完整序列的 KV cache：提高 gpu_memory_utilization 或张量并行。",
        "en": "vLLM's memory fraction cannot hold the KV cache of one full sequence: raise gpu_memory_utilization "
        "or the tensor parallel size.",
    },
    "configurator.note.fp16_no_bf16": {
        "zh": "这块 GPU 没有 bf16：计划按 fp16 混合精度（fp32 主权重 + fp16 计算 + loss scaling）计算，显存与 bf16 相同；"
        "verl 没有 fp16 主权重，所以 model_dtype 保持 float32，也不推荐 16 位的 actor。",
        "en": "This GPU has no bf16: the plan uses fp16 mixed precision (fp32 master weights, fp16 compute, loss "
        "scaling), the same memory as bf16; verl has no fp16 master weights, so model_dtype stays float32 and no "
        "16-bit actor is recommended.",
    },
    "configurator.note.dpo_platform_runs_trl_ddp": {
        "zh": "本平台用 TRL 的 DPOTrainer 以 DDP 运行 DPO（每张 GPU 一份 bf16 权重，不用 ZeRO/FSDP、offload 或融合 loss）："
        "这里预测的是另一种配置，由此创建的任务不会使用这种切分与设置，显存以 DDP 为准。",
        "en": "The platform runs DPO with TRL's DPOTrainer under DDP (bf16 weights replicated on every GPU, no "
        "ZeRO/FSDP, offload or fused loss): this predicts another configuration, and a job created from it will not "
        "use that sharding or those settings; its memory is the DDP one.",
    },
    "configurator.note.dpo_bf16_without_hardware_bf16": {
        "zh": "TRL 在任何 GPU 上都以 bf16 加载模型；这块 GPU 没有 bf16 硬件，torch 会模拟运行，显存按 bf16 计算，"
        "但速度会明显低于估算。",
        "en": "TRL loads the model in bf16 on any GPU; this GPU has no bf16 hardware, so torch emulates it: memory is "
        "counted for bf16, but it will run well below the estimated speed.",
    },
    "configurator.note.fp16_requested": {
        "zh": "按 fp16 混合精度（fp32 主权重 + fp16 计算 + loss scaling）计算，显存与 bf16 相同。",
        "en": "fp16 mixed precision (fp32 master weights, fp16 compute, loss scaling): the same memory as bf16.",
    },
    "configurator.note.no_flash_attention": {
        "zh": "这块 GPU 跑不了 flash-attn：不假设 verl 的 flash-attn 交叉熵核，按 verl 的逐行 log-softmax 回退计算 "
        "logits 显存（每 token 4V 字节，反向 6V），注意力用 SDPA memory-efficient。",
        "en": "flash-attn does not run on this GPU: the plan does not assume verl's flash-attn cross-entropy kernel but "
        "its row-wise log-softmax fallback for the logits (4V bytes per token kept, 6V in backward); attention "
        "uses SDPA memory-efficient.",
    },
    "configurator.problem.rollout_kv_too_small": {
        "zh": "vLLM 的显存比例 {rollout_gpu_memory_utilization} 只有 {rollout_gib} GiB（其中 {vllm_reserve_gib} GiB "
        "为保留），装不下每卡 {weights_gib} GiB 的 bf16 权重加一条 {needed_tokens} token 序列的 KV cache"
        "（{one_sequence_kv_gib} GiB）：只够 {kv_cache_tokens} 个 KV token。{fix}",
        "en": "vLLM's memory fraction {rollout_gpu_memory_utilization} is {rollout_gib} GiB ({vllm_reserve_gib} GiB of "
        "it reserved): it cannot hold the {weights_gib} GiB of bf16 weights per GPU plus the KV cache of one "
        "{needed_tokens}-token sequence ({one_sequence_kv_gib} GiB); room for {kv_cache_tokens} KV tokens. {fix}",
    },
    "configurator.problem.fix_gmu": {
        "zh": "把 rollout gpu_memory_utilization 提高到至少 {gmu}。",
        "en": "Raise the rollout gpu_memory_utilization to at least {gmu}.",
    },
    "configurator.problem.fix_tp": {
        "zh": "或使用张量并行 TP {tp}（至少 {gmu}）。",
        "en": "Or use rollout tensor parallelism TP {tp} (at least {gmu}).",
    },
    "configurator.problem.fix_none": {
        "zh": "需要更多 GPU 做张量并行，或更大显存的 GPU。",
        "en": "It needs more GPUs for tensor parallelism, or a GPU with more memory.",
    },
    "configurator.note.verl_offload_rollout_only": {
        "zh": "verl 的 param/optimizer offload 只在 rollout 与 log-prob 阶段释放显存；更新时会把参数与优化器状态重新载入 GPU，所以更新阶段的峰值不变。",
        "en": "verl's param/optimizer offload frees memory during rollout and log-prob passes only; the update loads "
        "parameters and optimizer state back onto the GPU, so the update's peak does not change.",
    },
    "configurator.recommendation": {"zh": "推荐配置", "en": "Recommendation"},
    "configurator.configuration": {"zh": "给定配置", "en": "Configuration"},
    "configurator.col.item": {"zh": "项目", "en": "Item"},
    "configurator.col.value": {"zh": "值", "en": "Value"},
    "configurator.col.meaning": {"zh": "含义", "en": "Meaning"},
    "configurator.col.seconds": {"zh": "秒", "en": "Seconds"},
    "configurator.rec.global_batch_size": {"zh": "推荐 Batch Size（全局）", "en": "Batch size (global)"},
    "configurator.rec.micro_batch_size_per_gpu": {"zh": "推荐 Micro Batch（每 GPU）", "en": "Micro batch (per GPU)"},
    "configurator.rec.sharding": {"zh": "分片策略（ZeRO Stage）", "en": "Sharding (ZeRO stage)"},
    "configurator.rec.memory": {"zh": "显存估算（峰值 / 总量）", "en": "Memory estimate (peak / total)"},
    "configurator.rec.lora": {"zh": "是否启用 LoRA", "en": "LoRA"},
    "configurator.rec.gradient_checkpointing": {"zh": "梯度检查点", "en": "Gradient checkpointing"},
    "configurator.rec.offload": {"zh": "CPU 卸载", "en": "CPU offload"},
    "configurator.rec.precision": {
        "zh": "精度（fp32-master = fp32 主权重 + bf16 计算；fp16 = fp32 主权重 + fp16 计算）",
        "en": "Precision (fp32-master = fp32 master weights, bf16 compute; fp16 = fp32 master weights, fp16 compute)",
    },
    "configurator.rec.fused_ce": {
        "zh": "融合交叉熵（verl use_fused_kernels）",
        "en": "Fused cross entropy (verl use_fused_kernels)",
    },
    "configurator.rec.max_token_len_per_gpu": {
        "zh": "动态 batch 每 GPU token 上限",
        "en": "Dynamic batch: tokens per GPU",
    },
    "configurator.rec.ppo_mini_batch_size": {
        "zh": "ppo_mini_batch_size（prompt 数）",
        "en": "ppo_mini_batch_size (prompts)",
    },
    "configurator.rec.rollout_n": {"zh": "每个 prompt 采样数 n", "en": "Responses per prompt n"},
    "configurator.rec.critic_max_token_len_per_gpu": {
        "zh": "Critic 更新每 GPU token 上限（PPO）",
        "en": "Critic update: tokens per GPU (PPO)",
    },
    "configurator.rec.log_prob_max_token_len_per_gpu": {
        "zh": "log-prob 每 GPU token 上限",
        "en": "Log-prob tokens per GPU",
    },
    "configurator.rec.rollout_gpu_memory_utilization": {
        "zh": "rollout gpu_memory_utilization",
        "en": "Rollout gpu_memory_utilization",
    },
    "configurator.rec.rollout_tensor_parallel_size": {"zh": "rollout 张量并行", "en": "Rollout tensor parallel size"},
    "configurator.derived": {"zh": "batch 换算（verl 术语）", "en": "Batch arithmetic (verl vocabulary)"},
    "configurator.derived.gradient_accumulation_steps": {"zh": "梯度累积步数", "en": "Gradient accumulation steps"},
    "configurator.derived.gradient_accumulation_steps.help": {
        "zh": "每次优化器更新前，每张 GPU 依次跑的 micro batch 个数。",
        "en": "Micro batches each GPU runs before one optimizer update.",
    },
    "configurator.derived.optimizer_steps_per_global_step": {
        "zh": "每个全局 step 的优化器更新次数",
        "en": "Optimizer steps per global step",
    },
    "configurator.derived.optimizer_steps_per_global_step.help": {
        "zh": "RL：train_batch_size / ppo_mini_batch_size × ppo_epochs；SFT/DPO 为 1。",
        "en": "RL: train_batch_size / ppo_mini_batch_size × ppo_epochs; SFT/DPO: 1.",
    },
    "configurator.derived.sequences_per_step": {"zh": "每个 step 的序列数", "en": "Sequences per step"},
    "configurator.derived.sequences_per_step.help": {
        "zh": "RL：train_batch_size × n（prompt 数乘以每个 prompt 的回答数）。",
        "en": "RL: train_batch_size × n (prompts times responses per prompt).",
    },
    "configurator.derived.sequences_per_mini_batch": {
        "zh": "每个 mini batch 的序列数",
        "en": "Sequences per mini batch",
    },
    "configurator.derived.sequences_per_mini_batch.help": {
        "zh": "ppo_mini_batch_size 按 prompt 计，verl 内部会乘以 n。",
        "en": "ppo_mini_batch_size counts prompts; verl multiplies it by n internally.",
    },
    "configurator.derived.sequences_per_mini_batch_per_gpu": {
        "zh": "每 GPU 每个 mini batch 的序列数",
        "en": "Sequences per mini batch per GPU",
    },
    "configurator.derived.sequences_per_mini_batch_per_gpu.help": {
        "zh": "ppo_mini_batch_size × n / GPU 数；它必须能被每 GPU micro batch 整除。",
        "en": "ppo_mini_batch_size × n / GPUs; it must be divisible by the micro batch per GPU.",
    },
    "configurator.derived.micro_batches_per_optimizer_step_dynamic": {
        "zh": "动态 batch 下的 micro batch 数（上限）",
        "en": "Micro batches per update with dynamic batching (at most)",
    },
    "configurator.derived.micro_batches_per_optimizer_step_dynamic.help": {
        "zh": "开启 use_dynamic_bsz 时按 token 预算打包，序列都达到最大长度时的 micro batch 数。",
        "en": "With use_dynamic_bsz, micro batches are packed to the token budget; this is their count when every "
        "sequence has the maximum length.",
    },
    "configurator.derived.tokens_per_step": {"zh": "每个 step 的 token 数（上限）", "en": "Tokens per step (at most)"},
    "configurator.derived.tokens_per_step.help": {
        "zh": "所有序列都达到最大长度时一个 step 处理的 token 数。",
        "en": "Tokens one step processes when every sequence has the maximum length.",
    },
    "configurator.time": {"zh": "时间估算", "en": "Time estimate"},
    "configurator.time.step": {"zh": "每 step 秒数", "en": "Seconds per step"},
    "configurator.time.total": {"zh": "整个训练", "en": "Whole run"},
    "configurator.time.steps": {"zh": "共 {steps} 步", "en": "{steps} steps"},
    "configurator.time.mfu": {"zh": "假设的 MFU", "en": "Assumed MFU"},
    "configurator.time.basis": {
        "zh": "按 FLOPs ÷ (GPU 数 × {tflops} TFLOPS bf16 × MFU {mfu}) 估算（重计算计入 FLOPs）；RL 生成按显存带宽的 roofline 估算，假设回答都达到最大长度。",
        "en": "FLOPs ÷ (GPUs × {tflops} TFLOPS bf16 × MFU {mfu}), recomputation counted; RL generation is a memory-"
        "bandwidth roofline with every response at its maximum length.",
    },
    "configurator.time.part.compute": {"zh": "前向 + 反向", "en": "Forward + backward"},
    "configurator.time.part.reference": {"zh": "参考模型前向", "en": "Reference forward"},
    "configurator.time.part.communication_not_hidden": {
        "zh": "未被计算掩盖的通信",
        "en": "Communication not hidden by compute",
    },
    "configurator.time.part.offload": {"zh": "CPU 卸载搬运", "en": "CPU offload transfers"},
    "configurator.time.part.gen": {"zh": "生成 (gen)", "en": "Generation (gen)"},
    "configurator.time.part.old_log_prob": {"zh": "旧策略 log-prob", "en": "Old log-prob"},
    "configurator.time.part.ref": {"zh": "参考模型 log-prob", "en": "Reference log-prob"},
    "configurator.time.part.values": {"zh": "Critic 估值", "en": "Critic values"},
    "configurator.time.part.update_critic": {"zh": "Critic 更新", "en": "Critic update"},
    "configurator.time.part.update_actor": {"zh": "Actor 更新", "en": "Actor update"},
    "configurator.time.part.weight_sync": {"zh": "权重同步到 vLLM", "en": "Weight sync to vLLM"},
    "configurator.apply": {"zh": "应用到新任务", "en": "Apply to a new job"},
    "configurator.apply.help": {
        "zh": "打开新建任务表单，并填入上面的推荐值。",
        "en": "Opens the new-job form with the values above filled in.",
    },
    "configurator.nothing_fits": {
        "zh": "没有任何配置能放下（任何 micro batch 都会 OOM）。以下改动可以放下：",
        "en": "No configuration fits (any micro batch would run out of memory). These changes would fit:",
    },
    "configurator.predict_does_not_fit": {
        "zh": "这个配置放不下：峰值 {peak} GiB 超过 GPU 的 {usable} GiB。切换到“推荐配置”可查看能放下的设置。",
        "en": "This configuration does not fit: the peak of {peak} GiB exceeds the GPU's {usable} GiB. Switch to "
        "“Recommend a configuration” to see settings that fit.",
    },
    "configurator.suggest.more_gpus": {
        "zh": "更多 GPU：每节点 {gpus_per_node} 张 × {nodes} 个节点（峰值 {peak_gib_per_gpu} GiB/GPU）",
        "en": "More GPUs: {gpus_per_node} per node × {nodes} node(s) (peak {peak_gib_per_gpu} GiB per GPU)",
    },
    "configurator.suggest.more_gpus_lora": {
        "zh": "更多 GPU 并启用 LoRA：每节点 {gpus_per_node} 张 × {nodes} 个节点（峰值 {peak_gib_per_gpu} GiB/GPU）",
        "en": "More GPUs with LoRA: {gpus_per_node} per node × {nodes} node(s) (peak {peak_gib_per_gpu} GiB per GPU)",
    },
    "configurator.suggest.lora": {
        "zh": "启用 LoRA（rank {lora_rank}）（峰值 {peak_gib_per_gpu} GiB/GPU）",
        "en": "LoRA (rank {lora_rank}) (peak {peak_gib_per_gpu} GiB per GPU)",
    },
    "configurator.suggest.shorter_sequence": {
        "zh": "缩短序列到 {length}（峰值 {peak_gib_per_gpu} GiB/GPU）",
        "en": "A shorter sequence: {length} tokens (peak {peak_gib_per_gpu} GiB per GPU)",
    },
    "configurator.suggest.shorter_response": {
        "zh": "缩短最大 response 到 {length}（峰值 {peak_gib_per_gpu} GiB/GPU）",
        "en": "A shorter max response: {length} tokens (peak {peak_gib_per_gpu} GiB per GPU)",
    },
    "configurator.suggest.bigger_gpu": {
        "zh": "更大显存的 GPU：{gpu}（峰值 {peak_gib_per_gpu} GiB/GPU）",
        "en": "A GPU with more memory: {gpu} (peak {peak_gib_per_gpu} GiB per GPU)",
    },
    "configurator.suggest.none": {
        "zh": "在 16 节点 × 8 卡以内找不到能放下的配置：请换更小的模型。",
        "en": "Nothing within 16 nodes × 8 GPUs fits: choose a smaller model.",
    },
}
