# %% [markdown]
# # Lesson 14 — Where the data comes from, and what training costs
# # (¿De dónde vienen los datos? / Costos: No aptos para los débiles de corazón)
#
# Two slides of the lecture put numbers on pre-training. The first shows the composition
# of the Pile by category (Academic, Internet, Prose, Dialogue, Misc) and a table of what
# some models were trained on:
#
# | Model | Training data (the slide) |
# | --- | --- |
# | BERT | BookCorpus, English Wikipedia |
# | GPT-1 | BookCorpus |
# | GPT-3 | CommonCrawl, WebText, English Wikipedia, and 2 book databases ("Books 1" and |
# |       | "Books 2") |
# | GPT-3.5+ | Undisclosed |
#
# The second quotes Sharir, Peleg & Shoham (AI21 Labs, April 2020): $2.5k–$50k for a
# model of 110 million parameters, $10k–$200k for 340 million, $80k–$1.6m for 1.5 billion.
#
# This lesson puts the sources' own tables beside the slides:
#
# 1. the Pile's 22 components (Gao et al. 2020, Table 1), grouped in the slide's five
#    categories, with a figure;
# 2. the model → data table with the papers' numbers (BERT's word counts, GPT-3's mix);
# 3. the toy world's own pre-training corpus, measured the same way;
# 4. the cost slide reproduced by the project's calculator (`minigpt.cost`), and the same
#    calculation for a training run measured here, on this machine.

# %%
from lesson_setup import lesson_paths  # lessons/lesson_setup.py

ROOT, SMOKE, OUT = lesson_paths(__file__)  # project root, LESSONS_SMOKE=1?, figures folder

import inspect
import os
from collections import Counter

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch

from align.gold import judge
from minigpt import GPTConfig
from minigpt.bench import BenchConfig, training_tokens_per_s
from minigpt.cost import (CPU_PEAK_TFLOPS, SLIDE, CostConfig, device_hours, dollars,
                          measure_peak_flops, model_flops_utilisation, money, run_report,
                          run_utilisation, slide_rows, slide_table, training_flops)
from minigpt.tokenizer import CharTokenizer
from minigpt.train import TrainConfig, train
from toyworld.template import SEPARATOR, USER_PREFIX
from toyworld.world import CORPUS_MIX, parse_prompt, pretraining_corpus

