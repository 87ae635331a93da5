"""Stage two of a search that chooses by trials: short trainings choose, run as an Optuna study.

Every kept candidate is one enqueued trial of one Optuna study (``direction: maximize`` on
validation accuracy), pruned by Optuna's :class:`~optuna.pruners.SuccessiveHalvingPruner`:
a trial reports its accuracy at every rung (step = chunks trained, the pruner's resource; it
is validated nowhere else) and stops at a rung where it is not among the best
``1 / reduction_factor``.
Candidates are enqueued best-first (most parameters first: size is the best training-free
predictor measured), so the trials that set each rung's bar come first.

Where the study lives:

- by default in the run directory, ``study.journal`` (Optuna's journal file storage): no
  server, resumable, readable with ``optuna-dashboard study.journal``. The search's lock
  makes its process the study's only worker, so a trial found running on resume was cut off:
  it is marked failed and enqueued again;
- given ``trials.storage`` (an RDB URL), in that database: every process that runs the same
  command with the same storage joins the study and takes trials from its queue. The first
  enqueues the candidates; the others check they propose the same ones. A worker that dies is
  found by Optuna's heartbeat and its trial retried (:class:`~optuna.storages.RetryHeartbeatStaleTrialCallback`).
  Each worker writes the choice into its own run directory once every trial is finished.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import lightning.pytorch as pl

from spikenas.base.errors import SpikenasError
from spikenas.search.candidates import Candidate
from spikenas.search.trial_settings import TrialSettings

STUDY_FILE = "study.journal"
PARAM = "candidate"
HEARTBEAT_SECONDS = 30
JOIN_SECONDS = 1800  # how long a joining worker waits for the first to enqueue the candidates

Train = Callable[[Candidate, Sequence[pl.Callback]], float]


class QueueEmpty(Exception):
    """A worker asked for a trial when every candidate was taken (another worker was faster)."""


@dataclass(frozen=True)
class TrialRow:
    """What the trials did with one candidate: ``state`` (``COMPLETE``, ``PRUNED``, ``FAIL``,
    ``WAITING`` or ``RUNNING``), ``accuracies`` the validation accuracies (fractions) after the
    chunks in ``steps`` (the rungs it reached), ``seconds`` the trial's wall time, ``note`` why it
    failed (empty otherwise)."""

    candidate: Candidate
    state: str
    accuracies: tuple[float, ...]
    seconds: float
    note: str = ""
    steps: tuple[int, ...] = ()

    @property
    def chunks(self) -> int:
        """Chunks trained up to the last validation."""
        return self.steps[-1] if self.steps else 0

    @property
    def last(self) -> float:
        return self.accuracies[-1] if self.accuracies else math.nan


class ReportChunks(pl.Callback):
    """Reports ``val/acc`` to an Optuna trial after every validated chunk (step = chunks trained
    so far) and stops the training where the pruner says so (:class:`optuna.TrialPruned`).

    optuna-integration's ``PyTorchLightningPruningCallback`` reports the epoch index, one less
    than the chunks trained, which would put every rung of the successive-halving pruner one
    chunk late; this reports the resource the pruner counts."""

    def __init__(self, trial) -> None:
        self.trial = trial
        self.step = 0  # chunks reported so far

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        import optuna

        if trainer.sanity_checking or "val/acc" not in trainer.callback_metrics:
            return
        step = self.step = trainer.current_epoch + 1
        self.trial.report(float(trainer.callback_metrics["val/acc"]), step=step)
        if step < trainer.max_epochs and self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned after {step} chunks")


def open_storage(settings: TrialSettings, run_dir: Path):
    """The study's storage: the run directory's journal file, or the RDB at ``settings.storage``
    with a heartbeat (a dead worker's trial is retried up to twice)."""
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    if settings.storage is None:
        run_dir.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(run_dir / STUDY_FILE)))
    for attempt in range(5):  # workers starting together race to create the schema; the losers retry
        try:
            return optuna.storages.RDBStorage(
                settings.storage, heartbeat_interval=HEARTBEAT_SECONDS, grace_period=4 * HEARTBEAT_SECONDS,
                heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=2))
        except Exception as exc:  # a bad URL, a missing driver, an unreachable server, a lost race
            if attempt < 4 and type(exc).__name__ in ("IntegrityError", "OperationalError"):
                time.sleep(0.5 * (attempt + 1))
                continue
            raise SpikenasError(f"trials.storage {settings.storage!r} cannot be opened: {type(exc).__name__}: "
                                f"{str(exc).splitlines()[0][:200] if str(exc) else ''}") from None


def _open_study(candidates: Sequence[Candidate], settings: TrialSettings, run_dir: Path, name: str, seed: int):
    """The study, created (and the candidates enqueued, best first) or joined (and checked)."""
    import optuna

    storage = open_storage(settings, run_dir)
    pruner = optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=settings.reduction_factor,
                                                    min_early_stopping_rate=0)
    sampler = optuna.samplers.RandomSampler(seed=seed)  # unused: every trial's candidate is enqueued
    keys = [c.key for c in candidates]
    try:
        study = optuna.create_study(storage=storage, study_name=name, direction="maximize", pruner=pruner, sampler=sampler)
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(study_name=name, storage=storage, pruner=pruner, sampler=sampler)
    else:
        for candidate in candidates:
            study.enqueue_trial({PARAM: candidate.key}, user_attrs={"describe": candidate.describe()})
        study.set_user_attr("candidates", keys)
        return study
    waited = time.monotonic()
    while "candidates" not in study.user_attrs:  # the creator is still enqueueing
        if time.monotonic() - waited > JOIN_SECONDS:
            raise SpikenasError(f"study {name!r} in {settings.storage or run_dir / STUDY_FILE} holds no candidates after "
                                f"{JOIN_SECONDS} s: its creator stopped before enqueueing them; delete the study or "
                                "name another (trials.study_name)")
        time.sleep(1.0)
    if study.user_attrs["candidates"] != keys:
        raise SpikenasError(f"study {name!r} holds another search's candidates ({len(study.user_attrs['candidates'])} "
                            f"of them, this search proposes {len(keys)}): run the same command and config as its "
                            "first worker, or name another study (trials.study_name)")
    return study


