"""Encoders q(z|x) and decoders p(x|z): nn.Modules whose forward() returns a torch Distribution.

Each option of the `encoder` and `decoder` config groups names one of these classes as its
`_target_` (`vaelab.nets.MLPEncoder`, `vaelab.nets.MLPDecoder`, `vaelab.nets.ConvEncoder`,
`vaelab.nets.ConvDecoder`). An encoder whose q(z|x) is a
diagonal Gaussian also provides `gaussian_params(x) -> (mean, log-variance)`, through which the
VampPrior and the GTM-VampPrior pass their pseudo-inputs.
"""

from vaelab.nets.conv import ConvDecoder, ConvEncoder, GatedConv2d
from vaelab.nets.hierarchy import GaussianNet, HierarchicalEncoder, JointPosterior
from vaelab.nets.layers import ACTIVATIONS, GatedLinear, mlp
from vaelab.nets.likelihoods import LIKELIHOODS, DiscretizedLogistic, LazyCategorical, PixelLikelihood
from vaelab.nets.mlp import MLPDecoder, MLPEncoder

__all__ = [
    "ACTIVATIONS",
    "LIKELIHOODS",
    "ConvDecoder",
    "ConvEncoder",
    "DiscretizedLogistic",
    "GatedConv2d",
    "GatedLinear",
    "GaussianNet",
    "HierarchicalEncoder",
    "JointPosterior",
    "LazyCategorical",
    "MLPDecoder",
    "MLPEncoder",
    "PixelLikelihood",
    "mlp",
]
