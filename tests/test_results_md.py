"""benchmarks/RESULTS.md's follow-up tables of notebook 06's few-label studies (5 draws, scarce
validation, the tuned cross-modal curve, the negative control with few labels, the lambda grid's upper end) are recomputed from the runs they came from
(``benchmarks/study_draws_runs.csv``) with the script that printed them
(``benchmarks/study_draws.summarise``): every pooled interval a table row shows must be one the
runs give, with the same call. A hand edit of one number, or a re-run that changes a result
without updating the page, fails here."""
import re
import sys
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
SECTIONS = ("## Positive control with 5 draws", "## Positive control with scarce validation",
            "## Cross-modal curve, tuned, 5 draws", "## Negative control with few labels, tuned",
            "## The grid's upper end")
NUM = r"[+\-]\d\.\d{3}"
INTERVAL = re.compile(rf"({NUM}) \[({NUM}), ({NUM})\]")


def _section(text: str, head: str) -> str:
    start = text.index(head)
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else None]


@pytest.fixture(scope="module")
def computed() -> dict[str, list[dict]]:
    """{pooled interval: the verdict-table rows that print it, with the lambdas chosen for them}."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import study_draws
    finally:
        sys.path.pop(0)
    runs = pd.read_csv(REPO / "benchmarks" / "study_draws_runs.csv")
    table, chosen = study_draws.summarise(runs)
    fine, _ = study_draws.summarise(runs, digits=9)       # the same rows, unrounded enough to see ties
    picks = {(r.study, r.method): r.chosen.replace(", λ = ", ", ") for r in chosen.itertuples()}
    out: dict[str, list[dict]] = {}
    for row, precise in zip(table.to_dict("records"), fine["Δ per draw (seeds +/-)"]):
        row = {k: v.replace("−", "-") if isinstance(v, str) else v for k, v in row.items()}
        row["draws"] = re.findall(NUM, row["Δ per draw (seeds +/-)"])
        row["draws_precise"] = [float(x) for x in re.findall(r"[+\-]\d\.\d{9}", precise.replace("−", "-"))]
        row["chosen"] = picks.get((row["study"], row["method"]))
        out.setdefault(row["Δ pooled [adjusted CI]"], []).append(row)
    return out


def _rounds_to(shown: list[str], precise: list[float]) -> bool:
    """Each shown 3-decimal number is a rounding of its precise value. A mean that is a tie
    (exactly 0.0125, say) lands on either side of it by the order of a
    float sum, which numpy and pandas versions change (+0.012 with numpy 2.4 / pandas 3.1, +0.013
    with numpy 2.2 / pandas 2.3 on Python 3.10): both roundings are the runs' value."""
    return len(shown) == len(precise) and all(abs(float(s) - p) <= 0.0005 + 1e-9 for s, p in zip(shown, precise))


def test_every_follow_up_interval_is_what_the_runs_give(computed):
    """Each row's pooled interval(s) and call(s); where the row has one interval, also its
    baseline and method means, its per-draw means and the lambdas chosen for a tuned cell."""
    text = (REPO / "benchmarks" / "RESULTS.md").read_text().replace("−", "-")
    checked = 0
    for head in SECTIONS:
        rows = [ln for ln in _section(text, head).splitlines() if ln.startswith("| ") and "---" not in ln]
        for row in rows:
            cells = [c.strip() for c in row.strip("|").split("|")]
            found = [m.group(0) for m in INTERVAL.finditer(row)]
            if not found:
                continue
            calls = [c.strip() for c in cells[-1].split("/")]
            assert len(calls) == len(found), f"{head}: one call per interval expected in {row!r}"
            for iv, call in zip(found, calls):
                assert iv in computed, f"{head}: {iv} is not an interval the runs give (row {row!r})"
                assert any(call.startswith(c["call"]) for c in computed[iv]), \
                    f"{head}: {iv} is called {[c['call'] for c in computed[iv]]} by the runs, the page says {call!r}"
                checked += 1
            if len(found) > 1:
                continue
            mine = computed[found[0]]
            draws = [c for c in cells if len(re.findall(NUM, c)) >= 3 and "[" not in c]
            assert all(any(_rounds_to(re.findall(NUM, d), c["draws_precise"]) for c in mine) for d in draws), \
                f"{head}: per-draw means {draws} are not the runs' {[c['draws'] for c in mine]} (row {row!r})"
            assert any({c["baseline"], c["method mean"]} <= set(cells) for c in mine), \
                f"{head}: baseline / method means of {row!r} are not the runs' " \
                f"{[(c['baseline'], c['method mean']) for c in mine]}"
            pick = re.search(r"λ = \d+: \d+(?:, \d+: \d+)*", cells[0])
            if pick:
                assert any(c["chosen"] == pick.group(0) for c in mine), \
                    f"{head}: {pick.group(0)!r} is not what validation chose: {[c['chosen'] for c in mine]}"
                checked += 1
    assert checked >= 20, f"only {checked} intervals found: did the tables' layout change?"


def test_every_interval_in_the_readme_results_has_a_source(computed):
    """Each pooled interval the README's "Default-run results" and FINDINGS.md (down to
    "Earlier claims that changed") quote is printed by the executed notebook 06, given by the
    follow-up runs, or one of the other VM's results that RESULTS.md's "Run to run" section
    records, or a row of its "Controls on any dataset" table (itself checked against its runs)."""
    from test_notebooks import _outputs_text

    readme = (REPO / "README.md").read_text().replace("−", "-").replace("**", "")
    findings = (REPO / "FINDINGS.md").read_text().replace("−", "-").replace("**", "")
    part = " ".join((readme[readme.index("## Default-run results"):readme.index("## Performance and scale")]
                     + findings[:findings.index("Earlier claims that changed")]).split())
    results = (REPO / "benchmarks" / "RESULTS.md").read_text().replace("−", "-")
    sources = {"notebook 06": _outputs_text("06_when_transfer_helps").replace("−", "-"),
               "RESULTS.md, Run to run": _section(results, "## Run to run"),
               # checked against its runs by test_controls_any_data.py
               "RESULTS.md, Controls on any dataset": _section(results, "## Controls on any dataset")}
    found = [m.group(0) for m in INTERVAL.finditer(part)]
    assert len(found) >= 15, f"only {len(found)} intervals found in the README's results"
    orphans = [iv for iv in found if iv not in computed and not any(iv in t for t in sources.values())]
    assert not orphans, f"README / FINDINGS.md intervals with no source (notebook 06, the follow-up runs, Run to run, " \
                        f"the controls sweep): {orphans}"



