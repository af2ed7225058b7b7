"""Keep a seeded random sample of a cosmic-ray session's pending mutants (the rest are marked
skipped), or report a session: mutants tested, killed, survived, and the survival rate.

    python tests/mutation/sample.py SESSION.sqlite N        # keep N mutants (seed 0)
    python tests/mutation/sample.py SESSION.sqlite --report
"""
import random
import sys

from cosmic_ray.work_db import WorkDB, use_db
from cosmic_ray.work_item import TestOutcome, WorkerOutcome, WorkResult


def keep_sample(path: str, num: int, seed: int = 0) -> None:
    with use_db(path, WorkDB.Mode.open) as db:
        # ordered by what the mutant is (module, operator, occurrence), not by its random job id, so
        # the same source gives the same sample in another session (before/after a test change)
        items = sorted(db.pending_work_items, key=lambda item: [(str(m.module_path), m.operator_name, m.occurrence)
                                                                 for m in item.mutations])
        pending = [item.job_id for item in items]
        keep = set(random.Random(seed).sample(pending, min(num, len(pending))))
        skipped = [job for job in pending if job not in keep]
        db.set_multiple_results(skipped, WorkResult(worker_outcome=WorkerOutcome.SKIPPED))
        print(f"{len(keep)} of {len(pending)} mutants kept (seed {seed})")


def report(path: str) -> None:
    with use_db(path, WorkDB.Mode.open) as db:
        results = [result for _, result in db.results if result.worker_outcome != WorkerOutcome.SKIPPED]
        killed = sum(r.test_outcome in (TestOutcome.KILLED, TestOutcome.INCOMPETENT) for r in results)
        survived = [r for r in results if r.test_outcome == TestOutcome.SURVIVED]
        total = killed + len(survived)
        rate = len(survived) / total if total else float("nan")
        print(f"{path}: {total} mutants tested, {killed} killed, {len(survived)} survived: survival {rate:.0%}")
        for result in survived:
            print(result.diff)


if __name__ == "__main__":
    if sys.argv[2] == "--report":
        report(sys.argv[1])
    else:
        keep_sample(sys.argv[1], int(sys.argv[2]))
