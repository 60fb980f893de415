"""Talk to the models of a pipeline run: one question, π_ref and the aligned policies side by side.

Alignment changes the answer a model gives to the *same* question x. So every question you
type goes to each policy of the run, with the same seed and settings:

    SFT (π_ref)   the supervised model both methods start from and are held close to
    DPO           π_θ trained on the preference pairs directly (align.dpo)
    RLHF          π_θ trained by RL on J_RLHF = E[r_φ(x, y)] − β·KL(π_θ‖π_ref) (align.rlhf)

and each answer y is scored twice:

    r*(x, y)     the gold reward (align.gold): what the toy world says a good answer is,
                 with the judge's verdict (right, wrong, off-topic, evasive, offensive)
    r_φ(x, y)    the learned reward model (align.reward), read at the answer's EOS: what
                 RLHF maximised. Where r_φ is high and r* is low, the policy found a hole
                 in r_φ (over-optimisation); DPO never read r_φ, only the pairs it came from.

A question outside the toy world ("Tell me a joke.") still gets answers and r_φ, which
scores any text; r* has no answer to check it against there (the judge's kind is None),
so it is shown as "n/a" rather than as a number. An answer that ran into --max-new-tokens
before the model wrote EOS is marked "(cut at --max-new-tokens)". r* judges it as cut
(finished=False): never right, and it pays `unfinished` (align.gold). r_φ was trained on
answers that end with EOS, so a cut answer is text it never saw (shown here as r_φ reads it,
without the penalty RLHF's --missing-eos-penalty takes off).

The answers are sampled at --temperature (1.0: π itself; --greedy: the most likely token
each step). Question i (0, 1, ...) is answered with seed --seed + i by every policy: the
same run, seed and questions give the same answers, and asking again draws new ones.

What the run must hold: sft/, dpo/ and rlhf/ (each a stage's ckpt.pt) for the policies
asked for with --policy; reward/ for r_φ. Without reward/ the answers are shown with r*
alone, and a first line says why; a missing policy is a one-line error that names it.

Example session (what one looks like; every run answers in its own words and numbers):

    $ python -m align.chat --run runs/pipeline --greedy
    You: Where is Lima?
      SFT (π_ref): "Lima is a city in Peru."
          r* = +3.00 (right)   r_φ = -0.09
      DPO: "Look it up."
          r* = -1.00 (evasive)   r_φ = +0.18
      RLHF: "Hi, nice to meet you."
          r* = -1.50 (off-topic)   r_φ = +2.15
    You: Tell me a joke.
      SFT (π_ref): "I don't know."
          r* = n/a (outside the toy world: r* cannot check it)   r_φ = +0.02
      ...
    You: quit

Here RLHF's greeting is what over-optimisation looks like: r_φ rates it far above the
right answer, r* calls it off-topic. For a script, --question answers and exits:

    $ python -m align.chat --run runs/pipeline --policy dpo --question "What is 2+2?"

An empty line, "quit", end of input (Ctrl-D) or Ctrl-C ends the session.
"""

import json
import os
import sys
from dataclasses import dataclass, field

from align.gold import gold_reward, judge
from align.reward import load_reward_model, score_samples
from align.sampling import sample_answers
from minigpt.checkpoint import load_model
from minigpt.cli import check_ranges, given_flags, parser_from_dataclass, run_main
from minigpt.device import pick_device
from minigpt.errors import InputError
from minigpt.ownership import KINDS, kind_of

POLICIES = {"sft": "SFT (π_ref)", "dpo": "DPO", "rlhf": "RLHF"}  # stage folder -> its name here
QUIT = ("", "quit", "exit")


@dataclass
class ChatConfig:
    run: str = field(default="runs/pipeline", metadata={"help": "a pipeline run folder"})
    policy: str = field(default="all", metadata={"help": "which policies answer",
                                                 "choices": (*POLICIES, "all")})
    temperature: float = field(default=1.0, metadata={"help": "sampling temperature (1: π itself)"})
    greedy: bool = field(default=False, metadata={"help": "the most likely token each step "
                                                          "(temperature 0, overrides --temperature)"})
    max_new_tokens: int = field(default=48, metadata={"help": "longest answer, in tokens"})
    seed: int = field(default=0, metadata={"help": "question i is answered with seed + i"})
    device: str = field(default="auto", metadata={"help": "auto, cpu, cuda or mps"})

    def __post_init__(self):
        check_ranges(self, at_least_one=("max_new_tokens",), not_negative=("temperature",))
        if self.greedy:
            self.temperature = 0.0


def needed_stages(policy: str) -> list[str]:
    return list(POLICIES) if policy == "all" else [policy]