def test_readme_results_quote_each_named_cell(computed):
    """Each number the README's "In short" quotes beside a named cell is that cell's, with the call
    its words give: notebook 06's (recomputed from its committed runs, as FINDINGS.md's table is:
    ``test_notebooks.notebook_06_cells``), the 5-draw follow-ups' (``benchmarks/study_draws_runs.csv``)
    and the controls sweep's (``benchmarks/controls_sweep_runs.csv``); and the gradient ratios it
    and FINDINGS.md give, from notebook 06's runs at the same label counts. Two cells' numbers
    swapped, or a number that is another cell's, fail here (a check that a number appears
    somewhere does not see them)."""
    from test_notebooks import _outputs_text, notebook_06_cells

    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import controls_sweep
    finally:
        sys.path.pop(0)
    nb = notebook_06_cells()
    follow = {(r["study"], r["method"]): r for rows in computed.values() for r in rows}
    sweep = controls_sweep.summarise(pd.read_csv(controls_sweep.RUNS)).set_index(["study", "method", "lam"])

    def nb06(method, call):
        c = nb[("(c) positive control", method, 20)]
        assert c["call"] == call, (method, c["call"], call)
        return c["diff"]

    def later(study, method, call):
        r = follow[(study, method)]
        assert r["call"] == call, (study, method, r["call"], call)
        return r["Δ pooled [adjusted CI]"]

    def swept(study, method, call):
        r = sweep.loc[(study, method, 1.0)]
        assert r.call == call, (study, method, r.call, call)
        return r.pooled

    runs = pd.read_csv(REPO / "notebooks" / "results" / "06_runs.csv")
    dcat1 = runs[(runs.method == "dcat") & (runs.lam == 1)]
    video = dcat1[dcat1.kind == "curve"].groupby("size").grad_ratio_init.mean()
    teacher = dcat1[dcat1.kind == "positive"].groupby("size").grad_ratio_init.mean()
    kd1 = runs[(runs.kind == "positive") & (runs.method == "kd") & (runs.lam == 1)].grad_ratio_init.mean()
    assert list(teacher.index) == [20] and list(video.index) == [20, 60]
    picks = nb[("(c) positive control", "dcat (tuned)", 20)]["chosen"]
    quoted = [
        f"There its gradient at λ = 1 is {video[20]:.1%} of cross-entropy's at the start of training with 20 labels "
        f"({video[60]:.1%} with 60), against {teacher[20]:.1%} from the positive control's teacher with the same "
        f"20 labels",
        f"D-CAT with its λ chosen on validation F1 (10 or 100 in {picks.get(10, 0) + picks.get(100, 0)} of "
        f"{sum(picks.values())} runs) helps by {nb06('dcat (tuned)', 'helps')}, and logit distillation (KD) tuned "
        f"the same way by {nb06('kd (tuned)', 'helps')}; D-CAT at λ = 1 has no call there over 3 draws "
        f"({nb06('dcat', 'no evidence')}; a 5-draw follow-up calls that small gain, "
        f"{later('(c) positive control', 'dcat', 'helps')},",
        f"the 5-draw follow-up, run after seeing them and so weaker evidence than its interval says, calls tuned "
        f"D-CAT {later('(c) positive control', 'dcat (tuned)', 'helps')} and tuned KD "
        f"{later('(c) positive control', 'kd (tuned)', 'helps')}.",
        f"tuned D-CAT has no call: "
        f"{later('(d) unlabeled-pairs curve', 'dcat (tuned)', 'no evidence')} with the whole validation part, "
        f"{later('(d) unlabeled-pairs curve, 20 validation labels', 'dcat (tuned)', 'no evidence')} with validation "
        f"cut to 20 labels; tuned KD is called with the whole validation part "
        f"({later('(d) unlabeled-pairs curve', 'kd (tuned)', 'helps')}) but not with 20 validation labels "
        f"({later('(d) unlabeled-pairs curve, 20 validation labels', 'kd (tuned)', 'no evidence')}).",
        f"There D-CAT helps even at λ = 1 ({swept('positive control', 'dcat', 'helps')}), where notebook 06's "
        f"noise-free teacher above has no call at λ = 1 ({nb06('dcat', 'no evidence')}); the two are separate "
        f"studies",
        f"KD at λ = 1 hurts ({swept('main', 'kd', 'hurts')})"]
    readme = " ".join((REPO / "README.md").read_text().replace("−", "-").replace("**", "").split())
    readme = readme[readme.index("## Default-run results"):readme.index("## Performance and scale")]
    missing = [q for q in quoted if q not in readme]
    assert not missing, f"README's results do not say what the cells give: {missing}"
    findings = " ".join((REPO / "FINDINGS.md").read_text().split())
    ratio = f"{video[20]:.1%} from the video source in (d) at the same 20 labels, {video[60]:.1%} at 60"
    assert ratio in findings and f"its gradient is {teacher[20]:.1%} of cross-entropy's in (c)" in findings
    printed = (f"D-CAT's gradient at λ = 1 is {teacher[20]:.1%} of cross-entropy's, KD's {kd1:.0%}; from the video source of "
               f"the curve (d), D-CAT's is {video[20]:.1%} at the same 20 labels ({video[60]:.1%} at 60 labels)")
    assert printed in _outputs_text("06_when_transfer_helps"), printed

def _findings_part(start: str, end: str | None) -> str:
    text = (REPO / "FINDINGS.md").read_text()
    part = text[text.index(start):text.index(end) if end else None]
    return " ".join(part.replace("−", "-").split())


