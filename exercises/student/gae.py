"""Exercise: generalised advantage estimation (lesson 11, section "GAE: advantages from a value head").

Replace the TODO with your code, then:
    python -m exercises grade gae
    python -m exercises run --student gae -- lessons/11_rlhf_by_rl.py
    python -m exercises run --student gae -- -m align.rlhf --algorithm ppo --init runs/pipeline/sft \\
        --reward runs/pipeline/reward --data runs/pipeline/data/pairs_train.jsonl --out-dir runs/my-ppo
"""

import torch


def gae(rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float = 1.0,
        lam: float = 0.95) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation (Schulman et al. 2016).

    rewards, values: (N, L), values V(s_t) of the state before each answer token; mask
    (N, L), True on the answer (after the prompt's False columns, before the padding's).
    After an answer's last token the episode is over: V = 0 there. Returns
    (advantages (N, L), returns (N, L)), 0 off the answer, where

        δ_t = r_t + γ·V(s_{t+1}) − V(s_t),    Â_t = δ_t + γλ·Â_{t+1}  (= Σ_l (γλ)^l δ_{t+l}),
        G_t = Â_t + V(s_t)                    (the value head's target).

    λ = 1 gives Â_t = Σ_l γ^l r_{t+l} − V(s_t) (the return-to-go minus V); λ = 0 gives δ_t.

    TODO: zero the rewards and values off the mask (torch.where), so that V = 0 after the
    answer; then loop over the columns from the last to the first, keeping the next
    column's V and Â (0 after the last column): δ, then Â_t = δ_t + γλ·Â_{t+1}. Return the
    advantages and Â + V, both 0 off the mask. Do not change the inputs.
    """
    raise NotImplementedError("exercise gae: Â_t = δ_t + γλ·Â_{t+1}, backwards over the answer")