def _latest(study) -> dict:
    """Each candidate key's latest trial (by number) in ``study``."""
    latest = {}
    for trial in study.get_trials(deepcopy=False):
        key = trial.params.get(PARAM) or trial.system_attrs.get("fixed_params", {}).get(PARAM)
        if key is not None:
            latest[key] = trial
    return latest


def _retry_cut_off(study) -> None:
    """Trials a stopped run left unfinished, enqueued again: a candidate whose latest trial is
    still running (the run was killed; the search's lock makes this process the study's only
    worker, so nobody else runs it) or failed with no error of its own (Ctrl-C)."""
    from optuna.trial import TrialState

    for key, trial in _latest(study).items():
        cut_off = trial.state == TrialState.RUNNING
        if cut_off:
            study.tell(trial.number, state=TrialState.FAIL)
        if cut_off or (trial.state == TrialState.FAIL and "error" not in trial.user_attrs):
            study.enqueue_trial({PARAM: key}, user_attrs={"describe": trial.user_attrs.get("describe", key),
                                                          "retry_of": trial.number})


def run_trials(candidates: Sequence[Candidate], settings: TrialSettings, train: Train, run_dir: Path, name: str,
               seed: int, say: Callable[[str], None] = print) -> list[TrialRow]:
    """Train every candidate through the study until each is finished (complete, pruned or
    failed) or ``settings.timeout`` runs out; one :class:`TrialRow` per candidate, in order.

    ``train(candidate, callbacks)`` trains it briefly (the callbacks report and prune) and
    returns its final validation accuracy. A candidate whose training raises is failed, its
    reason kept, and the trials go on."""
    import optuna
    from optuna.trial import TrialState

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = _open_study(candidates, settings, run_dir, name, seed)
    if settings.storage is None:
        _retry_cut_off(study)
    by_key = {c.key: c for c in candidates}
    keys = list(by_key)

    def objective(trial) -> float:
        if "describe" not in trial.user_attrs:  # set on every enqueued trial
            raise QueueEmpty
        candidate = by_key[trial.suggest_categorical(PARAM, keys)]
        start = time.perf_counter()
        report = ReportChunks(trial)
        try:
            accuracy = train(candidate, [report])
        except optuna.TrialPruned:
            trial.set_user_attr("seconds", time.perf_counter() - start)
            say(f"spikenas search: trial {trial.number} {candidate.describe()}: pruned after {report.step} chunk{'s' if report.step > 1 else ''} "
                f"(not among the best 1/{settings.reduction_factor} at that rung)")
            raise
        except Exception as exc:
            trial.set_user_attr("error", f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}")
            trial.set_user_attr("seconds", time.perf_counter() - start)
            say(f"spikenas search: trial {trial.number} {candidate.describe()}: failed: {trial.user_attrs.get('error', '')}")
            raise
        trial.set_user_attr("seconds", time.perf_counter() - start)
        say(f"spikenas search: trial {trial.number} {candidate.describe()}: val_acc={accuracy:.4f} after all chunks")
        return accuracy

    start = time.monotonic()
    while True:
        if settings.timeout is not None and time.monotonic() - start > settings.timeout:
            say(f"spikenas search: trials.timeout {settings.timeout:g} s reached; the finished trials choose")
            break
        if study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
            study.optimize(objective, n_trials=1, catch=(Exception,), gc_after_trial=True)
            continue
        if not study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            break
        time.sleep(5.0)  # other workers' trials under way: wait for them (or for their retries)
        optuna.storages.fail_stale_trials(study)
    return rows(study, candidates)


def rows(study, candidates: Sequence[Candidate]) -> list[TrialRow]:
    """Each candidate's latest trial as a :class:`TrialRow` (a retried trial's last attempt)."""
    latest = _latest(study)
    table = []
    for candidate in candidates:
        trial = latest.get(candidate.key)
        if trial is None:
            table.append(TrialRow(candidate, "NONE", (), 0.0))
            continue
        steps = tuple(sorted(trial.intermediate_values))
        table.append(TrialRow(candidate, trial.state.name, tuple(trial.intermediate_values[step] for step in steps),
                              float(trial.user_attrs.get("seconds", 0.0)), str(trial.user_attrs.get("error", "")), steps))
    return table


def choose(table: Sequence[TrialRow]) -> TrialRow:
    """The winner: the candidate that trained the most chunks (it passed every rung it reached),
    then the best accuracy after them; the earlier candidate on a tie."""
    trained = [row for row in table if row.accuracies and math.isfinite(row.last)]
    if not trained:
        notes = "; ".join(f"{row.candidate.key}: {row.state} {row.note}".strip() for row in table)[:600]
        raise SpikenasError(f"no trial trained a candidate to its first validation ({notes})")
    return max(trained, key=lambda row: (row.chunks, row.last, -table.index(row)))