def test_findings_earlier_claims_are_what_the_kept_rows_give():
    """FINDINGS.md's "Earlier claims that changed": each pooled interval, its draw means and the
    p-value it quotes are a t on the three draw means of benchmarks/data_draws_06.csv (the earlier
    notebook 06's per-draw rows), Holm over the table's 3 cells; and none is a call."""
    import numpy as np

    from dcatkit import stats

    rows = pd.read_csv(REPO / "benchmarks" / "data_draws_06.csv").dropna(subset=["diff_mean"])
    cells = [g.sort_values("data_seed")["diff_mean"].to_numpy() for _, g in rows.groupby(["study", "method"],
                                                                                            sort=False)]
    tests = [stats.t_test(d) for d in cells]
    levels, _ = stats._family_levels(tests, 0.05, "holm")
    part = _findings_part("Earlier claims that changed", "**Notebook 04**")
    # the bullets in the csv's order: contrastive (id), dcat (id), dcat (ood)
    quoted = re.findall(rf"({NUM}), ({NUM}), ({NUM})[;:] pooled ({NUM}) \[({NUM}), ({NUM})\]", part)
    assert len(quoted) == len(cells) == 3, quoted
    for q, d, t, level in zip(quoted, cells, tests, levels):
        lo, hi = t.interval(level)
        want = [*d, d.mean(), lo, hi]
        assert np.allclose([float(x) for x in q], want, atol=0.0006), (q, want)   # the csv keeps 4 decimals
        assert lo < 0 < hi                                                          # no evidence, as the text says
    # the p beside an adjusted interval is the adjusted one (the unadjusted 0.14 looked 3x closer to a call)
    p_adj = stats.holm([t.p for t in tests])
    assert "p = 0.42 Holm-adjusted (0.14 alone)" in part and round(p_adj[0], 2) == 0.42 and round(tests[0].p, 2) == 0.14
    old = rows[(rows.method == "contrastive") & (rows.data_seed == 0)].iloc[0]     # the withdrawn seed-0 claim
    assert f"+{old.diff_mean:.3f} [+{old.ci_low:.3f}, +{old.ci_high:.3f}]" in part


INTERVAL_04 = r"[+\-]\d\.\d{2,3} \[[+\-]\d\.\d{2,3}, [+\-]\d\.\d{2,3}\]"   # 3 decimals where 2 would read 0.00


def notebook_04_cells(nb04: str) -> dict[tuple[bool, float], str]:
    """{(MCMA on?, λ): interval} of notebook 04's verdict lines ("dcat (MCMA) against the
    baseline, on this draw: ... lam = 0.01: +0.00 [-0.07, +0.07]; ... at lam = 100: -0.09 [...]")."""
    cells = {}
    for line in nb04.splitlines():
        head = re.match(r"\S+ \((MCMA|no MCMA)\) against the baseline", line)
        for lam, interval in re.findall(rf"lam = (\d+(?:\.\d+)?): ({INTERVAL_04})", line) if head else ():
            assert (head[1] == "MCMA", float(lam)) not in cells, f"two intervals for {head[1]}, λ = {lam}"
            cells[(head[1] == "MCMA", float(lam))] = interval
    return cells


def findings_04_cells(part: str) -> list[tuple[bool | None, float | None, str]]:
    """Each interval FINDINGS.md's notebook 04 paragraph quotes, with the MCMA setting and the λ
    it is quoted for: the last "with MCMA" / "without MCMA" / "no MCMA" before it, and the last
    λ named between the previous interval and it ("λ = 0.01: ...", "0.1: ...", "at λ = 100 the
    interval lies below 0 on this draw (...)"); None where the text names none."""
    out, last = [], 0
    for m in re.finditer(INTERVAL_04, part):
        mcma = re.findall(r"\b(with|without|no) MCMA\b", part[:m.start()])
        lams = re.findall(r"λ = (\d+(?:\.\d+)?)|(\d+(?:\.\d+)?):", part[last:m.start()])
        lam = next((float(a or b) for a, b in reversed(lams)), None)
        out.append((mcma[-1] == "with" if mcma else None, lam, m.group()))
        last = m.end()
    return out


def findings_04_mismatches(text: str, nb04: str) -> list[str]:
    """Each interval of FINDINGS.md's notebook 04 paragraph against notebook 04's printed
    interval of the MCMA setting and λ the text quotes it for (six of them), and, where the text
    follows an interval with "N of M seeds worse", N and M against that cell's row of the printed
    table (its last two columns: seeds worse, pairs); the two λ = 100 cells must say it."""
    part = " ".join(text[text.index("**Notebook 04**"):text.index("**Notebook 03**")].replace("−", "-").split())
    printed, quoted = notebook_04_cells(nb04), findings_04_cells(part)
    bad = [] if len(quoted) == 6 else [f"{len(quoted)} intervals quoted, 6 expected: {quoted}"]
    worse_said = set()
    for mcma, lam, interval in quoted:
        name = f"{'MCMA' if mcma else 'no MCMA' if mcma is not None else '(no MCMA setting named)'}, λ = {lam}"
        if printed.get((mcma, lam)) != interval:
            bad.append(f"{name}: FINDINGS quotes {interval}, notebook 04 prints {printed.get((mcma, lam))}")
        worse = re.search(re.escape(interval) + r"\]?, (\d+) of (\d+) seeds worse", part)
        if worse is None or lam is None:
            continue
        worse_said.add((mcma, lam))
        row = re.search(rf"^\s*{mcma}\s+{lam:.2f}\s.*$", nb04, re.M)   # the table's row of that cell
        if row is None or [float(x) for x in row.group().split()[-2:]] != [float(worse[1]), float(worse[2])]:
            bad.append(f"{name}: FINDINGS says {worse[1]} of {worse[2]} seeds worse, the table {row and row.group()!r}")
    for cell in ((True, 100.0), (False, 100.0)):
        if cell not in worse_said:
            bad.append(f"{'MCMA' if cell[0] else 'no MCMA'}, λ = 100: FINDINGS does not say how many seeds were worse")
    return bad


