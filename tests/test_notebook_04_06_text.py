"""What notebooks 04 and 06 and FINDINGS.md say in prose about the paper and about study (e),
checked against the paper's words and against what the kit runs:

- notebook 04 quotes the paper's reading of its Table IV verbatim, qualifier included ("apart
  from UESTC-IMU": the λ reading does not hold for the one row the kit's synthetic target stands
  in for);
- notebook 06's description of study (e) and FINDINGS.md's sentence on it say what the
  ``uestc-target`` recipe changes besides Table I's numbers (a larger IMU encoder, the kit's
  sizes, and a frozen source of its own), and FINDINGS.md's numbers for it are the presets' and
  the ones notebook 06 prints.
"""
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dcatkit import presets

REPO = Path(__file__).resolve().parents[1]
NB = REPO / "notebooks"

# Sec. VI-C of the paper, its reading of Table IV, verbatim ($\lambda = 1$ written λ = 1)
PAPER_TABLE_IV = ("Results demonstrate that while λ has some impact on the results, especially in higher values "
                  "(e.g., λ = 10), the results are best at around λ = 1 —with little variation between 0.01 and "
                  "1—apart from UESTC-IMU.")


def _flat(text: str) -> str:
    return " ".join(text.split())


def _markdown(name: str) -> list[str]:
    cells = json.loads((NB / f"{name}.ipynb").read_text())["cells"]
    return ["".join(c["source"]) for c in cells if c["cell_type"] == "markdown"]


def _outputs(name: str) -> str:
    from test_notebooks import _outputs_text

    return _outputs_text(name)


def _paper() -> Path | None:
    for p in (REPO / "shared" / "reference" / "dcat-paper.txt", REPO.parent / "shared" / "reference" / "dcat-paper.txt"):
        if p.exists():
            return p
    return None


def paper_quote_problems(markdown: str) -> list[str]:
    """The quotes of notebook 04's "What the paper reports" paragraph that are not the paper's
    words (``PAPER_TABLE_IV``), or that quote its λ reading without the qualifier that ends it."""
    part = _flat(markdown[markdown.index("**What the paper reports.**"):markdown.index("**What runs here.**")])
    quotes = re.findall(r'"([^"]+)"', part)
    bad = [] if quotes else ["no quote of the paper found"]
    bad += [f"not the paper's words: {q!r}" for q in quotes if q not in PAPER_TABLE_IV]
    bad += [f"the paper's reading quoted without its qualifier 'apart from UESTC-IMU': {q!r}"
            for q in quotes if "little variation" in q and "apart from UESTC-IMU" not in q]
    return bad


def test_notebook_04_quotes_the_papers_table_iv_reading_with_its_qualifier():
    """Notebook 04's quote of the paper's reading of Table IV is verbatim and keeps "apart from
    UESTC-IMU" (it stopped at "between 0.01 and 1", making the paper's claim broader than it is).
    The check sees what it is for: the old quote and a verbatim quote cut before the qualifier fail."""
    paper = _paper()
    if paper is not None:       # the constant is the paper's text where the paper is at hand
        words = _flat(re.sub(r"\$\\lambda\s*=\s*([\d.]+)\$", r"λ = \1", paper.read_text()))
        assert PAPER_TABLE_IV in words
    intro = _markdown("04_lambda_ablation")[0]
    assert not paper_quote_problems(intro), paper_quote_problems(intro)
    py = (NB / "04_lambda_ablation.py").read_text()
    assert "apart from UESTC-IMU" in py                                          # the pair's .py says it too
    now = "best at around λ = 1\n—with little variation between 0.01 and 1—apart from UESTC-IMU"
    assert intro.count(now) == 1
    for edited in (intro.replace(now, "best at around λ = 1,\nwith little variation between 0.01 and 1"),
                   intro.replace(now, "best at around λ = 1 —with little variation between 0.01 and 1")):
        assert paper_quote_problems(edited)


@pytest.fixture(scope="module")
def recipe_facts() -> dict:
    """What (e) changes against (a), from the presets and the committed runs: the IMU encoder
    of each recipe, and the frozen source F1 of (e) and of (a) at (e)'s size."""
    runs = pd.read_csv(NB / "results" / "06_runs.csv")
    rec = runs[runs.kind == "recipe"]
    size = int(rec["size"].min())
    main = runs[(runs.kind == "main") & (runs["size"] == size)]
    return dict(recipe_encoder=presets.get_preset("uestc-target", "imu").encoder,
                kit_encoder=presets.get_preset("synthetic", "imu").encoder,
                recipe_source=rec.source_f1.mean(), kit_source=main.source_f1.mean(), size=size)


