"""Exercise: the REINFORCE update (lesson 5, section "REINFORCE (gradiente de la política)").

Replace the TODO with your code, then:
    python -m exercises grade reinforce_loss
    python -m exercises run --student reinforce_loss -- -m gridworld --algorithm reinforce
"""

import torch


def reinforce_loss(theta: torch.Tensor, states, actions, advantages) -> torch.Tensor:
    """A loss whose gradient is minus the REINFORCE estimate of ∇_θ J(θ):

        loss = −Σ_t A_t · log π_θ(a_t | s_t),   π_θ(· | s) = softmax(θ[s])

    theta: (S, A), one row of logits per state. states, actions: (T,) integer tensors of
    the episode's s_t and a_t. advantages: (T,), A_t = G_t − b(s_t), constants.
    Returns a 0-d tensor. Minimising it makes actions with A_t > 0 likelier.

    TODO: log_softmax of θ's rows for the visited states, pick each a_t's entry
    (torch.gather or indexing), weigh by A_t, sum, negate.
    """
    raise NotImplementedError("exercise reinforce_loss: −Σ_t A_t·log π_θ(a_t|s_t)")