def notebook_03_tables(nb03: str) -> dict:
    """Notebook 03's printed tables, parsed from its committed outputs: ``f1`` {run: F1} of the
    results table (``modality accuracy ... delta_f1``, runs as its index), ``ca`` {column: [L_CA per
    epoch]} of the alignment table (``baseline (measured only)  D-CAT  No MCMA``), ``r2`` {(run,
    tensor): (r2, r2_shuffled, r2_gain)} of the Theorem 4.1 table, and ``seed`` / ``n_samples``
    of its parameter echo."""
    lines = nb03.splitlines()

    def block(is_header, row=r"\s*\S"):
        """The lines after the (one) header line, up to the first that is not a ``row``."""
        heads = [i for i, ln in enumerate(lines) if is_header(ln)]
        assert len(heads) == 1, f"notebook 03 prints {len(heads)} such tables, 1 expected"
        out = []
        for ln in lines[heads[0] + 1:]:
            if not re.match(row, ln):
                break
            out.append(ln)
        return lines[heads[0]], out

    head, rows = block(lambda ln: ln.split()[:2] == ["modality", "accuracy"])
    cols = head.split()
    f1 = {}
    for ln in rows:
        if ln.split() == ["run"]:                                     # the index's name
            continue
        tok = ln.split()
        f1[" ".join(tok[:-len(cols)])] = float(tok[-len(cols):][cols.index("f1")])
    head, rows = block(lambda ln: ln.strip().startswith("baseline (measured only)"))
    names = re.split(r"\s{2,}", head.strip())
    ca = {n: [] for n in names}
    for ln in rows:
        if ln.split() == ["epoch"]:
            continue
        epoch, *vals = ln.split()
        assert int(epoch) == len(ca[names[0]]) + 1 and len(vals) == len(names), ln
        for n, v in zip(names, vals):
            ca[n].append(float(v))
    head, rows = block(lambda ln: ln.split() == ["run", "tensor", "r2", "r2_shuffled", "r2_gain"],
                       r".*\S \s*[KV](\s+-?\d\.\d{3}){3}$")
    r2 = {}
    for ln in rows:
        tok = ln.split()
        r2[(" ".join(tok[:-4]), tok[-4])] = tuple(float(x) for x in tok[-3:])
    seed, n = re.search(r"\bseed=(\d+)", nb03), re.search(r"'n_samples': (\d+)", nb03)
    paired = re.search(r"= ([+-]\d\.\d{3}), 95% paired bootstrap interval \[([+-]\d\.\d{3}), ([+-]\d\.\d{3})\]",
                       nb03.replace("−", "-"))
    return {"f1": f1, "ca": ca, "r2": r2, "seed": int(seed[1]), "n_samples": int(n[1]),
            "paired": tuple(float(x) for x in paired.groups())}


N3 = r"(\d\.\d{3})"
S3 = r"([+-]\d\.\d{3})"                  # with its sign


def findings_03_mismatches(text: str, nb03: str) -> list[str]:
    """Each number of FINDINGS.md's notebook 03 paragraph against the row and column of notebook
    03's printed tables that its label names: the four runs' F1 (twice), D-CAT's L_CA in the first
    and last epoch with their cosines (1 - L_CA² / 2, two decimals) and the baseline's last, the
    Theorem 4.1 keys' R² of D-CAT and the baseline, D-CAT's shuffled R² and the keys' and values'
    gains; the seed and n. A number of the paragraph that none of these reads is reported too."""
    part = " ".join(text[text.index("**Notebook 03**"):text.index("Notebook 05 shows")].replace("−", "-").split())
    t = notebook_03_tables(nb03)
    f1, r2, ca = t["f1"], t["r2"], t["ca"]
    dcat, base = ca["D-CAT"], ca["baseline (measured only)"]
    cos = lambda v: round(1 - v * v / 2, 2)                           # noqa: E731  L_CA read as a cosine
    # (what the text says, in a pattern; per group: its name and the value the notebook prints, and how close)
    claims = [
        (r"\(seed (\d+), n = (\d+),", [("seed", t["seed"], 0), ("n", t["n_samples"], 0)]),
        (rf"video source {N3}, IMU baseline {N3}, D-CAT {N3}, No MCMA {N3}\.",
         [(k, f1[k], 0) for k in ("video source", "imu baseline", "D-CAT", "No MCMA")]),
        (rf"L_CA falls from {N3} in the first epoch to {N3} in the last \(cosine (\d\.\d\d) → (\d\.\d\d)\), "
         rf"while the baseline's \(measured, not optimised\) ends at {N3}",
         [("D-CAT L_CA epoch 1", dcat[0], 5e-4), ("D-CAT L_CA last epoch", dcat[-1], 5e-4),
          ("D-CAT cosine epoch 1", cos(dcat[0]), 0), ("D-CAT cosine last epoch", cos(dcat[-1]), 0),
          ("baseline L_CA last epoch", base[-1], 5e-4)]),
        (rf"fits with R² {N3} for D-CAT vs {N3} for the baseline",
         [("D-CAT K r2", r2[("D-CAT", "K")][0], 0), ("baseline K r2", r2[("imu baseline", "K")][0], 0)]),
        (rf"another\* sample's source keys already reaches {N3}", [("D-CAT K r2_shuffled", r2[("D-CAT", "K")][1], 0)]),
        (rf"only {N3} of it \(values: {N3}\) is specific to each sample",
         [("D-CAT K r2_gain", r2[("D-CAT", "K")][2], 0), ("D-CAT V r2_gain", r2[("D-CAT", "V")][2], 0)]),
        (rf"\(D-CAT {N3} vs the baseline's {N3} here, a difference of {S3} with a 95% paired bootstrap interval "
         rf"over the test samples of \[{S3}, {S3}\]: the test-set noise of this one pair of models alone; No MCMA, "
         rf"which optimises nearly the same loss, {N3}\)",
         [("D-CAT", f1["D-CAT"], 0), ("imu baseline", f1["imu baseline"], 0),
          *[(f"D-CAT - baseline, paired {k}", v, 0) for k, v in zip(("difference", "low", "high"), t["paired"])],
          ("No MCMA", f1["No MCMA"], 0)]),
    ]
    bad, read = [], []
    for pattern, groups in claims:
        m = re.search(pattern, part)
        if not m:
            bad.append(f"the paragraph no longer says {pattern!r}: rewrite the check with it")
            continue
        for g, (name, want, tol) in enumerate(groups, 1):
            read.append(m.span(g))
            if abs(float(m[g]) - want) > tol + 1e-9:
                bad.append(f"{name}: FINDINGS says {m[g]}, notebook 03 gives {want}")
    unread = [m.group() for m in re.finditer(r"(?<!Theorem )(?<![\d.])[+-]?\d+\.\d+", part) if m.span() not in read]
    if unread:
        bad.append(f"numbers of the paragraph that no row is checked against: {unread}")
    return bad