def recipe_description_problems(markdown: str, facts: dict) -> list[str]:
    """What notebook 06's description of (e) leaves out of what the recipe changes (``facts``)."""
    start = markdown.index("(e) the paper's Table I recipe")
    part = _flat(markdown[start:markdown.index("(b)–(d) run through", start)])
    bad = [] if "two recipes" in part else ["(e) not described as a comparison of two recipes"]
    if facts["recipe_encoder"] != facts["kit_encoder"] and "a larger encoder" not in part:
        bad.append("the recipe's larger IMU encoder is not named")
    if round(facts["recipe_source"], 3) != round(facts["kit_source"], 3) and "own frozen video source" not in part:
        bad.append("(e)'s own frozen source is not named")
    return bad


def test_notebook_06_says_what_else_study_e_changes(recipe_facts):
    """Notebook 06 described (e) as Table I's UESTC IMU row (learning rate, dropout, ...) alone;
    the ``uestc-target`` preset also gives the target a larger encoder (sizes the kit chose) and
    (e) trains its own frozen source (F1 0.864 against (a)'s 0.895 in the committed run). The
    description names both and calls (e) against (a) a comparison of two recipes; the source F1s
    it points to are printed by sections 1 and 6."""
    f = recipe_facts
    assert f["recipe_encoder"]["hidden"] > f["kit_encoder"]["hidden"]            # the facts the text must carry
    assert round(f["recipe_source"], 3) != round(f["kit_source"], 3)
    intro = _markdown("06_when_transfer_helps")[0]
    assert not recipe_description_problems(intro, f), recipe_description_problems(intro, f)
    shown = _outputs("06_when_transfer_helps")
    assert f"Table I recipe: 60 runs, source test F1 {f['recipe_source']:.3f}" in shown                 # section 1
    for src in (f["recipe_source"], f["kit_source"]):                                                   # section 6
        assert f"frozen source F1 {src:.3f}" in shown
    old = ("(e) the paper's Table I recipe for the target (`preset=\"uestc-target\"`: Table I's UESTC IMU\nrow — "
           "learning rate, dropout, batch, weight decay, epochs, attention size 512 — with a synthetic\nvideo "
           "source at the same attention size) beside the kit's recipe of (a), at the smallest size.\n")
    assert len(recipe_description_problems(old + "(b)–(d) run through", f)) == 3


def findings_recipe_problems(text: str, facts: dict, shown: str) -> list[str]:
    """FINDINGS.md's sentence on (e) against the presets and notebook 06's printed (e) and (a) lines."""
    part = _flat(text[text.index("Study (e) compares"):])
    part = part[:part.index("verdict") + len("verdict")]
    bad = [] if "two recipes" in part else ["(e) not worded as a comparison of two recipes"]
    table = presets.get_preset("uestc-target", "imu")
    m = re.search(r"dropout ([\d.]+), (\d+) epochs, batch (\d+)", part)
    if not m or (float(m[1]), int(m[2]), int(m[3])) != (table.dropout, table.epochs, table.batch_size):
        bad.append(f"Table I's row: {m and m.group()!r}, the preset has dropout {table.dropout}, "
                   f"{table.epochs} epochs, batch {table.batch_size}")
    m = re.search(r"hidden (\d+), d_model (\d+) where the kit's has (\d+) and (\d+)", part)
    enc = (facts["recipe_encoder"], facts["kit_encoder"])
    if not m or [int(x) for x in m.groups()] != [enc[0]["hidden"], enc[0]["d_model"], enc[1]["hidden"], enc[1]["d_model"]]:
        bad.append(f"encoder sizes: {m and m.group()!r}, the presets have {enc}")
    line = {k: re.search(rf"\*\*{re.escape(k)}\*\* at (\d+) recordings: baseline F1 (\d\.\d{{3}}),.*?frozen source F1 "
                         rf"(\d\.\d{{3}})", shown) for k in ("Table I recipe (e)", "kit recipe (a)")}
    m = re.search(r"test F1 (\d\.\d{3}) where \(a\)'s source at n = (\d+) has (\d\.\d{3})\) .*?\((\d\.\d{3}) vs "
                  r"(\d\.\d{3}) at n = (\d+)\)", part)
    want = (line["Table I recipe (e)"][3], line["kit recipe (a)"][1], line["kit recipe (a)"][3],
            line["Table I recipe (e)"][2], line["kit recipe (a)"][2], line["Table I recipe (e)"][1])
    if not m or m.groups() != want:
        bad.append(f"(e) vs (a): FINDINGS {m and m.groups()}, notebook 06 prints {want} (source F1s, sizes, baselines)")
    return bad


