"""The shared training loop on a toy regression: schedules, clipping, crash-safe exact resume, the time limit."""

import json
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from valle.errors import ConfigError
from valle.train.loop import CHECKPOINT, Loop, Settings, cosine_decay, linear_decay


class Toy(Loop):
    """A linear model and a separate head fit to random batches drawn from the global torch generator."""

    name, shown = "toy", {"loss": "loss"}

    def __init__(self, out: Path, steps: int = 6, crash_at: int | None = None, grad_clip: float = 1.0) -> None:
        torch.manual_seed(0)
        model, self.head = nn.Linear(4, 1), nn.Linear(4, 1)
        trained = [*model.parameters(), *self.head.parameters()]
        super().__init__(out, Settings(steps, log_every=1, checkpoint_every=3, grad_clip=grad_clip), model,
                         torch.optim.AdamW(trained, lr=0.1), trained, "cpu")
        self.crash_at, self.saved = crash_at, 0

    def learning_rate(self, step: int) -> float:
        return linear_decay(step, 0.1, 2, self.settings.steps)

    def batch_loss(self) -> tuple[Tensor, dict[str, float]]:
        if self.step == self.crash_at:
            raise KeyboardInterrupt  # a kill between checkpoints
        x = torch.randn(8, 4)
        return (self.model(x) + self.head(x) - x.sum(1, keepdim=True)).pow(2).mean(), {}

    def save_model(self) -> None:
        self.saved += 1

    def state(self) -> dict:
        return super().state() | {"head": self.head.state_dict(), "rng": torch.get_rng_state()}

    def load_state(self, state: dict) -> None:
        super().load_state(state)
        self.head.load_state_dict(state["head"])
        torch.set_rng_state(state["rng"])


def _records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_schedules_warm_up_then_decay():
    assert [linear_decay(s, 1.0, 2, 6) for s in range(6)] == [0.5, 1.0, 1.0, 0.75, 0.5, 0.25]
    assert cosine_decay(1, 1.0, 2, 6) == 1.0 and cosine_decay(6, 1.0, 2, 6) == pytest.approx(0.1)
    assert cosine_decay(100, 1.0, 2, 6) == pytest.approx(0.1)  # a run resumed to train longer stays at the floor


def test_every_trained_parameter_is_clipped_together(tmp_path):
    toy = Toy(tmp_path, grad_clip=1e-3)
    toy.fit(stop_after=1)
    torch.manual_seed(0)  # the toy's first batch again: its gradient norm covers the head's parameters too
    model, head = nn.Linear(4, 1), nn.Linear(4, 1)
    batch = torch.randn(8, 4)
    (model(batch) + head(batch) - batch.sum(1, keepdim=True)).pow(2).mean().backward()
    grads = [p.grad for p in [*model.parameters(), *head.parameters()]]
    assert _records(tmp_path)[0]["grad_norm"] == pytest.approx(torch.cat([g.flatten() for g in grads]).norm().item())


def test_a_killed_run_resumes_exactly_and_forgets_what_it_logged_after_its_checkpoint(tmp_path):
    straight = Toy(tmp_path / "straight")
    straight.fit()
    with pytest.raises(KeyboardInterrupt):
        Toy(tmp_path / "killed", crash_at=4).fit()  # checkpoint at 3, records to 4
    assert [r["step"] for r in _records(tmp_path / "killed")] == [1, 2, 3, 4]
    with pytest.raises(ConfigError, match="already holds a run"):
        Toy(tmp_path / "killed").fit()
    resumed = Toy(tmp_path / "killed")
    resumed.fit(resume=True)
    assert _records(tmp_path / "killed") == _records(tmp_path / "straight")
    assert all(torch.equal(a, b) for a, b in zip(straight.trained, resumed.trained)) and resumed.saved == 1
    with pytest.raises(ConfigError, match="--resume given but .*checkpoint.pt does not exist"):
        Toy(tmp_path / "none").fit(resume=True)


def test_the_time_limit_ends_a_run_with_a_checkpoint_and_the_model(tmp_path, capsys):
    toy = Toy(tmp_path, steps=1000)
    toy.fit(time_limit=0.0)
    assert toy.step == 0 and toy.saved == 1 and (tmp_path / CHECKPOINT).is_file()
    assert "stopped at step 0 of 1000 (time limit)" in capsys.readouterr().out
