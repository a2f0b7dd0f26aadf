"""One rank of ``loopline train llm``, started by ``torchrun`` (``python -m
loopline.llm.worker SETTINGS.toml``).

FSDP2 shards each block, then the whole model, over a one-dimensional device mesh (gloo
on CPU, NCCL on GPU); with bf16 the weights and activations are bf16 and the gradient
reductions fp32. A step takes the sampler's next global batch, this rank's share of it
in micro-batches (gradients synchronised on the last), clips the gradient norm, steps
AdamW and the warmup + cosine schedule. With ``reshard_after_forward = false`` a
block's parameters are gathered once a step and held until the last micro-batch's
backward (ZeRO-2's memory: the whole model's parameters on each rank, for a quarter
of the all-gathers with four micro-batches).

Checkpoints (torch.distributed.checkpoint) hold the model, the optimizer, the schedule,
the sampler and each rank's RNG state. A checkpoint is written under a hidden temporary
name, then renamed by rank 0 once every rank has written its part: a checkpoint cut
short is never found, and a restart resumes from the last whole one. With
``async_checkpoints`` the state is copied and written by a background thread (on a gloo
group of its own) while training goes on; it is made visible at the next checkpoint
or the run's end. DCP reshards on load, so a checkpoint written by N ranks resumes on
fewer.

``LOOPLINE_LLM_CRASH=RANK:STEP`` kills that rank (SIGKILL) after that step, once (a
marker file in the run folder remembers it): the fault the tests and the demo inject.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

from loopline.llm.configs import named
from loopline.llm.data import Sampler, Tokens, bits_per_byte, open_manifest
from loopline.llm.model import Transformer
from loopline.llm.plan import GPUS
from loopline.llm.settings import TrainSettings, load

KEEP_CHECKPOINTS = 2
# a collective or a connection that waits this long fails (and torchrun restarts the
# group) rather than hanging
INIT_TIMEOUT_S = 60


class Run:
    """The training state of this rank and how to step, save and resume it."""

    def __init__(self, settings: TrainSettings) -> None:
        self.settings = s = settings
        self.rank, self.world = dist.get_rank(), dist.get_world_size()
        self.device = (
            torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
            if torch.cuda.is_available()
            else torch.device("cpu")
        )
        manifest = open_manifest(s.data)
        self.config = named(s.shape, vocab_size=manifest.vocab_size, seq_len=s.seq_len)
        torch.manual_seed(s.seed)  # the same initial weights on every rank, then sharded
        model = Transformer(self.config, checkpointing=s.activation_checkpointing)
        model.to(self.device)
        mesh = init_device_mesh(self.device.type, (self.world,))
        policy = (
            MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
            if s.precision == "bf16"
            else MixedPrecisionPolicy()
        )
        reshard = s.reshard_after_forward
        for layer in model.layers:
            if s.compile:
                layer.compile()
            fully_shard(layer, mesh=mesh, mp_policy=policy, reshard_after_forward=reshard)
        fully_shard(model, mesh=mesh, mp_policy=policy, reshard_after_forward=reshard)
        self.model: Any = model  # FSDP2 adds its methods to the module's class
        decay = [p for p in model.parameters() if p.dim() > 1]
        plain = [p for p in model.parameters() if p.dim() <= 1]
        self.optimizer = torch.optim.AdamW(
            [
                {"params": decay, "weight_decay": s.weight_decay},
                {"params": plain, "weight_decay": 0},
            ],
            lr=s.lr,
            betas=(0.9, 0.95),
        )
        self.schedule = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: s.lr_at(step) / s.lr
        )
        self.train, self.val = Tokens(manifest, "train"), Tokens(manifest, "val")
        self.val_bytes_per_token = manifest.bytes("val") / manifest.tokens("val")
        self.sampler = Sampler(len(self.train), s.seq_len, s.global_batch, seed=s.seed)
        _, self.accumulate = s.per_rank(self.world)
        self.step = 0
        self.checkpoints = s.out / "checkpoints"
        self.pending: tuple[Any, Path, Path] | None = None  # a checkpoint being written
        self.files = dist.new_group(backend="gloo") if s.async_checkpoints else None
        self.peak_flops = (
            s.peak_tflops * 1e12 if s.peak_tflops is not None else _peak_flops(self.device)
        )

    # --- one step ---------------------------------------------------------------------

    def windows(self, tokens: Tokens, starts: Any) -> torch.Tensor:
        n = self.settings.seq_len + 1
        return torch.stack([torch.from_numpy(tokens.window(int(a), n)) for a in starts]).to(
            self.device
        )

    def train_step(self) -> dict[str, float]:
        started = time.perf_counter()
        batch = self.windows(self.train, self.sampler.next(self.rank, self.world))
        micro = self.settings.micro_batch
        total = torch.zeros((), device=self.device)
        for i in range(self.accumulate):
            last = i == self.accumulate - 1
            self.model.set_requires_gradient_sync(last)
            if not self.settings.reshard_after_forward:
                self.model.set_reshard_after_backward(last)  # gathered once a step
            loss = self.model.loss(batch[i * micro : (i + 1) * micro]) / self.accumulate
            loss.backward()
            total += loss.detach()
        norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.settings.clip)
        grad_norm = float(norm.full_tensor() if hasattr(norm, "full_tensor") else norm)
        lr = self.schedule.get_last_lr()[0]
        self.optimizer.step()
        self.schedule.step()
        self.optimizer.zero_grad(set_to_none=True)
        dist.all_reduce(total)
        self.step += 1
        seconds = time.perf_counter() - started
        tokens = self.settings.global_batch * self.settings.seq_len
        out: dict[str, float] = {
            "step": self.step,
            "loss": float(total) / self.world,
            "grad_norm": grad_norm,
            "lr": float(lr),
            "tokens_per_s": tokens / seconds,
            "seconds": seconds,
            "time": time.time(),  # when the step ended
        }
        if self.peak_flops:
            flops = self.config.flops_per_token() * tokens / seconds
            out["mfu"] = flops / (self.peak_flops * self.world)
        if self.device.type == "cuda":
            out["memory_gib"] = torch.cuda.max_memory_allocated(self.device) / 1024**3
        else:  # the process's peak resident memory (Linux: KiB)
            out["memory_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
        return out

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Mean loss over the first ``eval_batches`` global batches of held-out windows
        (this rank's share of each), and the same in bits per byte."""
        s = self.settings
        windows = (len(self.val) - 1) // s.seq_len
        n = min(windows - windows % self.world, s.eval_batches * s.global_batch)
        mine = [a * s.seq_len for a in range(self.rank, n, self.world)]
        total = torch.zeros(2, device=self.device)
        for i in range(0, len(mine), s.micro_batch):
            batch = self.windows(self.val, mine[i : i + s.micro_batch])
            total += torch.stack(
                [
                    self.model.loss(batch).float() * len(batch),
                    torch.tensor(len(batch), dtype=torch.float32, device=self.device),
                ]
            )
        dist.all_reduce(total)
        loss = float(total[0] / total[1])
        return {
            "val_loss": loss,
            "val_bits_per_byte": bits_per_byte(loss, 1, self.val_bytes_per_token),
        }

    # --- checkpoints ------------------------------------------------------------------

    def save(self) -> None:
        """Write a checkpoint of this step under a hidden name; it is made visible
        (:meth:`commit`) once every rank has written its part: at once, or, with
        ``async_checkpoints``, at the next checkpoint or the run's end, the files being
        written from a copy of the state by a background thread meanwhile."""
        self.commit()  # at most one checkpoint in flight
        final = self.checkpoints / f"step-{self.step:06d}"
        partial = self.checkpoints / f".step-{self.step:06d}.partial"
        if self.rank == 0:
            shutil.rmtree(partial, ignore_errors=True)
            partial.mkdir(parents=True)
        dist.barrier()
        torch.save(torch.get_rng_state(), partial / f"rng-{self.rank}.pt")
        if self.rank == 0:
            trainer = {
                "step": self.step,
                "schedule": self.schedule.state_dict(),
                "sampler": self.sampler.state_dict(),
                "world": self.world,
            }
            torch.save(trainer, partial / "trainer.pt")
        model_state, optimizer_state = get_state_dict(self.model, self.optimizer)
        state = {"model": model_state, "optimizer": optimizer_state}
        if self.settings.async_checkpoints:
            # staged (copied) before it returns; written and planned on a gloo group of
            # its own, beside the training's collectives
            future = dcp.async_save(state, checkpoint_id=partial, process_group=self.files)  # type: ignore[attr-defined]
        else:
            dcp.save(state, checkpoint_id=partial)  # type: ignore[attr-defined]
            future = None
        self.pending = (future, partial, final)
        if future is None:
            self.commit()

    def commit(self) -> None:
        """Wait for the checkpoint in flight, if any, and make it visible."""
        if self.pending is None:
            return
        future, partial, final = self.pending
        self.pending = None
        if future is not None:
            future.result()
        dist.barrier()
        if self.rank == 0:
            os.replace(partial, final)
            for old in sorted(self.checkpoints.glob("step-*"))[:-KEEP_CHECKPOINTS]:
                shutil.rmtree(old, ignore_errors=True)
        dist.barrier()

    def resume(self) -> bool:
        """Load the newest whole checkpoint, if any."""
        found = latest(self.checkpoints)
        if found is None:
            return False
        model_state, optimizer_state = get_state_dict(self.model, self.optimizer)
        state: dict[str, Any] = {"model": model_state, "optimizer": optimizer_state}
        dcp.load(state, checkpoint_id=found)  # type: ignore[attr-defined]
        set_state_dict(
            self.model,
            self.optimizer,
            model_state_dict=state["model"],
            optim_state_dict=state["optimizer"],
        )
        trainer = torch.load(found / "trainer.pt", weights_only=False)
        self.step = trainer["step"]
        self.schedule.load_state_dict(trainer["schedule"])
        self.sampler.load_state_dict(trainer["sampler"])
        rng = found / f"rng-{self.rank}.pt"
        torch.set_rng_state(torch.load(rng if rng.exists() else found / "rng-0.pt"))
        return True