def test_findings_notebook_04_and_03_numbers_are_what_the_notebooks_print():
    """Notebook 04's intervals in FINDINGS.md are the ones the executed notebook prints for the
    MCMA setting and λ the text names (``findings_04_mismatches``; two cells' intervals swapped
    fail), and each of notebook 03's numbers is the one its printed tables give for the run and
    quantity its label names (``findings_03_mismatches``; two runs' F1 swapped fail)."""
    from test_notebooks import _outputs_text

    nb04 = _outputs_text("04_lambda_ablation")
    assert len(notebook_04_cells(nb04)) == 10                      # 5 λ x MCMA on / off, each printed once
    text = (REPO / "FINDINGS.md").read_text()
    bad = findings_04_mismatches(text, nb04)
    assert not bad, "FINDINGS.md's notebook 04 paragraph is not what notebook 04 prints:\n" + "\n".join(bad)
    # the check sees what it is for: the MCMA and no-MCMA λ = 100 intervals swapped, or two λs' swapped
    for a, b in (("−0.09 [−0.22, +0.01]", "−0.08 [−0.20, +0.02]"), ("+0.01 [−0.03, +0.04]", "+0.02 [−0.02, +0.07]")):
        assert text.count(a) == 1 and text.count(b) == 1, (a, b)
        swapped = text.replace(a, "@").replace(b, a).replace("@", b)
        assert findings_04_mismatches(swapped, nb04)
    for said, wrong in (("+0.01], 9 of 10 seeds", "+0.01], 8 of 10 seeds"),     # MCMA λ = 100: 9 worse
                        ("+0.02], 8 of 10 seeds", "+0.02], 9 of 10 seeds"),     # no MCMA λ = 100: 8 worse
                        ("+0.01], 9 of 10 seeds", "+0.01], 9 of 10 runs")):     # not said at all
        assert text.count(said) == 1, said
        assert findings_04_mismatches(text.replace(said, wrong), nb04), wrong

    nb03 = _outputs_text("03_transfer")
    t = notebook_03_tables(nb03)
    assert sorted(t["f1"]) == ["D-CAT", "No MCMA", "imu baseline", "video source"] and len(t["r2"]) == 6
    assert len(t["ca"]["D-CAT"]) == 20 and (t["seed"], t["n_samples"]) == (0, 1000)
    bad = findings_03_mismatches(text, nb03)
    assert not bad, "FINDINGS.md's notebook 03 paragraph is not what notebook 03 prints:\n" + "\n".join(bad)
    # the check sees what it is for: two runs' F1 swapped (in either sentence), D-CAT's and the
    # baseline's R² swapped, a cosine changed, a number added that nothing checks
    flat = " ".join(text.replace("−", "-").split())                # the page wraps lines inside a sentence
    assert not findings_03_mismatches(flat, nb03)
    for a, b in (("D-CAT 0.815, No MCMA 0.794", "D-CAT 0.794, No MCMA 0.815"),
                 ("video source 0.986, IMU baseline 0.815", "video source 0.815, IMU baseline 0.986"),
                 ("R² 0.854 for D-CAT vs 0.063", "R² 0.063 for D-CAT vs 0.854"),
                 ("the baseline's 0.815 here, a difference", "the baseline's 0.794 here, a difference"),
                 ("of [-0.069, +0.065]", "of [-0.065, +0.069]"),                  # the paired interval's bounds
                 ("a difference of +0.000", "a difference of +0.010"),
                 ("only 0.038 of it (values: 0.095)", "only 0.095 of it (values: 0.038)"),
                 ("(cosine 0.03 → 0.52)", "(cosine 0.03 → 0.51)"),
                 ("partially. A", "partially (0.913 of it). A")):
        assert flat.count(a) == 1, a
        assert findings_03_mismatches(flat.replace(a, b), nb03), b


