"""LightningDataModules of spikenas: Fashion-MNIST, CIFAR-10/100 and a synthetic task.

Every datamodule knows ``num_classes`` and ``input_shape`` from its arguments alone (the CLI
links them into the model's macro) and gives the search its scoring batch through
:meth:`SpikenasDataModule.sample_batch` without ``setup()``.
"""

from spikenas.data.base import SpikenasDataModule
from spikenas.data.cifar import CIFAR10, CIFAR100
from spikenas.data.fashion_mnist import FashionMNIST
from spikenas.data.synthetic import Synthetic

__all__ = ["SpikenasDataModule", "FashionMNIST", "CIFAR10", "CIFAR100", "Synthetic"]
