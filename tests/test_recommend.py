"""``mixopt recommend`` and ``mixopt atlas build``: where an answer comes from, that it matches the
simulator, and bad input.

Statistical check (a recommendation re-simulated agrees with its report): the report's standard
error comes from its 95% CI (half-width / 1.96, over ``eval_seeds`` seeds); the re-simulation uses
fresh seeds of another stream, so the two means are independent and their difference over the
combined standard error is a z statistic: |z| < 4 (false-alarm rate 6e-5 per check; the former
"lands inside the report's 95% CI" rule raised a false alarm about one run in five across four
checks). The seeds are fixed, so the outcome is reproducible. Its power: the same check rejects the
report (|z| > 4) when the policy is re-simulated in a wrong scenario (half the batch size and
half the human budget).
The shipped atlas: a fixed sample of 6 of its 36 entries (3 per family, drawn once by a seeded
generator) is re-validated every run, family-wise false-alarm rate under 4e-4.
"""
import json
import subprocess
import sys

import numpy as np
import pytest

from mixopt import config as config_mod, describe
import mixopt.optimizers.evaluate as evaluate_mod
from mixopt.serve import atlas, evaluation, recommend, uncertain
from mixopt.objectives import parse
from mixopt.optimizers.evaluate import evaluate

SCENARIO = {"family": "gaussian", "generations": 3, "samples": 20, "human_budget": 40}
KL = parse("final:kl", None)[0]


def _config(**scenario):
    return config_mod.from_dict({"scenario": {**SCENARIO, **scenario}, "run": {"seeds": 32}})


def _mixopt(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "mixopt", *args], capture_output=True, text=True, cwd=cwd)


def _z_against_report(report: dict, *, halved: bool = False, seeds: int = 4000) -> float:
    """(re-simulated mean - the report's mean) / their combined standard error. ``halved``: in the
    wrong scenario of half the batch size and half the human budget (every count halves, so the
    distances roughly double; halving the batch alone can leave a budget-bound policy's counts as
    they were)."""
    objective = report["objective"]
    scenario = dict(report["scenario"])
    if halved:
        budget = scenario["human_budget"]
        scenario.update(samples=scenario["samples"] // 2,
                        human_budget=budget if budget in ("inf", float("inf")) else budget / 2)
    config = config_mod.from_dict({"scenario": scenario, "policy": report["policy"]})
    again = evaluate(config, parse(objective["metric"], None)[0], seeds=seeds, seed=11, stream=3)
    se_report = (objective["ci_high"] - objective["ci_low"]) / (2 * 1.96)
    se_again = (again.ci_high - again.ci_low) / (2 * 1.96)
    return (again.mean - objective["mean"]) / (se_report**2 + se_again**2) ** 0.5


def _inside_own_ci(report: dict, seeds: int = 4000) -> tuple[bool, bool]:
    """(the report's policy re-simulated agrees with it, it does in a half-size-batch scenario)."""
    return (abs(_z_against_report(report, seeds=seeds)) < 4,
            abs(_z_against_report(report, halved=True, seeds=seeds)) < 4)