def test_run_to_run_table_and_intervals_are_what_the_kept_runs_give():
    """RESULTS.md's three-VM comparison of notebook 06 ("A third VM") is recomputed from the kept runs
    with the script that printed it (benchmarks/run_to_run.py): each pair's row, and every interval
    VM 3 gives for a cell whose call moved against VM 2; the VM 1 vs VM 2 table of moved cells row by
    row (each VM's interval, with the page's "−", and call), how many moved and the largest shift."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import run_to_run
    finally:
        sys.path.pop(0)
    vm = {"VM 1": REPO / "benchmarks" / "run_to_run_06_vm1.csv", "VM 2": REPO / "benchmarks" / "run_to_run_06_vm2.csv",
          "VM 3": REPO / "benchmarks" / "run_to_run_06_vm3.csv", "VM 4": REPO / "notebooks" / "results" / "06_runs.csv"}
    whole = _section((REPO / "benchmarks" / "RESULTS.md").read_text(), "## Run to run")
    part = whole[whole.index("### A third VM"):]
    findings = " ".join((REPO / "FINDINGS.md").read_text().split())
    results = {}
    for a, b in (("VM 1", "VM 2"), ("VM 3", "VM 2"), ("VM 1", "VM 3"), ("VM 2", "VM 4"), ("VM 3", "VM 4")):
        r = results[(a, b)] = run_to_run.compare(pd.read_csv(vm[a]), pd.read_csv(vm[b]))
        row = (f"| {a} vs {b} | {r['same_f1']:.1%} | {r['mean_abs_df1']:.3f} | {r['source_mean_abs_df1']:.3f} | "
               f"{len(r['moved'])} |")
        assert row in part, row
        # the verdict cells are methods against their baselines (a baseline's row has no call to move);
        # notebook 06's default has 15 study cells and 12 grid cells, and 21 source cells over 18 sources
        assert r["runs"] == 810 and r["source_cells"] == 21 and r["cells"] == 27 and r["grid_cells"] == 12
        assert f"(21 study x draw x size cells, 18 sources) | calls that moved (of {r['cells']}) |" in part
        if (a, b) == ("VM 1", "VM 2"):
            said = (f"({r['cells']} cells, each a method against its baseline: {r['cells'] - r['grid_cells']} verdicts "
                    f"and {r['grid_cells']} cells of the λ grids,")
            assert said in " ".join(whole.split()), said
            assert f"{len(r['moved'])} of {r['cells']} calls moved" in findings
    moved = results[("VM 3", "VM 2")]["moved"]
    shown = [f"{x.diff_mean_a:+.3f} [{x.ci_low_a:+.3f}, {x.ci_high_a:+.3f}]".replace("-", "−") for x in moved.itertuples()]
    text = " ".join(part.split())                          # the page wraps lines inside an interval
    assert len(shown) == 3 and all(s in text for s in shown), shown
    assert set(moved.call_a) == {"no evidence"} and set(moved.call_b) == {"helps"}
    assert set(moved.study.str[:3]) == {"(c)"}
    # VM 2 vs VM 4 (the same CPU type, D-CAT's loss changed between them): the one moved cell, both
    # intervals as the page writes them (format_interval: digits widen where a bound would read 0)
    from dcatkit.stats import format_interval

    moved = results[("VM 2", "VM 4")]["moved"]
    assert len(moved) == 1 and set(moved.method) == {"dcat"}
    for x in moved.itertuples():
        for m, lo, hi, c in ((x.diff_mean_a, x.ci_low_a, x.ci_high_a, x.call_a),
                             (x.diff_mean_b, x.ci_low_b, x.ci_high_b, x.call_b)):
            shown = format_interval(m, lo, hi, 3).replace("-", "−") + (f" {c}" if c == "no evidence" else f" **{c}**")
            assert shown in text, shown
    vm3 = results[("VM 3", "VM 4")]["moved"].set_index(["study", "size", "method", "lam"]).loc[
        [(x.study, x.size, x.method, x.lam) for x in moved.itertuples()]]       # that cell on VM 3 (AMD, VM 4's code)
    for x in vm3.itertuples():
        shown = format_interval(x.diff_mean_a, x.ci_low_a, x.ci_high_a, 3).replace("-", "−") + f" {x.call_a}"
        assert shown in text, shown

    # VM 1 vs VM 2: the table of the cells whose call moved, row by row (label, each VM's interval and call)
    r = results[("VM 1", "VM 2")]
    sizes = pd.read_csv(vm["VM 2"]).groupby("study")["size"].nunique()
    want = []
    for x in r["moved"].itertuples():
        study = x.study.removesuffix(", every λ")
        label = f"{study[:3]} " + (f"grid: {x.method} λ = {x.lam:g}" if x.grid else x.method) \
            + (f", n = {x.size}" if sizes[study] > 1 else "")
        want.append(f"| {label} | {_shown(x.diff_mean_a, x.ci_low_a, x.ci_high_a, x.call_a)} | "
                    f"{_shown(x.diff_mean_b, x.ci_low_b, x.ci_high_b, x.call_b)} |")
    lines = whole.splitlines()
    assert "| cell | VM 1 | VM 2 |" in lines, "RESULTS.md's Run to run has no VM 1 vs VM 2 table of moved cells"
    head = lines.index("| cell | VM 1 | VM 2 |")
    rows = []
    for ln in lines[head + 2:]:
        if not ln.startswith("|"):
            break
        rows.append(ln)
    assert sorted(rows) == sorted(want), ("RESULTS.md's VM 1 vs VM 2 table of moved cells is not what the kept runs "
                                          f"give: rows the runs give that it lacks {sorted(set(want) - set(rows))}, "
                                          f"rows it has that they do not {sorted(set(rows) - set(want))}")
    words = {1: "One", 2: "Two", 3: "Three", 4: "Four", 5: "Five", 6: "Six"}
    said = " ".join(whole.split())
    assert f"{words.get(len(want))} calls moved" in said, len(want)
    assert f"The point estimates moved by at most {r['max_abs_shift']:.3f}" in said, r["max_abs_shift"]


def _shown(mean: float, lo: float, hi: float, call: str) -> str:
    """An interval and its call as RESULTS.md's run-to-run table writes them: "−" for a minus, a call in bold."""
    iv = f"{mean:+.3f} [{lo:+.3f}, {hi:+.3f}]".replace("-", "−")
    return f"{iv} {call}" if call == "no evidence" else f"{iv} **{call}**"


def _own_seed_rule(with_tuned):
    """``studies.with_tuned`` by the rule it replaced on 2026-12-05: each seed's lambda chosen on that
    seed's OWN validation F1 (the grid run with the highest ``val_f1``, the first of equal maxima:
    ``benchmarks/tuned_null.own_choice``'s rule, for every tuned method). Everything else (the grid's
    own family, the cells kept, the rows' order) is as ``with_tuned`` builds it: only the run each
    tuned row takes changes."""
    from dcatkit.experiment import choose_on_validation

    keys = ["size", "data_seed", "seed"]

    def old(tidy, study, lams, **kw):
        out = with_tuned(tidy, study, lams, **kw).copy()
        lams = [float(x) for x in lams]
        runs = tidy[(tidy["study"] == study) & tidy["lam"].isin(lams)].set_index(["method", *keys, "lam"])
        pick = runs["val_f1"].unstack("lam")[lams].apply(choose_on_validation, axis=1)
        tuned = out.index[(out["study"] == study) & out["method"].str.endswith(" (tuned)")]
        t = out.loc[tuned]
        cell = list(zip(t["method"].str.removesuffix(" (tuned)"), *(t[k] for k in keys)))
        lam = [lams[i] for i in pick.loc[cell]]
        chosen = runs.loc[[(*c, x) for c, x in zip(cell, lam)]]
        for col in chosen.columns.drop(["study", "kind"], errors="ignore"):
            out.loc[tuned, col] = chosen[col].to_numpy()
        out.loc[tuned, "lam_chosen"] = lam
        return out

    return old