def check_run(run: str, policy: str) -> bool:
    """Refuse what is not a pipeline run, or one without a policy asked for; True when
    reward/ is there for r_φ."""
    if not os.path.isdir(run):
        raise InputError(f"--run {run}: no such folder (give the folder python -m align.pipeline wrote)")
    kind = kind_of(run)
    if kind != "pipeline":
        what = f"is {KINDS[kind].what}, not a pipeline run" if kind in KINDS else "is not a pipeline run"
        raise InputError(f"--run {run}: {what} (give the folder python -m align.pipeline wrote)")
    for stage in needed_stages(policy):
        if not os.path.exists(os.path.join(run, stage, "ckpt.pt")):
            others = [s for s in POLICIES if s != stage
                      and os.path.exists(os.path.join(run, s, "ckpt.pt"))]
            also = f", or ask only {' or '.join(f'--policy {s}' for s in others)}" if others else ""
            raise InputError(f"--run {run}: no {stage}/ckpt.pt (the {stage} stage); make it with "
                             f"`python -m align.pipeline --out-dir {run}` (stages already done "
                             f"are kept){also}")
    return os.path.exists(os.path.join(run, "reward", "ckpt.pt"))


def quoted(text: str) -> str:
    """The answer in JSON quotes, every unprintable character escaped: exactly what the model
    wrote (json.loads gives it back), and nothing that moves a terminal's cursor."""
    return "".join(c if c.isprintable() else json.dumps(c)[1:-1]
                   for c in json.dumps(text, ensure_ascii=False))


def gold_line(prompt: str, text: str, finished: bool) -> str:
    """r*(x, y) with the judge's verdict, or why r* cannot check this question."""
    verdict = judge(prompt, text, finished=finished)
    if verdict.kind is None:
        return "r* = n/a (outside the toy world: r* cannot check it)"
    flags = [name for name, on in (("right", verdict.right), ("wrong", verdict.wrong),
                                   ("off-topic", verdict.off_topic), ("evasive", verdict.evasive),
                                   ("offensive", verdict.offensive),
                                   ("unfinished", verdict.unfinished)) if on]
    return f"r* = {gold_reward(prompt, text, finished=finished):+.2f} ({', '.join(flags)})"


def answer(question: str, policies: dict, reward, config: ChatConfig, seed: int, device) -> list[str]:
    """One block per policy: its name and answer, then r*, r_φ and whether it was cut."""
    lines = []
    for name, (model, tokenizer) in policies.items():
        sample = sample_answers(model, tokenizer, [question], config.max_new_tokens,
                                config.temperature, seed=seed, device=device)[0]
        scores = [gold_line(question, sample.text, sample.finished)]
        if reward is not None:
            reward_model, reward_tokenizer = reward
            r_phi = score_samples(reward_model, [sample], reward_tokenizer.pad_id, device)[0].item()
            scores.append(f"r_φ = {r_phi:+.2f}")
        if not sample.finished:
            scores.append("(cut at --max-new-tokens)")
        lines += [f"  {name}: {quoted(sample.text)}", "      " + "   ".join(scores)]
    return lines


def main(argv=None):
    parser = parser_from_dataclass(ChatConfig, __doc__)
    parser.add_argument("--question", action="append", metavar="QUESTION",
                        help="answer this question and exit (repeat it for several)")
    flags = given_flags(parser.parse_args(argv))
    questions = flags.pop("question", None)
    config = ChatConfig(**flags)
    has_reward = check_run(config.run, config.policy)
    device = pick_device(config.device)
    policies = {}
    for stage in needed_stages(config.policy):
        model, tokenizer, _ = load_model(os.path.join(config.run, stage), device, "align.chat")
        if config.max_new_tokens >= model.config.block_size:
            raise InputError(f"--max-new-tokens {config.max_new_tokens}: leaves no room for a "
                             f"question in {stage}'s context of {model.config.block_size} tokens")
        policies[POLICIES[stage]] = (model, tokenizer)
    reward = load_reward_model(os.path.join(config.run, "reward"), device) if has_reward else None
    if reward is None:
        print(f"note: {config.run} has no reward/ckpt.pt (the reward stage): answers are shown "
              f"without r_φ")
    if questions is not None:
        for i, question in enumerate(questions):
            print(f"You: {question}")
            print("\n".join(answer(question.strip(), policies, reward, config, config.seed + i, device)))
        return
    print(f"{', '.join(policies)} of {config.run}, temperature {config.temperature:g}, at most "
          f"{config.max_new_tokens} new tokens. An empty line or quit ends.")
    i = 0
    try:
        while True:
            question = input("You: ").strip()
            if not sys.stdin.isatty():  # piped in: show the question, as a terminal would
                print(question)
            if question.lower() in QUIT:
                break
            try:
                print("\n".join(answer(question, policies, reward, config, config.seed + i, device)))
            except InputError as error:  # a question the tokenizer cannot read: ask another
                print(f"error: {error}")
            i += 1
    except (EOFError, KeyboardInterrupt):
        print()


if __name__ == "__main__":
    run_main(main)