def test_findings_words_study_e_as_two_recipes_with_the_printed_numbers(recipe_facts):
    """FINDINGS.md attributed (e)'s lower F1 to "The paper's Table I recipe (dropout 0.8, 10
    epochs, batch 16)"; it now says (e) compares two recipes and names the larger encoder and the
    other source, each number as the presets have it and notebook 06 prints it. Swapping the
    two source F1s, or the old sentence, fails."""
    text = (REPO / "FINDINGS.md").read_text()
    shown = _outputs("06_when_transfer_helps")
    assert not findings_recipe_problems(text, recipe_facts, shown), findings_recipe_problems(text, recipe_facts, shown)
    a, b = "test F1 0.864", "n = 300 has 0.895"
    assert _flat(text).count(a) == 1 and _flat(text).count(b) == 1
    swapped = _flat(text).replace(a, "test F1 0.895").replace(b, "n = 300 has 0.864")
    assert findings_recipe_problems(swapped, recipe_facts, shown)
    old = ("Study (e) compares The paper's Table I recipe (dropout 0.8, 10 epochs, batch 16) leaves the synthetic "
           "IMU target far below the kit's recipe (0.427 vs 0.627 at n = 300) without changing D-CAT's verdict.")
    assert len(findings_recipe_problems(old, recipe_facts, shown)) == 3


def _closing_04(summary: pd.DataFrame, n_seeds: int, split_name: str = "ood") -> str:
    """Notebook 04's closing sentence as its committed cell writes it from ``summary``."""
    from dcatkit import explore, stats

    cells = json.loads((NB / "04_lambda_ablation.ipynb").read_text())["cells"]
    at = next(i for i, c in enumerate(cells) if "What this draw shows" in "".join(c["source"]))
    src = "".join(next(c for c in cells[at:] if c["cell_type"] == "code")["source"])
    out = []
    exec(src, dict(summary=summary, seeds=list(range(n_seeds)), checked={"split_name": split_name}, stats=stats,
                   np=np, pd=pd, and_join=explore.and_join, n_of=explore.n_of, Markdown=lambda s: s,
                   display=out.append))
    assert len(out) == 1
    return _flat(out[0])


def _summary_04(bounds) -> pd.DataFrame:
    """A baseline row and four λ cells (MCMA and not, λ 1 and 100) with ``bounds`` (low, high) or
    None for a cell with too few seeds to be tested."""
    rows = [dict(method="none", mcma=False, lam=0.0, diff_mean=np.nan, ci_low=np.nan, ci_high=np.nan,
                 family_size=np.nan)]
    for (mcma, lam), b in zip([(True, 1.0), (True, 100.0), (False, 1.0), (False, 100.0)], bounds):
        lo, hi = b if b is not None else (np.nan, np.nan)
        rows.append(dict(method="dcat", mcma=mcma, lam=lam, diff_mean=np.nan if b is None else (lo + hi) / 2,
                         ci_low=lo, ci_high=hi, family_size=np.nan if b is None else 4.0))
    return pd.DataFrame(rows)



@pytest.mark.parametrize("bounds, says", [
    ([(-0.1, 0.1)] * 4, "On `ood`, over 10 seeds, none of the 4 tested intervals excludes 0 on this data draw. "
                        "One draw describes"),
    ([(-0.1, 0.1), (-0.22, -0.02), (-0.1, 0.1), (-0.1, 0.1)],
     "over 10 seeds, 1 of the 4 tested intervals excludes 0 on this data draw (MCMA at λ = 100: "
     "-0.120 [-0.220, -0.020]). One draw"),
    ([(-0.1, 0.1), (-0.22, -0.02), (0.01, 0.03), (-0.1, 0.1)],
     "2 of the 4 tested intervals exclude 0 on this data draw (MCMA at λ = 100: -0.120 [-0.220, -0.020] and "
     "no MCMA at λ = 1: +0.020 [+0.010, +0.030])."),
    ([None, (-0.22, -0.02), None, None],
     "1 of the 1 tested interval excludes 0 on this data draw (MCMA at λ = 100: -0.120 [-0.220, -0.020]). "
     "3 settings had too few seeds to be tested (no interval)."),
    ([None] * 4, "over 10 seeds, no setting was tested, so there is no interval to read. 4 settings had too few "
                 "seeds to be tested (no interval)."),
])
def test_notebook_04_closing_sentence_for_every_outcome(bounds, says):
    """Notebook 04's closing sentence, written from section 4's table, reads right whatever the
    draw gives: no stacked colons, counts with their nouns, the intervals that exclude 0 named
    with their bounds, untested settings counted (it read "over 10 seeds: no interval excludes
    0 on this data draw: every setting's holds 0")."""
    text = _closing_04(_summary_04(bounds), 10)
    assert says in text, text
    assert "(s)" not in text and ": none" not in text and "seeds:" not in text


def test_notebook_04_closing_sentence_counts_one_seed_and_names_the_id_split():
    text = _closing_04(_summary_04([None] * 4), 1, "id")
    assert text.startswith("On `id`, over 1 seed, no setting was tested"), text
    assert text.endswith("the paper's Table IV is OOD, so agreement or disagreement with it is not a replication "
                         "either way."), text