def latest(checkpoints: Path) -> Path | None:
    """The newest whole checkpoint (a partial one has a hidden name and is skipped)."""
    whole = [p for p in sorted(checkpoints.glob("step-*")) if (p / "trainer.pt").exists()]
    return whole[-1] if whole else None


def _peak_flops(device: torch.device) -> float | None:
    """The GPU's dense bf16 peak, when the planner knows it."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device).lower()
    for key, gpu in GPUS.items():
        if key in name:
            return gpu.peak_tflops * 1e12
    return None


def train(settings: TrainSettings) -> None:
    run = Run(settings)
    resumed = run.resume()
    log = settings.out / "metrics.jsonl"
    crash = os.environ.get("LOOPLINE_LLM_CRASH", "")
    marker = settings.out / "crashed-once"
    if run.rank == 0:
        settings.out.mkdir(parents=True, exist_ok=True)
        _append(
            log,
            {"event": "resumed" if resumed else "started", "step": run.step, "world": run.world},
        )
    while run.step < settings.steps:
        record = run.train_step()
        last = run.step == settings.steps
        if settings.eval_every and (run.step % settings.eval_every == 0 or last):
            record |= run.evaluate()
        if run.rank == 0:
            _append(log, record)  # the launcher follows it (loopline.llm.follow)
        if crash == f"{run.rank}:{run.step}" and not marker.exists():
            marker.touch()
            os.kill(os.getpid(), signal.SIGKILL)
        if run.step % settings.checkpoint_every == 0 or last:
            run.save()
    run.commit()


def _append(path: Path, record: dict[str, Any]) -> None:
    with path.open("a") as f:
        f.write(json.dumps(record) + "\n")


def main(argv: list[str]) -> None:
    settings = load(Path(argv[0]))
    timeout = timedelta(seconds=INIT_TIMEOUT_S)
    store, rank, world = next(dist.rendezvous("env://", timeout=timeout))  # type: ignore[attr-defined]
    # each restart in keys of its own: torchrun hands a restarted group the same store,
    # and a restarted gloo group read the dead group's addresses from it (connection
    # refused, or a hang, in about one restart of two)
    attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    dist.init_process_group(
        "nccl" if torch.cuda.is_available() else "gloo",
        store=dist.PrefixStore(f"loopline/attempt-{attempt}", store),  # type: ignore[attr-defined]
        rank=rank,
        world_size=world,
        timeout=timeout,
    )
    train(settings)
    dist.destroy_process_group()
    sys.stdout.flush()
    sys.stderr.flush()
    # on gloo, leaving through the interpreter's teardown aborts in about half the runs
    # (measured, issue 17): leave at once once the group is down
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])
