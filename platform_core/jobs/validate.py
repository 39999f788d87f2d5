"""Validation of a generated verl run before launch, with verl's own Hydra config and checks (no GPU needed).

`validate_verl_overrides("ppo_trainer", overrides)` composes verl's config the way its entry point would and runs
`verl.utils.config.validate_config`, so an unknown key or a batch size verl would reject is caught in the form.
Importing verl and Hydra takes several seconds the first time; later validations take a fraction of a second.
"""

from __future__ import annotations

import os
import threading
import warnings

from platform_core.errors import InvalidInput

_lock = threading.Lock()  # Hydra's global state is not thread-safe (Streamlit runs sessions in threads)
VLLM_MAX_LORA_RANK = 512  # vllm.config.lora.MaxLoRARanks' largest value (verl's fallback list agrees)
NUMERIC_KEYS = {
    "sft_trainer_engine": ("optim.lr", "optim.lr_warmup_steps_ratio"),
    "ppo_trainer": ("actor_rollout_ref.actor.optim.lr", "actor_rollout_ref.rollout.gpu_memory_utilization"),
}


def _config_dir() -> str:
    import verl

    return os.path.join(os.path.dirname(verl.__file__), "trainer", "config")


def _vllm_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("vllm") is not None


def compose_verl(config_name: str, overrides: list[str]):
    """Compose <verl>/trainer/config/<config_name>.yaml with overrides; raise InvalidInput with Hydra's reason."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    overrides = [o for o in overrides if not o.startswith("hydra.")]
    with _lock:
        GlobalHydra.instance().clear()
        try:
            with initialize_config_dir(config_dir=_config_dir(), version_base=None):
                cfg = compose(config_name=config_name, overrides=list(overrides))
            OmegaConf.to_container(cfg, resolve=True)
            return cfg
        except (HydraException, OmegaConfBaseException) as exc:
            message = str(exc).splitlines()[0]
            cause = exc.__cause__ or exc.__context__
            if cause is not None and str(cause).splitlines()[0] not in message:
                message += f" ({str(cause).splitlines()[0]})"
            raise InvalidInput(f"verl rejects the configuration: {message}") from exc
        finally:
            GlobalHydra.instance().clear()


def _check_numbers(cfg, config_name: str) -> None:
    from omegaconf import OmegaConf

    for key in NUMERIC_KEYS.get(config_name, ()):
        value = OmegaConf.select(cfg, key)
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise InvalidInput(f"verl rejects the configuration: {key}={value!r} is not a number")


def validate_verl_overrides(config_name: str, overrides: list[str]) -> None:
    """Raise InvalidInput if verl would refuse these overrides (unknown keys, batch sizes, types)."""
    cfg = compose_verl(config_name, overrides)
    _check_numbers(cfg, config_name)
    if config_name == "sft_trainer_engine":
        from verl.utils.config import omega_conf_to_dataclass

        for key in ("engine", "optim", "checkpoint"):
            try:
                omega_conf_to_dataclass(cfg[key])
            except Exception as exc:  # noqa: BLE001 - verl's dataclasses raise assorted errors on bad values
                raise InvalidInput(f"verl rejects the configuration: {key}: {_reason(exc)}") from exc
        return
    from omegaconf import OmegaConf, open_dict
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import validate_config

    lora_rank = OmegaConf.select(cfg, "actor_rollout_ref.model.lora_rank") or 0
    if lora_rank > 0 and not _vllm_installed():
        # verl's last check asks vLLM for its LoRA rank limit, which needs vLLM installed (it is, on the GPU
        # server; not on a manager node): check the documented limit here and let verl check the rest.
        if lora_rank > VLLM_MAX_LORA_RANK:
            raise InvalidInput(
                f"verl rejects the configuration: lora_rank must be <= {VLLM_MAX_LORA_RANK} for the "
                f"vLLM rollout, got {lora_rank}"
            )
        with open_dict(cfg):
            cfg.actor_rollout_ref.model.lora_rank = 0
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            validate_config(cfg, use_reference_policy=need_reference_policy(cfg), use_critic=need_critic(cfg))
    except Exception as exc:  # noqa: BLE001 - asserts, ValueErrors and Hydra-wrapped dataclass errors alike
        raise InvalidInput(f"verl rejects the configuration: {_reason(exc)}") from exc


def _reason(exc: BaseException) -> str:
    """The innermost error's message, with the config section Hydra names (`full_key: ...`) when there is one."""
    root = exc
    while root.__cause__ is not None:
        root = root.__cause__
    where = next((line.split(":", 1)[1].strip() for line in str(exc).splitlines() if line.startswith("full_key:")), "")
    message = str(root).strip().splitlines()[0] if str(root).strip() else type(root).__name__
    return f"{message} (in {where})" if where else message
