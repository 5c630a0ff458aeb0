"""How long the demo waits before it calls a step stuck: the deadlines measured at the demo's
3,000 users, scaled with the data set's users (every stage's work grows with them), never below
the small demo's."""

from __future__ import annotations

from dataclasses import dataclass

BASE_USERS = 3_000
# Each a deadline, not a wait: at 3,000 users the steps take a fraction of it.
COMMAND_S = 900.0  # a command run to completion: generate, train, retrain, report
REPLAY_S = 1200.0  # a replay part, until the stream has closed its last day
RELOAD_S = 120.0  # the worker switching to the retrained model (between two of its batches)
WORKER_S = 900.0  # the worker scoring and recommending the last day after the replay ...
# ... unless it publishes nothing for this long: a stuck worker at any size (not scaled: the
# worker publishes batch by batch, and no batch takes minutes).
WORKER_STALL_S = 300.0


@dataclass(frozen=True)
class Timeouts:
    scale: float

    @classmethod
    def for_users(cls, users: int) -> Timeouts:
        return cls(max(1.0, users / BASE_USERS))

    @property
    def command_s(self) -> float:
        return COMMAND_S * self.scale

    @property
    def replay_s(self) -> float:
        return REPLAY_S * self.scale

    @property
    def reload_s(self) -> float:
        return RELOAD_S * self.scale

    @property
    def worker_s(self) -> float:
        return WORKER_S * self.scale
