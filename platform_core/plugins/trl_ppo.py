"""Checkpoint/resume for trl.experimental.ppo.PPOTrainer (TRL 1.12.0), which has neither (a runner plugin).

PPOTrainer.train() takes no resume_from_checkpoint argument, restarts global_step at 0, ignores
control.should_training_stop, and its checkpoints hold only the policy (save_model saves `model.policy`),
the optimizer of policy+value, scheduler, RNG and trainer_state -- not the value model.

ResumablePPOTrainer:
  * _save_checkpoint additionally writes <checkpoint>/value_model (save_pretrained).
  * train(resume_from_checkpoint=dir|True) loads optimizer+scheduler, sets global_step/episode from
    trainer_state.json, runs only the remaining updates, keeps max_steps = the original total, skips the
    already-consumed batches of the (shuffled) dataloader and then restores the checkpoint's RNG states.
    Policy / value weights must be loaded by the caller (build the trainer from <ckpt> and <ckpt>/value_model);
    the reference and reward models stay the originals.
"""

import json
import os

from transformers import TrainerCallback
from transformers.trainer_utils import get_last_checkpoint
from trl.experimental.ppo import PPOTrainer


class _SkipThenRestore:
    """Wraps the prepared dataloader: the first iteration skips `skip` batches, then restores RNG from ckpt."""

    def __init__(self, inner, skip, on_skipped):
        self.inner, self.skip, self.on_skipped, self.first = inner, skip, on_skipped, True

    def __len__(self):
        return len(self.inner)

    def __iter__(self):
        it = iter(self.inner)
        if self.first:
            self.first = False
            for _ in range(self.skip):
                next(it)
            self.on_skipped()
        return it


class _SetResumeState(TrainerCallback):
    def __init__(self, global_step, episode, max_steps):
        self.vals = (global_step, episode, max_steps)
        self.done = False

    def on_train_begin(self, args, state, control, **kw):
        if not self.done:  # PPOTrainer.train() just reset these to 0 / the remaining count
            state.global_step, state.episode, state.max_steps = self.vals
            self.done = True


class ResumablePPOTrainer(PPOTrainer):
    def _save_checkpoint(self, model, trial):
        super()._save_checkpoint(model, trial)
        if self.args.should_save:
            ckpt = os.path.join(self.args.output_dir, f"checkpoint-{self.state.global_step}")
            self.accelerator.unwrap_model(self.model).value_model.save_pretrained(os.path.join(ckpt, "value_model"))

    def train(self, resume_from_checkpoint=None):
        if not resume_from_checkpoint:
            return super().train()
        ckpt = get_last_checkpoint(self.args.output_dir) if resume_from_checkpoint is True else resume_from_checkpoint
        if ckpt is None:
            raise ValueError(f"no checkpoint found in {self.args.output_dir}")
        with open(os.path.join(ckpt, "trainer_state.json")) as f:
            st = json.load(f)
        done, total = st["global_step"], self.args.num_total_batches
        # PPOTrainer.__init__ does not run Trainer.__init__, so attributes Trainer helpers read may be missing
        for attr in ("is_fsdp_xla_v1_enabled", "is_fsdp_xla_v2_enabled"):
            if not hasattr(self, attr):
                setattr(self, attr, False)
        self._load_optimizer_and_scheduler(ckpt)
        steps_per_epoch = len(self.dataloader)
        # Batches of the first epoch can be replayed exactly (its permutation is drawn right after __init__ reset
        # the seed); later epochs' permutations depend on RNG consumed during training -> data order may differ.
        self.dataloader = _SkipThenRestore(
            self.dataloader, done % steps_per_epoch if done < steps_per_epoch else 0, lambda: self._load_rng_state(ckpt)
        )
        cb = _SetResumeState(done, st.get("episode", done * self.args.batch_size), total)
        self.callback_handler.callbacks.insert(0, cb)
        self.args.num_total_batches = total - done
        try:
            return super().train()
        finally:
            self.args.num_total_batches = total
            self.callback_handler.remove_callback(cb)