def test_optimised_answer_is_stored_and_read_back_without_jax(tmp_path):
    storage = str(tmp_path / "studies.log")
    first = recommend.recommend(_config(), "final:kl", storage=storage, use_atlas=False, time_budget=3,
                                eval_seeds=300)
    assert first["source"] in ("optimised", "heuristic") and first["trials"] >= 1
    # a 3 s budget: the evaluation stops at the deadline, after at least 100 seeds (chunks of the search's 32),
    # unless the next round would end past 95% of the budget: only past the 85% deadline can that be
    # (a round of compiled programs on 32 seeds takes a fraction of the 10% between them)
    used = first["budget"]["eval_seeds"]
    assert first["objective"]["eval_seeds"] == used and (32 <= used <= 300 and used % 32 == 0 or used == 300)
    assert used >= 128 or first["budget"]["seconds"] > 0.85 * 3, first["budget"]
    assert first["budget"]["cut_short"] == (used < 300 and not first["budget"]["precise"])
    import optuna  # the front-loaded accumulate heuristic is tried first, then the other budget-matched ones

    study = optuna.load_study(study_name=first["study"], storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(storage)))
    assert study.trials[0].params["retention"] == "accumulate"
    assert study.trials[0].user_attrs["policy"]["human_fraction"] == [1.0, 0.0, 0.0]  # 20 fresh, in generation 1
    inside, wrong = _inside_own_ci(first)
    assert inside and not wrong, first["budget"]
    # The second query: from the study, in a fresh process that never imports JAX (so nothing is simulated).
    code = ("import sys, json; from mixopt import config; from mixopt.serve import recommend; "
            f"c = config.from_dict({{'scenario': {SCENARIO!r}, 'run': {{'seeds': 32}}}}); "
            f"r = recommend.recommend(c, 'final:kl', storage={storage!r}, use_atlas=False); "
            "print(json.dumps({'source': r['source'], 'policy': r['policy'], 'jax': 'jax' in sys.modules}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    second = json.loads(out.stdout)
    assert second == {"source": "study", "policy": first["policy"], "jax": False}


def test_cli_recommend_from_a_stored_study_in_json(tmp_path):
    storage = str(tmp_path / "s.log")
    args = ["recommend", "--generations", "3", "--samples", "20", "--human-budget", "40", "--seeds", "32",
            "--storage", storage, "--no-atlas", "--time-budget", "2", "--eval-seeds", "200", "--format", "json"]
    first = _mixopt(*args)
    assert first.returncode == 0, first.stderr
    second = _mixopt(*args)
    payload = json.loads(second.stdout)
    assert payload["source"] == "study" and payload["policy"] == json.loads(first.stdout)["policy"]
    for key in ("policy", "objective", "human_used", "baselines", "source", "description", "trajectory"):
        assert key in payload
    assert {"replace", "accumulate", "accumulate-subsample", "keep-10%-original", "uniform-accumulate",
            "front-load-accumulate", "fixed-10%-fresh-replace"} <= {b["name"] for b in payload["baselines"]}
    assert len(payload["trajectory"]) == 4


@pytest.fixture(scope="module")
def tiny_atlas(tmp_path_factory):
    """A two-entry atlas (T = 3, budget share 0 and 0.2 of a batch per generation), built twice with a
    loose precision stop (each report's means to 50%: the first chunks past the floor of 100 seeds), then
    again with none (every one of the 300 seeds)."""
    tmp = tmp_path_factory.mktemp("atlas")
    atlas.GRIDS["tiny"] = {"generations": (3,), "human_per_generation": (0.0, 0.2), "contamination": (0.0,)}
    calls = []
    original = evaluate_mod.build_report

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    evaluate_mod.build_report = counting
    try:
        kwargs = dict(families="gaussian", grid="tiny", trials=4, seeds=32, eval_seeds=300,
                      storage=str(tmp / "studies.log"), out=str(tmp / "atlas.json"))
        built = atlas.build(**kwargs, precision=0.5)
        counted = [len(calls)]
        rebuilt = atlas.build(**kwargs, precision=0.5)  # resumes: every entry's study already holds its report
        counted.append(len(calls))
        every = atlas.build(**kwargs, precision=0)  # another evaluation asked: the reports again, not the trials
        counted.append(len(calls))
    finally:
        evaluate_mod.build_report = original
        del atlas.GRIDS["tiny"]
    return {"path": tmp / "atlas.json", "built": built, "rebuilt": rebuilt, "every": every, "calls": tuple(counted)}


def test_atlas_build_is_resumable(tiny_atlas):
    assert tiny_atlas["calls"] == (2, 2, 4)  # the second build recomputed nothing; the third its reports
    assert [e["report"] for e in tiny_atlas["rebuilt"]["entries"]] == [e["report"] for e in tiny_atlas["built"]["entries"]]
    assert json.loads(tiny_atlas["path"].read_text())["entries"][0]["objective"] == "final:kl"


def test_atlas_reports_stop_at_recommends_precision_after_its_floor(tiny_atlas):
    # A Gaussian's final KL varies about as much as its mean from seed to seed: a 95% half-width of 50%
    # needs about (1.96 / 0.5)^2 = 15 seeds, so the stop comes at the first chunk (32 seeds) past the
    # floor of recommend's MIN_EVAL_SEEDS = 100, well before 300. Without the stop 300; without the
    # floor 32.
    for entry in tiny_atlas["built"]["entries"]:
        report = entry["report"]
        assert report["evaluation"] == {"eval_seeds": 300, "precision": 0.5, "precise": True}
        assert report["objective"]["eval_seeds"] == 128
        assert evaluation.precise_enough(report, 0.5)
    for entry in tiny_atlas["every"]["entries"]:
        assert entry["report"]["evaluation"]["precision"] == 0 and entry["report"]["objective"]["eval_seeds"] == 300
    assert tiny_atlas["every"]["precision"] == 0


def test_a_stored_report_is_reused_only_when_asked_the_same_way_and_run_to_its_end():
    def report(used, evaluation=None):
        return {"objective": {"eval_seeds": used}, **({"evaluation": evaluation} if evaluation else {})}

    cut = report(256, {"eval_seeds": 1000, "precision": 0.02, "precise": False})  # a recommend past its deadline
    assert not evaluation.reusable(cut, 1000, 0.02)
    assert evaluation.reusable(report(256, {**cut["evaluation"], "precise": True}), 1000, 0.02)
    assert evaluation.reusable(report(1000, {**cut["evaluation"]}), 1000, 0.02)  # every seed, not precise
    assert not evaluation.reusable(report(1000, {**cut["evaluation"], "precise": True}), 1000, 0.0)  # another stop
    old = report(1000)  # stored before the record existed (or by optimize): every seed it has, no stop
    assert evaluation.reusable(old, 1000, 0.0) and not evaluation.reusable(old, 1000, 0.02)
    assert not evaluation.reusable(old, 2000, 0.0)


def test_atlas_answer_names_its_source_and_distance(tiny_atlas):
    loaded = atlas.load_atlas(tiny_atlas["path"])
    # budget share 0.15 lies between the entries (0 and 0.2): the 0.2 entry is nearest
    inside = atlas.from_atlas(_config(human_budget=100 * (1 + 0.15 * 3)), KL, loaded)
    assert inside is None  # the atlas is for M = 100 (the family grid), not M = 20: no entry speaks for it
    query = config_mod.from_dict({"scenario": {"family": "gaussian", "generations": 3, "samples": 100,
                                               "human_budget": 100 * (1 + 0.15 * 3)}})
    found = atlas.from_atlas(query, KL, loaded)
    assert found["source"] == "atlas" and not found["atlas"]["exact"]
    assert found["atlas"]["entry_scenario"]["human_budget"] == pytest.approx(160.0)
    assert found["atlas"]["distance"] == pytest.approx(0.25)
    outside = config_mod.from_dict({"scenario": {"family": "gaussian", "generations": 9, "samples": 100,
                                                 "human_budget": 100}})
    assert atlas.from_atlas(outside, KL, loaded) is None  # T = 9 is outside the grid (T = 3 only)


def test_atlas_entries_match_the_simulator(tiny_atlas):
    for entry in tiny_atlas["built"]["entries"]:
        inside, wrong = _inside_own_ci(entry["report"])
        assert inside and not wrong


def _shipped_sample(per_family: int = 3) -> list[int]:
    entries = atlas.load_atlas()["entries"]
    rng = np.random.default_rng(2026)
    picked = []
    for family in ("gaussian", "categorical"):
        indices = [i for i, e in enumerate(entries) if e["scenario"]["family"] == family]
        picked += sorted(rng.choice(indices, per_family, replace=False).tolist())
    return picked


@pytest.mark.parametrize("index", _shipped_sample())
def test_shipped_atlas_entries_match_the_simulator(index):
    entry = atlas.load_atlas()["entries"][index]
    seeds = 4000 if entry["scenario"]["family"] == "gaussian" else 1000  # count sampler: V binomials a draw
    inside, wrong = _inside_own_ci(entry["report"], seeds=seeds)
    assert inside and not wrong


def test_shipped_atlas_answers_at_once():
    shipped = atlas.load_atlas()
    families = {e["scenario"]["family"] for e in shipped["entries"]}
    assert {"gaussian", "categorical"} <= families
    entry = next(e for e in shipped["entries"] if e["scenario"]["family"] == "gaussian"
                 and e["scenario"]["generations"] == 10 and e["scenario"]["contamination"] == 0)
    scenario = {k: entry["scenario"][k] for k in ("family", "generations", "samples", "human_budget")}
    code = ("import sys, json; from mixopt import config; from mixopt.serve import recommend; "
            f"c = config.from_dict({{'scenario': {scenario!r}}}); "
            "r = recommend.recommend(c, 'final:kl', storage='nothing-here.log'); "
            "print(json.dumps({'source': r['source'], 'exact': r['atlas']['exact'], 'jax': 'jax' in sys.modules}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"source": "atlas", "exact": True, "jax": False}


def test_atlas_matches_a_truth_that_leaves_its_defaults_unsaid():
    shipped = atlas.load_atlas()  # its categorical entries spell out zipf = 1.1, the default
    tv = parse("final:tv", None)[0]
    scenario = {"family": "categorical", "generations": 10, "samples": 500, "human_budget": 1500}
    found = atlas.from_atlas(config_mod.from_dict({"scenario": {**scenario, "truth": {"vocab": 100}}}), tv,
                                 shipped)
    assert found is not None and found["atlas"]["exact"]
    other_world = config_mod.from_dict({"scenario": {**scenario, "truth": {"vocab": 100, "zipf": 1.3}}})
    assert atlas.from_atlas(other_world, tv, shipped) is None


def test_uncertain_contamination_reports_every_variant(tmp_path):
    payload = uncertain.recommend_uncertain(_config(human_budget=60), "final:kl", ["contamination=0:0.5"],
                                            storage=str(tmp_path / "s.log"), time_budget=4, eval_seeds=200)
    assert [v["scenario"] for v in payload["variants"]] == [{"contamination": 0.0}, {"contamination": 0.25},
                                                            {"contamination": 0.5}]
    assert payload["objective"]["averaged_over"] == 3
    for variant in payload["variants"]:
        assert variant["best_here"]["description"] and variant["objective"]["ci_low"] <= variant["objective"]["mean"]
        best = variant["best_here"]
        assert best["objective"]["ci_low"] <= best["objective"]["mean"] <= best["objective"]["ci_high"]
        assert best["robust_cost"]["ci_low"] <= best["robust_cost"]["mean"] <= best["robust_cost"]["ci_high"]
    # the baselines, averaged over the variants seed by seed: finite CIs and paired margins (NaN before)
    for row in payload["baselines"]:
        assert row["ci_low"] <= row["mean"] <= row["ci_high"] and row["variants"] == 3
        assert row["margin_ci_low"] <= row["margin"] <= row["margin_ci_high"]
    from mixopt.cli.format import format_recommendation

    text = format_recommendation(payload, "table")
    assert "robustness costs" in text and "nan" not in text.lower()


def test_policy_in_words():
    config = config_mod.from_dict({"scenario": {"generations": 10, "samples": 100, "human_budget": "inf"},
                                   "policy": {"human_fraction": [0.18] * 3 + [0.08] * 7, "retention": "window",
                                              "window": 4, "curation_fraction": 0.7}})
    assert describe.describe(config) == (
        "generations 1-3: 18 fresh human samples a generation (18%), the rest synthetic; "
        "generations 4-10: 8 fresh human samples a generation (8%), the rest synthetic; "
        "110 fresh human samples in all; train on the batches of the last 4 generations (window); "
        "curate: keep the top 70% of the synthetic samples")
    # the words give what the budget leaves of the schedule: 150 fresh samples after generation 0
    capped = config_mod.from_dict({"scenario": {"generations": 4, "samples": 100, "human_budget": 250},
                                   "policy": {"human_fraction": 0.9, "retention": "accumulate"}})
    assert describe.effective_human(capped) == [90, 60, 0, 0]
    assert describe.describe(capped) == (
        "generation 1: 90 fresh human samples a generation (90%), the rest synthetic; "
        "generation 2: 60 fresh human samples a generation (60%), the rest synthetic; "
        "generations 3-4: no fresh human data; 150 fresh human samples in all; "
        "train on everything gathered so far (accumulate)")
    front = config_mod.from_dict({"scenario": {"generations": 10, "samples": 100, "human_budget": 300},
                                  "policy": {"human_fraction": 1.0, "retention": "accumulate"}})
    assert describe.describe(front) == ("generations 1-2: fresh human data only (100 a generation); "
                                        "generations 3-10: no fresh human data; 200 fresh human samples in all; "
                                        "train on everything gathered so far (accumulate)")


@pytest.mark.parametrize("args,message", [
    (["--samples", "-5"], "scenario.samples"),
    (["--uncertain", "contamination=0.5"], "KEY=LO:HI"),
    (["--uncertain", "colour=0:1"], "--uncertain key 'colour'"),
    (["--objective", "final:nope"], "objective metric 'nope' is unknown"),
    (["--time-budget", "0", "--no-atlas"], "--time-budget must be > 0"),
    (["--storage", "sqlite:////no/such/dir/s.db"], "cannot open the study storage"),
])
def test_bad_input_is_one_line_exit_2(tmp_path, args, message):
    out = _mixopt("recommend", "--generations", "3", "--samples", "20", *args, cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mixopt: error:") and message in lines[0], out.stderr


def test_corrupt_atlas_and_corrupt_storage_are_one_line_errors(tmp_path):
    bad = tmp_path / "atlas.json"
    bad.write_text("{not json")
    out = _mixopt("recommend", "--generations", "3", "--atlas", str(bad), cwd=tmp_path)
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "cannot read the atlas" in out.stderr
    database = tmp_path / "studies.db"
    database.write_bytes(b"not an sqlite file")
    out = _mixopt("recommend", "--generations", "3", "--storage", f"sqlite:///{database}", cwd=tmp_path)
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "file is not a database" in out.stderr
    assert database.read_bytes() == b"not an sqlite file"  # stored data untouched


def test_a_nearest_atlas_answer_is_a_policy_for_your_horizon(tmp_path):
    """T = 12 lies between the shipped atlas's T = 10 and 20: the nearest entry (T = 10) answers, says
    what differs, and its per-generation policy is stretched to 12 generations, which `simulate
    --policy` accepts at T = 12 (a 10-value list would be refused)."""
    world = ["--family", "gaussian", "--generations", "12", "--samples", "100", "--human-budget", "300"]
    proc = _mixopt("recommend", *world, "--objective", "final:kl", "--format", "json", "--quiet",
                   "--storage", str(tmp_path / "none.log"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    payload = json.loads(proc.stdout)
    assert payload["source"] == "atlas" and not payload["atlas"]["exact"]
    assert payload["atlas"]["differs"]["generations"] == {"entry": 10, "yours": 12}
    assert payload["scenario"]["generations"] == 12
    for value in payload["policy"].values():
        assert not isinstance(value, list) or len(value) == 12
    (tmp_path / "answer.json").write_text(proc.stdout)
    sim = _mixopt("simulate", *world, "--seeds", "50", "--policy", "answer.json", "--format", "json", "--quiet",
                  cwd=tmp_path)
    assert sim.returncode == 0, sim.stderr
    assert json.loads(sim.stdout)["policy"]["human_fraction"] == payload["policy"]["human_fraction"]
    assert atlas._for_horizon({"human_fraction": [1.0, 0.5]}, 2, 4) == {"human_fraction": [1.0, 1.0, 0.5, 0.5]}


def test_recommend_says_why_the_atlas_did_not_answer():
    shipped = atlas.load_atlas()
    far = config_mod.from_dict({"scenario": {"family": "gaussian", "generations": 50, "samples": 100,
                                             "human_budget": 300}})
    assert atlas.from_atlas(far, KL, shipped) is None
    assert "outside the atlas's grid" in atlas.atlas_miss(far, KL, shipped)
    assert "optimise final:kl, not final:w2" in atlas.atlas_miss(far, parse("final:w2", None)[0], shipped)
    small = _config()  # M = 20: the atlas's Gaussian entries are for M = 100
    assert "no entry for this family, truth and batch size" in atlas.atlas_miss(small, KL, shipped)
    assert "gaussian M=100" in atlas.atlas_miss(small, KL, shipped)
