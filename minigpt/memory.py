"""How much memory a training step takes, measured the same way on a CPU and on a GPU.

Training memory has two parts:

    state        parameters + gradients + AdamW's two moments: 4 tensors of the size of
                 the unique parameters (16 bytes per parameter in float32). ALBERT's sharing
                 shrinks this part: a shared block is stored, differentiated and updated once.
    activations  what the forward pass keeps for the backward pass: every layer's inputs,
                 and with attention by hand the T × T weights A of every head. This part
                 grows with the sequence length, linearly or, for A, quadratically (the
                 O(n²) of the lecture's Reformer slide).

On CUDA, `activation_bytes` is the allocator's peak during forward + backward above what
was allocated before (torch.cuda.max_memory_allocated): everything, temporaries included.
A CPU has no such counter, so there it is the bytes of the tensors autograd saves for the
backward pass (torch.autograd.graph.saved_tensors_hooks sees each one; a storage saved
twice counts once). That misses short-lived temporaries but holds the quadratic term
exactly: the manual attention saves its (B, nh, T, T) weights, the fused kernel and LSH
attention save no T × T tensor.
"""

import torch


def state_bytes(model) -> int:
    """Parameters, gradients and AdamW's two moment estimates: 4 × the unique parameters' bytes."""
    return 4 * sum(p.numel() * p.element_size() for p in model.parameters())


def activation_bytes(forward_backward, device: str, model=None) -> tuple[int, str]:
    """Run forward_backward() once and return (bytes, how they were measured). On the CPU
    the model's own parameters, which autograd also saves (a Linear keeps its weight for
    the input's gradient), are left out: they are state, not activations."""
    if device == "cuda":
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        forward_backward()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - before, "CUDA peak allocated"

    saved: dict[int, int] = {}  # storage address -> bytes
    parameters = set() if model is None else {p.untyped_storage().data_ptr() for p in model.parameters()}

    def pack(tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in parameters:
            saved[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        forward_backward()
    return sum(saved.values()), "saved for backward"