def test_old_tuning_rule_intervals_are_what_the_runs_give(monkeypatch, computed):
    """The intervals RESULTS.md quotes for the tuning rule before 2026-12-05 (each seed's lambda on its
    own validation F1) are recomputed by that rule from the runs they came from, through the scripts
    that print today's: the 5-draw positive control and curve (``benchmarks/study_draws_runs.csv``,
    ``study_draws.summarise``) and notebook 06's tuned (c) cell on VM 1 and VM 2 (the kept runs,
    ``run_to_run.calls``), with VM 1's draws and seeds that tuned D-CAT was better on (the 3-draw result
    seen before the 5-draw follow-up); and the three follow-up calls said to have come partly from
    the rule are not today's. The rule is first checked to be ``tuned_null.own_choice``'s."""
    import numpy as np

    from dcatkit import studies

    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import run_to_run
        import study_draws
        import tuned_null
    finally:
        sys.path.pop(0)
    old = _own_seed_rule(studies.with_tuned)

    # the rule is the one tuned_null.py states (on a simulated table, where the two rules differ)
    null = tuned_null.null_table(np.random.default_rng(0))
    mine = old(null, "pos", tuned_null.LAMS, keep=[("dcat", 1.0)])
    mine = mine[mine.method == "dcat (tuned)"].sort_values(["data_seed", "seed"])
    ref = tuned_null.own_choice(null)
    ref = ref[ref.method == "dcat (tuned)"].sort_values(["data_seed", "seed"])
    now = studies.with_tuned(null, "pos", tuned_null.LAMS, keep=[("dcat", 1.0)])
    now = now[now.method == "dcat (tuned)"].sort_values(["data_seed", "seed"])
    assert np.array_equal(mine.f1.to_numpy(), ref.f1.to_numpy()), "the old rule here is not tuned_null.own_choice's"
    assert not np.array_equal(mine.f1.to_numpy(), now.f1.to_numpy()), "the old rule here chose as with_tuned does now"

    monkeypatch.setattr(studies, "with_tuned", old)
    table, _ = study_draws.summarise(pd.read_csv(REPO / "benchmarks" / "study_draws_runs.csv"))
    cell = {(r["study"], r["method"]): r for r in table.to_dict("records")}

    def follow(study, method, call=None, point=False):
        r = cell[(study, method)]
        assert call is None or r["call"] == call, (study, method, r["call"], call)
        shown = r["Δ pooled [adjusted CI]"].replace("-", "−")              # the page's prose writes "−"
        return shown.split()[0] if point else shown

    vm = {"VM 1": REPO / "benchmarks" / "run_to_run_06_vm1.csv", "VM 2": REPO / "benchmarks" / "run_to_run_06_vm2.csv"}
    tuned_c = {}
    for name, path in vm.items():
        runs = pd.read_csv(path)
        c = run_to_run.calls(runs)
        x = c[(c.study == "(c) positive control") & (c.method == "dcat (tuned)")].iloc[0]
        tuned_c[name] = f"{x.diff_mean:+.3f} [{x.ci_low:+.3f}, {x.ci_high:+.3f}]".replace("-", "−")
        if name == "VM 1":      # the 3-draw result seen before the 5-draw follow-up: its seeds and draws
            t = old(runs, "(c) positive control", run_to_run.TUNE_LAMS, keep=[("dcat", run_to_run.LAM)])
            t = t[t.study == "(c) positive control"].set_index(["data_seed", "seed"])
            d = t[t.method == "dcat (tuned)"].f1 - t[t.method == "none"].f1
            assert len(d) == 30 and not d.isna().any()
            seen = (f"better on every draw and on {int((d > 0).sum())} of its {len(d)} seeds ({x.diff_mean:+.3f})"
                    if (d.groupby(level="data_seed").mean() > 0).all() else "not better on every draw")

    curve, curve20 = "(d) unlabeled-pairs curve", "(d) unlabeled-pairs curve, 20 validation labels"
    quoted = [
        f"The rule before, each seed's own validation F1, gave tuned D-CAT "
        f"{follow('(c) positive control', 'dcat (tuned)')} and tuned KD {follow('(c) positive control', 'kd (tuned)')} "
        f"here",
        f"this table read tuned D-CAT {follow(curve, 'dcat (tuned)', 'helps')} **helps** (45 labels), KD "
        f"{follow(curve20, 'kd (tuned)', 'helps', point=True)} and contrastive "
        f"{follow(curve20, 'contrastive (tuned)', 'helps', point=True)} called with 20 labels too. Those three calls "
        f"came partly from the rule",
        f"by the rule before it read {tuned_c['VM 1']} and {tuned_c['VM 2']}.)",
        f"where tuned D-CAT was {seen}"]
    # "those three calls came partly from the rule": today's rule calls none of them
    now = {(r["study"], r["method"]): r["call"] for rows in computed.values() for r in rows}
    assert [now[(curve, "dcat (tuned)")], now[(curve20, "kd (tuned)")], now[(curve20, "contrastive (tuned)")]] \
        == ["no evidence"] * 3
    text = " ".join((REPO / "benchmarks" / "RESULTS.md").read_text().split())
    missing = [q for q in quoted if q not in text]
    assert not missing, f"RESULTS.md's intervals of the old tuning rule are not what the runs give by it: {missing}"


