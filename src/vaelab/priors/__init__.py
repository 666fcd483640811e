"""The priors p(z). Each is an nn.Module whose forward() builds a torch Distribution.

Parameters live in the module (so `.to()`, optimisers and checkpoints see them); the
Distribution is rebuilt on every call and never cached. Priors that go through the encoder
(vamp, gtm_vamp) take it as the argument of forward(); the others ignore it. `base.Prior`
says exactly what a prior provides and which optional hooks the figures and evaluation use.

One family per file: `mixtures` (standard, mog, gtm), `encoder_based` (vamp, vamp_data,
gtm_vamp), `exemplar` (exemplar),
`energy` (energy, energy_ncp), `latent_vae` (latent_vae), `flows` (flow, maf, nsf), `resampled` (lars). Every class is importable from here,
e.g. `vaelab.priors.VampPrior`, which is also the `_target_` the configs (and old checkpoints) name.

Reference: J. M. Tomczak, "Priors in VAEs" (blog post) and Tomczak & Welling, "VAE with a
VampPrior", AISTATS 2018.
"""

from torch.distributions import Distribution

from vaelab.priors.base import Prior, add_mixing_logits, square_grid
from vaelab.priors.encoder_based import PSEUDO_INPUT_INITS, GTMVampPrior, VampPrior
from vaelab.priors.energy import EnergyPrior, EnergyReweighted
from vaelab.priors.exemplar import ExemplarMixture, ExemplarPrior
from vaelab.priors.flows import FlowPrior, MAFPrior, NSFPrior
from vaelab.priors.hierarchy import HierarchicalPrior, JointPrior
from vaelab.priors.latent_vae import LatentVAE, LatentVAEPrior
from vaelab.priors.mixtures import DiagonalGaussianMixture, GTMPrior, MoGPrior, StandardPrior, diagonal_gaussian_mixture
from vaelab.priors.resampled import ResampledNormal, ResampledPrior

__all__ = [
    "PSEUDO_INPUT_INITS",
    "Prior",
    "DiagonalGaussianMixture",
    "EnergyPrior",
    "EnergyReweighted",
    "ExemplarMixture",
    "ExemplarPrior",
    "HierarchicalPrior",
    "JointPrior",
    "LatentVAE",
    "LatentVAEPrior",
    "FlowPrior",
    "GTMPrior",
    "GTMVampPrior",
    "MAFPrior",
    "MoGPrior",
    "NSFPrior",
    "ResampledNormal",
    "ResampledPrior",
    "StandardPrior",
    "VampPrior",
    "add_mixing_logits",
    "diagonal_gaussian_mixture",
    "square_grid",
]

# No argument checks in every Distribution built (a pass over each parameter tensor, several per
# step): zuko switched them off for the whole process when it was imported with the priors, and
# it is imported only where a flow is built now. A non-finite loss is caught by the training step.
Distribution.set_default_validate_args(False)