torch.manual_seed(0)
CATEGORIES = ("Academic", "Internet", "Prose", "Dialogue", "Misc")  # the slide's legend, in order
COLOURS = dict(zip(CATEGORIES, ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple")))

# %% [markdown]
# ## The Pile, component by component
#
# Source: Gao et al., "The Pile: An 800GB Dataset of Diverse Text for Language Modeling",
# arXiv:2101.00027 (2020), **Table 1**. For each of its 22 components: the raw size (GiB,
# before up- or down-sampling), the epochs (passes over the component in one pass over the
# Pile), the effective size (raw × epochs: the bytes it occupies in the Pile) and the
# weight (the share of the Pile's bytes, in %). The figures below were checked against the
# paper's text (Table 1 and its caption) and the EleutherAI/the-pile README, which agree.
#
# The categories are those of the paper's Figure 1 ("Treemap of Pile components by
# effective size"), whose legend the slide shows. Figure 1 is a picture: which component
# sits in which category is our reading of it, not a table we could check in the text.
# Academic: PubMed Central, ArXiv, FreeLaw, USPTO Backgrounds, PubMed Abstracts,
# PhilPapers, NIH ExPorter. Internet: Pile-CC, OpenWebText2, Stack Exchange, Wikipedia.
# Prose: Books3, Gutenberg (PG-19), BookCorpus2. Dialogue: OpenSubtitles, Ubuntu IRC,
# EuroParl, HackerNews, YoutubeSubtitles. Misc: GitHub, DM Mathematics, Enron Emails.

# %%
PILE = {  # component: (raw GiB, weight %, epochs, effective GiB, category); Gao et al. Table 1
    "Pile-CC": (227.12, 18.11, 1.0, 227.12, "Internet"),
    "PubMed Central": (90.27, 14.40, 2.0, 180.55, "Academic"),
    "Books3": (100.96, 12.07, 1.5, 151.44, "Prose"),
    "OpenWebText2": (62.77, 10.01, 2.0, 125.54, "Internet"),
    "ArXiv": (56.21, 8.96, 2.0, 112.42, "Academic"),
    "GitHub": (95.16, 7.59, 1.0, 95.16, "Misc"),
    "FreeLaw": (51.15, 6.12, 1.5, 76.73, "Academic"),
    "Stack Exchange": (32.20, 5.13, 2.0, 64.39, "Internet"),
    "USPTO Backgrounds": (22.90, 3.65, 2.0, 45.81, "Academic"),
    "PubMed Abstracts": (19.26, 3.07, 2.0, 38.53, "Academic"),
    "Gutenberg (PG-19)": (10.88, 2.17, 2.5, 27.19, "Prose"),
    "OpenSubtitles": (12.98, 1.55, 1.5, 19.47, "Dialogue"),
    "Wikipedia (en)": (6.38, 1.53, 3.0, 19.13, "Internet"),
    "DM Mathematics": (7.75, 1.24, 2.0, 15.49, "Misc"),
    "Ubuntu IRC": (5.52, 0.88, 2.0, 11.03, "Dialogue"),
    "BookCorpus2": (6.30, 0.75, 1.5, 9.45, "Prose"),
    "EuroParl": (4.59, 0.73, 2.0, 9.17, "Dialogue"),
    "HackerNews": (3.90, 0.62, 2.0, 7.80, "Dialogue"),
    "YoutubeSubtitles": (3.73, 0.60, 2.0, 7.47, "Dialogue"),
    "PhilPapers": (2.38, 0.38, 2.0, 4.76, "Academic"),
    "NIH ExPorter": (1.89, 0.30, 2.0, 3.79, "Academic"),
    "Enron Emails": (0.88, 0.14, 2.0, 1.76, "Misc"),
}
PILE_RAW_GIB, PILE_EFFECTIVE_GIB = 825.18, 1254.20  # Table 1's last row, "The Pile"

print(f"{'component':18} {'category':9} {'raw GiB':>8} {'epochs':>6} {'effective GiB':>13} "
      f"{'weight %':>8}")
for name, (raw, weight, epochs, effective, category) in PILE.items():
    print(f"{name:18} {category:9} {raw:8.2f} {epochs:6.1f} {effective:13.2f} {weight:8.2f}")

# Self-checks of the transcription: the columns of Table 1 must agree with each other.
weights = [row[1] for row in PILE.values()]
print(f"\n22 components: {len(PILE)}; weights sum to {sum(weights):.2f} %")
assert len(PILE) == 22 and abs(sum(weights) - 100) < 0.05
assert abs(sum(row[0] for row in PILE.values()) - PILE_RAW_GIB) < 0.05
assert abs(sum(row[3] for row in PILE.values()) - PILE_EFFECTIVE_GIB) < 0.05
for name, (raw, weight, epochs, effective, _) in PILE.items():
    assert abs(raw * epochs - effective) < 0.015, name  # effective = raw × epochs (rounded)
    assert abs(100 * effective / PILE_EFFECTIVE_GIB - weight) < 0.01, name  # weight = its share
print("raw sizes sum to the total raw size, effective = raw × epochs, weight = effective / "
      "total: all within rounding")


def category_totals(components: dict) -> dict:
    """Σ weight over the components of each category: {category: (weight %, names)}."""
    totals = {category: [0.0, []] for category in CATEGORIES}
    for name, (_, weight, _, _, category) in components.items():
        totals[category][0] += weight
        totals[category][1].append(name)
    return {category: (total, names) for category, (total, names) in totals.items()}


pile_totals = category_totals(PILE)
print("\n| category | share of the Pile | components |")
print("| --- | --- | --- |")
for category, (total, names) in pile_totals.items():
    print(f"| {category} | {total:.2f} % | {', '.join(names)} |")

# %%
fig, ax = plt.subplots(figsize=(9, 7))
names = sorted(PILE, key=lambda name: PILE[name][1])  # smallest at the bottom
ax.barh(names, [PILE[name][1] for name in names],
        color=[COLOURS[PILE[name][4]] for name in names])
for i, name in enumerate(names):
    ax.text(PILE[name][1] + 0.2, i, f"{PILE[name][1]:.2f}", va="center", fontsize=7)
handles = [plt.Rectangle((0, 0), 1, 1, color=COLOURS[c]) for c in CATEGORIES]
ax.legend(handles, [f"{c} ({pile_totals[c][0]:.1f} %)" for c in CATEGORIES],
          title="category (total)", loc="lower right")
ax.set(xlabel="weight: share of the Pile's bytes (%)", ylabel="component",
       title="Composition of the Pile (Gao et al. 2020, Table 1), coloured by category")
ax.grid(axis="x", alpha=0.3)
fig.tight_layout()
fig.savefig(OUT / "pile_components.png", dpi=100)
plt.close(fig)
print(f"saved {OUT / 'pile_components.png'}")

# %% [markdown]
# What the weights mean: the Pile repeats its components by choice, not by size.
# Wikipedia is 6.38 GiB of raw text seen 3 times (19.13 GiB, 1.53 %); Pile-CC, the
# Pile's own text extraction from Common Crawl, 227 GiB seen once. Over a third of the
# Pile is academic writing, and "Internet" is only about as big: compare GPT-3's mix
# below, 60 % Common Crawl.

# %% [markdown]
# ## What the slide's models were trained on
#
# - **BERT** (Devlin et al. 2018, arXiv:1810.04805, section 3.1): BooksCorpus, 800M words,
#   and English Wikipedia, 2,500M words (text passages only: no lists, tables or headers).
# - **GPT-1** (Radford et al. 2018, "Improving Language Understanding by Generative
#   Pre-Training", section 4.1): BooksCorpus alone, over 7,000 unpublished books.
# - **GPT-3** (Brown et al. 2020, "Language Models are Few-Shot Learners",
#   arXiv:2005.14165, **Table 2.2**): five datasets, each with its quantity in tokens, its
#   weight in the training mix (the fraction of training examples drawn from it, on
#   purpose not proportional to its size) and the epochs elapsed over 300B training tokens.
# - **GPT-3.5 and later**: the slide says undisclosed; we have no table to show.
#
# Each figure was checked with the search tool against the papers' text (and copies of
# it); none is from memory.

# %%
BERT_WORDS = {"BooksCorpus": 800e6, "English Wikipedia": 2_500e6}  # Devlin et al. 2018, §3.1
GPT3_MIX = {  # dataset: (tokens, weight in training mix, epochs at 300B); Brown et al. Table 2.2
    "Common Crawl (filtered)": (410e9, 0.60, 0.44),
    "WebText2": (19e9, 0.22, 2.9),
    "Books1": (12e9, 0.08, 1.9),
    "Books2": (55e9, 0.08, 0.43),
    "Wikipedia": (3e9, 0.03, 3.4),
}
GPT3_TRAINING_TOKENS = 300e9

print("BERT (Devlin et al. 2018): words and shares")
bert_total = sum(BERT_WORDS.values())
for name, words in BERT_WORDS.items():
    print(f"  {name:18} {words / 1e6:6,.0f}M words  {100 * words / bert_total:5.1f} %")
print(f"  {'total':18} {bert_total / 1e6:6,.0f}M words")
print("GPT-1 (Radford et al. 2018): BooksCorpus, 100 %")

print("\nGPT-3 (Brown et al. 2020, Table 2.2)")
print(f"  {'dataset':24} {'tokens':>7} {'weight':>7} {'epochs (paper)':>15} "
      f"{'300B·weight/tokens':>19} {'share of tokens':>16}")
tokens_total = sum(tokens for tokens, _, _ in GPT3_MIX.values())
for name, (tokens, weight, epochs) in GPT3_MIX.items():
    print(f"  {name:24} {tokens / 1e9:6.0f}B {weight:7.0%} {epochs:15.2f} "
          f"{GPT3_TRAINING_TOKENS * weight / tokens:19.2f} {tokens / tokens_total:16.1%}")
print(f"  weights sum to {sum(w for _, w, _ in GPT3_MIX.values()):.0%} (the paper's rounding)")

# %% [markdown]
# How to read it. The weight is what the model sees, not what exists: Common Crawl is 82 %
# of the tokens available but 60 % of the mix, so over 300B tokens it is not even read
# once (0.44 epochs); Wikipedia, 0.6 % of the tokens, is 3 % of the mix and read 3.4
# times. The column "300B·weight/tokens" recomputes the epochs from the other two columns:
# it matches for Common Crawl and Books2, and not quite for WebText2 (3.5 against 2.9),
# Books1 and Wikipedia (3.0 against 3.4). The paper's weights are rounded to whole percent
# (they add up to 101 %) and its token counts to whole billions, so its columns do not
# reproduce each other exactly; we print both rather than choose.
#
# Where the slide differs from the papers: its GPT-3 row says "WebText" where Table 2.2
# says WebText2 (an expanded WebText, links scraped over a longer period), and "CommonCrawl"
# is a filtered Common Crawl; the slide gives no weights. BERT's and GPT-1's papers call
# the book corpus BooksCorpus (Zhu et al. 2015); the Pile's BookCorpus2 is a later,
# expanded version.

# %% [markdown]
# ## Our own corpus: the toy world's "web"
#
# `minigpt.train` pre-trains, by default, on `toyworld.world.pretraining_corpus()`. It is
# a list of paragraphs, each ending in a blank line: half are 2–4 plain sentences of fact
# (cities and countries, sums, things explained to a child, a few of them false), half
# are dialogues in the prompt template (`User: ...` / `Assistant: ...`) whose answers
# are good, wrong, rude or unhelpful, mixed as `CORPUS_MIX` says. We measure it from the
# text itself: split into paragraphs, a dialogue is one that starts with the template's
# `USER_PREFIX`; its question's kind comes from `parse_prompt`, and its answer's quality
# from the gold judge `align.gold.judge` (offensive → rude, evasive → unhelpful, wrong,
# right → good).

# %%
corpus = pretraining_corpus(50_000 if SMOKE else 1_000_000, seed=0)
paragraphs = corpus.split("\n\n")[:-1]  # the text ends with "\n\n": the last piece is empty
assert sum(len(p) + 2 for p in paragraphs) == len(corpus)


def quality_of(prompt: str, response: str) -> str:
    """The answer's quality as the gold judge reads it (CORPUS_MIX's names, + off-topic)."""
    verdict = judge(prompt, response)
    if verdict.offensive:
        return "rude"
    if verdict.evasive:
        return "unhelpful"
    if verdict.wrong:
        return "wrong"
    return "good" if verdict.right else "off-topic"


chars_by_kind, count_by_kind = Counter(), Counter()
chars_by_quality, count_by_quality = Counter(), Counter()
for paragraph in paragraphs:
    size = len(paragraph) + 2  # its blank line counts with it
    if paragraph.startswith(USER_PREFIX):
        prompt, response = paragraph[len(USER_PREFIX):].split(SEPARATOR)
        kind = f"dialogue: {parse_prompt(prompt).kind}"
        quality = quality_of(prompt, response)
        chars_by_quality[quality] += size
        count_by_quality[quality] += 1
    else:
        kind = "plain facts"
    chars_by_kind[kind] += size
    count_by_kind[kind] += 1

total_chars = len(corpus)
print(f"toy corpus: {total_chars:,} characters (= byte tokens: it is ASCII: "
      f"{corpus.isascii()}), {len(paragraphs):,} paragraphs")
print("\n| kind of text | paragraphs | characters | share |")
print("| --- | --- | --- | --- |")
for kind, chars in chars_by_kind.most_common():
    print(f"| {kind} | {count_by_kind[kind]:,} | {chars:,} | {chars / total_chars:.1%} |")

dialogue_chars, dialogues = sum(chars_by_quality.values()), sum(count_by_quality.values())
print("\nthe dialogues by answer quality, as the gold judge reads them, against CORPUS_MIX:")
print(f"  {'quality':10} {'dialogues':>9} {'characters':>10} {'CORPUS_MIX':>10}")
for quality in ("good", "wrong", "rude", "unhelpful", "off-topic"):
    if count_by_quality[quality] or quality in CORPUS_MIX:
        print(f"  {quality:10} {count_by_quality[quality] / dialogues:9.1%} "
              f"{chars_by_quality[quality] / dialogue_chars:10.1%} "
              f"{CORPUS_MIX.get(quality, 0):10.0%}")

# %% [markdown]
# Half of the paragraphs are dialogues, but they hold less than half of the characters:
# a dialogue is one short question and one short answer, a facts paragraph 2–4 sentences.
# Counted in dialogues, the judge's reading follows CORPUS_MIX (a random draw per
# dialogue, so only up to sampling noise); counted in characters it need not, because the
# answers differ in length ("Look it up." against a sentence explaining the sun to a
# child). The composition of a corpus depends on what you count: the Pile counts bytes,
# GPT-3 training examples, BERT words. Where does it sit beside the others? Its facts are its
# "Wikipedia" (the Pile files Wikipedia under Internet) and its dialogues its "Dialogue";
# it has nothing academic, no books, no code. The figure puts the five mixes on one scale,
# coloured by the slide's categories (GPT-3's and BERT's datasets placed in them as the
# Pile would: web text and Wikipedia under Internet, books under Prose).

# %%
facts_share = chars_by_kind["plain facts"] / total_chars
MIXES = {  # corpus: [(part, share %, category)]
    "BERT": [(name, 100 * words / bert_total, "Prose" if "Books" in name else "Internet")
             for name, words in BERT_WORDS.items()],
    "GPT-1": [("BooksCorpus", 100.0, "Prose")],
    "GPT-3 (weights, Σ 101 %)": [(name, 100 * weight, "Prose" if "Books" in name else "Internet")
                            for name, (_, weight, _) in GPT3_MIX.items()],
    "the Pile": [(category, total, category) for category, (total, _) in pile_totals.items()],
    "toy world": [("plain facts", 100 * facts_share, "Internet"),
                  ("dialogues", 100 * (1 - facts_share), "Dialogue")],
}
fig, ax = plt.subplots(figsize=(11, 4.8))
for row, (corpus_name, parts) in enumerate(MIXES.items()):
    left = 0.0
    for part, share, category in parts:
        ax.barh(row, share, left=left, color=COLOURS[category], edgecolor="white")
        if share >= 4:
            ax.text(left + share / 2, row, f"{part}\n{share:.0f} %", ha="center", va="center",
                    fontsize=7, color="white")
        left += share
ax.set_yticks(range(len(MIXES)), list(MIXES))
ax.invert_yaxis()
handles = [plt.Rectangle((0, 0), 1, 1, color=COLOURS[c]) for c in CATEGORIES]
ax.legend(handles, CATEGORIES, title="the Pile's categories", loc="upper left",
          bbox_to_anchor=(1.0, 1.0), fontsize=8)
ax.set(xlabel="share of the corpus (%; BERT in words, GPT-3 in training examples, the Pile "
              "in bytes, toy world in characters)", ylabel="corpus",
       title="Pre-training mixes: BERT, GPT-1, GPT-3, the Pile and the toy world")
fig.tight_layout()
fig.savefig(OUT / "corpus_mixes.png", dpi=100)
plt.close(fig)
print(f"saved {OUT / 'corpus_mixes.png'}")

# %% [markdown]
# ## Costs: the calculator
#
# `minigpt.cost` turns a model and a number of tokens into FLOPs, device-hours and
# dollars. With N the weights the matrix products apply to one token, D the tokens
# trained on, L layers, T tokens per sequence and d the model width:
#
#     C ≈ (6·N + 12·L·T·d) · D                    training FLOPs (forward + backward)
#     device-hours = C / (peak FLOP/s · MFU) / 3600
#     $ = device-hours · price per device-hour · runs
#
# 6·N: each weight costs 2 FLOPs per token forward (a multiply and an add) and 4 backward
# (the gradients of its input and of its weight) — Kaplan et al.'s C ≈ 6·N·D. 12·L·T·d:
# attention's q·Kᵀ and A·V, every query against all T keys. MFU, the model FLOPs
# utilisation, is the fraction of the hardware's peak that those FLOPs reach.

# %%
print(inspect.getsource(training_flops))
print(inspect.getsource(device_hours))
print(inspect.getsource(dollars))
print(inspect.getsource(model_flops_utilisation))

# %% [markdown]
# The slide's three rows. Sharir et al. cost BERT-sized models trained on Wikipedia and
# the book corpus (15 GB); for each size, one training run and a "fully-loaded" cost with
# hyperparameter tuning, for which they take two configurations and ten runs each (their
# "modest upper bound", as the Synced review of the paper quotes it): the high end is 20×
# the low end in every row. The calculator's assumptions are printed under its table:
# BERT's schedule for all three sizes, a V100, MFU 20–40 %, 2020 cloud prices.

# %%
cost_config = CostConfig()
rows = slide_rows(cost_config)
print(slide_table(rows, cost_config))
for label, N, L, d, (low, high) in SLIDE:
    print(f"  the slide: {label}: {money(low)}–{money(high)}, high ÷ low = {high / low:.0f}")

# %%
fig, ax = plt.subplots(figsize=(7.5, 5))
for r in rows:
    ax.plot([r["N"] / 1.08] * 2, [r["slide_low"], r["slide_high"]], color="tab:gray",
            linewidth=6, solid_capstyle="butt")
    ax.plot([r["N"] * 1.08] * 2, [r["low"], r["high"]], color="tab:blue", linewidth=6,
            solid_capstyle="butt")
    ax.text(r["N"] * 1.25, r["low"], r["model"], fontsize=8, va="center")
ax.plot([], [], color="tab:gray", linewidth=6, label="the slide (Sharir et al. 2020)")
c = cost_config
ax.plot([], [], color="tab:blue", linewidth=6,
        label=f"minigpt.cost: 1 run at MFU {c.mfu_high:.0%}, ${c.price_low}/h\n"
              f"… {c.runs_high} runs at MFU {c.mfu_low:.0%}, ${c.price_high}/h")
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xlim(6e7, 6e9)
ax.set(xlabel="parameters N", ylabel="cost of training ($, log scale)",
       title="Training cost per model size: the slide's range and the calculator's\n"
             f"(D = {c.tokens:.3g} tokens, T = {c.seq_len}, {c.peak_tflops:g} TFLOP/s peak)")
ax.grid(alpha=0.3, which="both")
ax.legend(fontsize=8, loc="upper left")
fig.tight_layout()
fig.savefig(OUT / "cost_ranges.png", dpi=100)
plt.close(fig)
print(f"saved {OUT / 'cost_ranges.png'}")

# %% [markdown]
# The calculator's range overlaps the slide's for every size (the "overlaps" column),
# from first principles and a handful of stated assumptions. It sits lower the larger the
# model (the ratio of the middles, last column): the calculator gives every size the same
# D and the same MFU, assumptions of ours, not necessarily the paper's. For a fixed D the
# cost grows with N: the three rows differ only in the model, trained on the same tokens.
# Every assumption moves the answer by its own factor: MFU and price ×2.5 between the
# ends of one run, the number of runs ×20.

# %% [markdown]
# ## The same calculation for a run measured here
#
# Now a real run of the project's own code: `minigpt.train` trains a small GPT on the toy
# corpus for a few steps and logs its tokens/s; `minigpt.cost.run_utilisation` reads the
# run folder and turns them into FLOP/s and MFU, against two peaks: the CPU's theoretical
# fp32 peak (`CPU_PEAK_TFLOPS`: the 2-core AVX2 EPYC the calculator was written on; MFU's
# definition wants a theoretical peak) and what a big matmul reaches here
# (`measure_peak_flops`). `minigpt.bench` times the same model on one fixed batch, without
# data loading or evaluation, as a second measurement.

# %%
corpus_file = OUT / "corpus.txt"
corpus_file.write_text(corpus, encoding="utf-8")
shape = dict(n_layer=1, n_head=2, n_embd=32) if SMOKE else dict(n_layer=4, n_head=4, n_embd=128)
steps = 4 if SMOKE else 40
run_config = TrainConfig(data=str(corpus_file), out_dir=str(OUT / "measured_run"),
                         tokenizer="char", block_size=64, batch_size=12, max_iters=steps,
                         warmup_iters=1, eval_interval=steps, eval_iters=1 if SMOKE else 2,
                         sample_tokens=0, overwrite=True, device="cpu", seed=0, **shape)
summary = train(run_config, progress=False)
peak_cpu = CPU_PEAK_TFLOPS * 1e12
measured = run_utilisation(summary["run"], peak_cpu)
print(run_report(measured, "CPU_PEAK_TFLOPS, the theoretical fp32 peak of a 2-core AVX2 EPYC"))
matmul_peak = measure_peak_flops(size=512 if SMOKE else 1024, seconds=0.3 if SMOKE else 2.0)
print(f"  a {512 if SMOKE else 1024}² fp32 matmul here: {matmul_peak / 1e9:.3g} GFLOP/s "
      f"({torch.get_num_threads()} torch thread(s), {os.cpu_count()} CPUs): the run reaches "
      f"{measured['achieved_flops'] / matmul_peak:.0%} of it")
if torch.get_num_threads() < (os.cpu_count() or 1):
    print(f"  (with {torch.get_num_threads()} thread(s) on {os.cpu_count()} cores, at most "
          f"{torch.get_num_threads() / os.cpu_count():.0%} of the all-core peak is reachable)")

vocab = CharTokenizer.from_text(corpus).vocab_size  # the run's: its characters + 4 specials
bench = BenchConfig(n_layer=shape["n_layer"], n_head=shape["n_head"], n_embd=shape["n_embd"],
                    block_size=64, vocab_size=vocab, batch_size=12, train_block_size=64,
                    prompt_tokens=1, new_tokens=1, train_steps=2 if SMOKE else 5,
                    repeats=1 if SMOKE else 3, device="cpu")
bench_speed, _ = training_tokens_per_s(bench, "manual", "cpu")  # tokens/s, activation bytes
bench_mfu = model_flops_utilisation(GPTConfig(block_size=64, vocab_size=vocab, **shape), 64,
                                    bench_speed, peak_cpu)
print(f"  minigpt.bench, the same model on one fixed batch: {bench_speed:,.0f} tokens/s, "
      f"MFU {bench_mfu:.1%} of CPU_PEAK_TFLOPS")

# %% [markdown]
# At that rate, what would BERT-base cost? Its run in the slide's table is C ≈ 9.2e19
# FLOPs; the device-hours are C / achieved FLOP/s (`device_hours` with this run's peak
# and MFU). This ignores that a 110M model would reach a different MFU than our small one
# (bigger matrices usually use the hardware better) and the memory that a 110M model and
# its optimiser need: it is the order of magnitude that counts.

# %%
bert = rows[0]
hours_here = device_hours(bert["flops"], measured["peak_flops"], measured["mfu"])
v100_peak = cost_config.peak_tflops * 1e12
hours_v100 = device_hours(bert["flops"], v100_peak, cost_config.mfu_high)
print(f"{bert['model']}: {bert['flops']:.3g} FLOPs per run")
print(f"  on this CPU at {measured['achieved_flops'] / 1e9:.3g} GFLOP/s: {hours_here:,.0f} "
      f"hours = {hours_here / 24 / 365.25:,.0f} years")
print(f"  on one V100 at MFU {cost_config.mfu_high:.0%}: {hours_v100:,.0f} hours = "
      f"{hours_v100 / 24:,.0f} days, "
      f"{money(dollars(bert['flops'], v100_peak, cost_config.mfu_high, cost_config.price_low))}"
      f" at ${cost_config.price_low}/h; {hours_here / hours_v100:,.0f}× faster than this CPU")
print(f"  this lesson's run: {measured['training_flops']:.3g} FLOPs, "
      f"{bert['flops'] / measured['training_flops']:.2g}× fewer than BERT-base's")
print("  (a price per CPU-hour is not among the calculator's sources: multiply the hours "
      "by your own)")

# %% [markdown]
# The slide's title is not an exaggeration. On this CPU, BERT-base — the smallest of the
# three rows — takes the years printed above; on the 2020 workhorse GPU, weeks of one
# device (three at MFU 40 %, six at 20 %), and the dollars of the slide. Real runs spread
# those device-hours over many chips at once, which shortens the wait, not the bill.
# Run the calculator yourself:
#
#     python -m minigpt.cost                                   # the slide's rows
#     python -m minigpt.cost --params 7e9 --n-layer 32 --d-model 4096 --tokens 2e12 --seq-len 4096
#     python -m minigpt.cost --run runs/pretrain               # a training run's MFU

# %% [markdown]
# ## Summary
#
# - Pre-training data is a mix chosen by hand: the Pile weights 22 sources (over a third
#   academic), GPT-3 draws 60 % of its examples from filtered Common Crawl and reads
#   Wikipedia 3.4 times; the weight is what the model sees, not what exists.
# - The toy world's corpus is half facts, half dialogues of four qualities, measured from
#   its text with the project's own parser and gold judge.
# - Training FLOPs ≈ (6·N + 12·L·T·d)·D; hours = FLOPs / (peak · MFU); dollars = hours ·
#   price · runs. The calculator reproduces the slide's three ranges; this machine's
#   measured rate turns BERT-base into years.
#
# ## Glossary (glosario)
#
# español (the lecture) → English (the code):
#
# - **¿De dónde vienen los datos?** → where the pre-training data comes from: the Pile's
#   22 components, GPT-3's mix.
# - **Composition of the Pile by Category: Academic, Internet, Prose, Dialogue, Misc**
#   (the slide keeps them in English) → the Pile's five categories (Gao et al. 2020, Fig. 1).
# - **Model, Training Data; Undisclosed** → the model → training-data table; not published.
# - **Costos: No aptos para los débiles de corazón** → training cost (`minigpt.cost`);
#   Sharir et al.'s section title, "Costs: Not for the faint hearted".
# - **modelo de 110 millones de parámetros; 340 millones; 1.500 millones** → BERT-base
#   (110M), BERT-large (340M), 1.5B (GPT-2 XL's shape): the rows of `minigpt.cost.SLIDE`.
# - **pre-entrenamiento** (its cost) → training FLOPs C ≈ (6·N + 12·L·T·d)·D
#   (`training_flops`), device-hours (`device_hours`), dollars (`dollars`).
# - not in the lecture → weight in the training mix; epochs; model FLOPs utilisation, MFU
#   (`model_flops_utilisation`).