def findings_05_mismatches(text: str, nb05: str) -> list[str]:
    """FINDINGS.md's notebook 05 paragraph against notebook 05's printed source table (``split
    kept val_f1 test_f1``, one row per split) and its per-subject table: each source number is
    the row and column its words name, and the per-subject changes it quotes are the table's
    ``delta_f1`` (one below 0, one above)."""
    start = text.index("**Notebook 05**")
    end = text.find("\n\n", start)                              # the paragraph (all of a flattened page)
    part = " ".join(text[start:end if end > 0 else None].split())
    lines = nb05.splitlines()
    heads = [i for i, ln in enumerate(lines) if ln.split() == ["split", "kept", "val_f1", "test_f1"]]
    assert len(heads) == 1, f"notebook 05 prints {len(heads)} source tables, 1 expected"
    table = {}
    for ln in lines[heads[0] + 1:]:
        tok = ln.split()
        if len(tok) != 4:
            break
        table[tok[0]] = {"kept": float(tok[1]), "test_f1": float(tok[3])}
    m = re.search(rf"\(`ood`\) the video source is right on {N3} of its training samples, the ones MCMA aligns on "
                  rf"\({N3} on `id`\), yet reaches macro-F1 {N3} on the held-out subjects \({N3} on `id`'s test split\)",
                  part)
    if not m:
        return ["the paragraph no longer reads as the check expects: rewrite the check with it"]
    bad = [f"{name}: FINDINGS says {m[g]}, notebook 05 prints {want}"
           for g, (name, want) in enumerate((("ood kept", table["ood"]["kept"]), ("id kept", table["id"]["kept"]),
                                              ("ood test_f1", table["ood"]["test_f1"]),
                                              ("id test_f1", table["id"]["test_f1"])), 1)
           if abs(float(m[g]) - want) > 1e-9]
    # the per-subject sentence: each quoted change is the subjects table's delta_f1 (lowest, highest)
    heads = [i for i, ln in enumerate(lines) if ln.split()[:6] == ["fold", "subject", "n", "f1_baseline", "f1_other",
                                                                    "delta_f1"]]
    assert len(heads) == 1, f"notebook 05 prints {len(heads)} per-subject tables, 1 expected"
    deltas = []
    for ln in lines[heads[0] + 1:]:
        tok = ln.split()
        if len(tok) != 9:
            break
        deltas.append(float(tok[5]))
    m = re.search(r"D-CAT's F1 fell on one held-out subject \(([−+-]?\d\.\d{3})\) and rose on the other "
                  r"\(([−+-]?\d\.\d{3})\)", part)
    if not m:
        bad.append("the paragraph's per-subject sentence no longer reads as the check expects: rewrite the check")
    elif len(deltas) != 2 or [float(g.replace("−", "-")) for g in m.groups()] != sorted(deltas) \
            or not sorted(deltas)[0] < 0 < sorted(deltas)[1]:
        bad.append(f"FINDINGS says one subject fell by {m[1]} and one rose by {m[2]}; notebook 05's subjects table "
                   f"gives {deltas}")
    return bad


def test_findings_notebook_05_numbers_are_what_the_notebook_prints():
    """Notebook 05's source numbers in FINDINGS.md are its printed table's (the ``ood`` and ``id``
    rows, ``kept`` and ``test_f1``) and its per-subject changes; the check fails when two of them
    are swapped."""
    from test_notebooks import _outputs_text

    nb05 = _outputs_text("05_confusion_analysis")
    text = (REPO / "FINDINGS.md").read_text()
    bad = findings_05_mismatches(text, nb05)
    assert not bad, "FINDINGS.md's notebook 05 paragraph is not what notebook 05 prints:\n" + "\n".join(bad)
    flat = " ".join(text.split())
    for a, b in (("right on 0.990 of its training samples", "right on 0.974 of its training samples"),
                 ("macro-F1 0.689 on the held-out subjects (0.986", "macro-F1 0.986 on the held-out subjects (0.689"),
                 ("fell on one held-out subject (−0.213) and rose on the other (+0.033)",
                  "fell on one held-out subject (−0.033) and rose on the other (+0.213)")):
        assert flat.count(a) == 1, a
        assert findings_05_mismatches(flat.replace(a, b), nb05), b


def test_the_avx2_vm_paragraph_quotes_its_run_tables():
    """RESULTS' paragraph on the AMD EPYC VM at torch's AVX2 level quotes notebook 03's four test
    macro-F1 from the run table that execution wrote, and notebook 02's source and baseline at
    a81a807 from its own; both tables name that machine and their commits."""
    text = (REPO / "benchmarks" / "RESULTS.md").read_text()
    part = text[text.index("### Another AMD EPYC VM, at torch's AVX2 kernel level"):]
    t03 = pd.read_csv(REPO / "benchmarks" / "run_to_run_03_vm5.csv").set_index("run")
    t02 = pd.read_csv(REPO / "benchmarks" / "run_to_run_02_vm5_a81a807.csv").set_index("run")
    for t, commit in ((t03, "766930b"), (t02, "a81a807")):
        assert set(t["env_cpu"]) == {"AMD EPYC"} and set(t["env_cpu_capability"]) == {"AVX2"}
        assert {c[:7] for c in t["env_git_commit"]} == {commit}
    quoted = re.search(r"source \*\*(\d\.\d{3})\*\*, baseline\s+\*\*(\d\.\d{3})\*\*, D-CAT \*\*(\d\.\d{3})\*\*, "
                       r"No MCMA \*\*(\d\.\d{3})\*\*", part)
    assert quoted, "the four F1 of notebook 03 are not where the test looks"
    want = [f"{t03.loc[r, 'f1']:.3f}" for r in ("video source", "imu baseline", "D-CAT", "No MCMA")]
    assert list(quoted.groups()) == want
    assert f"{t02.loc['video source', 'f1']:.3f} and\n{t02.loc['imu baseline', 'f1']:.3f}" in part \
        or f"{t02.loc['video source', 'f1']:.3f} and {t02.loc['imu baseline', 'f1']:.3f}" in part.replace("\n", " ")
    base = t03.loc["imu baseline", "f1"]
    for run, shown in (("D-CAT", "−0.018 here"), ("No MCMA", "+0.017:")):
        d = t03.loc[run, "f1"] - base
        assert f"{'−' if d < 0 else '+'}{abs(d):.3f}" == shown.split()[0].rstrip(":"), (run, d)
        assert shown in part.replace("\n", " "), shown
