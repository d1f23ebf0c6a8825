"""One process of data-parallel training of the generated PyTorch module with
torch.distributed and DistributedDataParallel. Start one per device with torchrun:

    python -m torch.distributed.run --nproc-per-node 2 torch_ddp.py --steps 20

(CPUs: the gloo backend; GPUs: nccl, one process per GPU, the model moved to it.)
"""

from __future__ import annotations

import argparse
from datetime import timedelta

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.data.distributed import DistributedSampler

from generated.torch.inception_resnet_v2_small import create_inception_resnet_v2_small

AUX_LOSS_WEIGHT = 0.4  # as in recipe.py (TF-slim's weight for the aux loss)


def random_images(count: int, classes: int = 10) -> TensorDataset:
    """Stand-ins for a data set (NCHW): the same on every process, from one seed."""
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(count, 3, 149, 149, generator=generator)
    return TensorDataset(images, torch.randint(0, classes, (count,), generator=generator))


def train(*, steps: int, batch_size: int, callbacks=()):
    """`steps` steps of `batch_size` images per process; returns the DDP model."""
    torch.manual_seed(0)  # DDP copies rank 0's weights to every process anyway
    model = DistributedDataParallel(
        create_inception_resnet_v2_small(nb_classes=10, classifier_activation=None)  # logits
    )
    # The Inception-v4 paper's optimizer (torch adds epsilon outside the square root).
    optimizer = torch.optim.RMSprop(model.parameters(), lr=0.045, alpha=0.9, eps=1.0)
    data = random_images(steps * batch_size * dist.get_world_size())
    sampler = DistributedSampler(data, shuffle=True, seed=0)  # each process its share
    model.train()
    for step, (images, labels) in enumerate(DataLoader(data, batch_size, sampler=sampler)):
        main, aux = model(images)
        loss = F.cross_entropy(main, labels) + AUX_LOSS_WEIGHT * F.cross_entropy(aux, labels)
        optimizer.zero_grad()
        loss.backward()  # DDP averages the gradients over all processes here
        optimizer.step()
        for callback in callbacks:
            callback(step, loss.item())
    return model


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=4, help="images per process per step")
    args = parser.parse_args()
    # torchrun sets RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT for each process.
    dist.init_process_group("gloo", timeout=timedelta(minutes=10))
    log = lambda step, loss: print(f"rank {dist.get_rank()} step {step + 1}: loss {loss:.4f}")
    model = train(steps=args.steps, batch_size=args.batch_size, callbacks=[log])
    if dist.get_rank() == 0:  # every process holds the same weights: one saves them
        torch.save(model.module.state_dict(), "inception_resnet_v2_small.pt")
    dist.destroy_process_group()
