"""A prior written outside vaelab, as in the README's "Write your own prior": the module on
PYTHONPATH, its YAML in a config directory given with --config-dir or hydra.searchpath."""

from __future__ import annotations

import textwrap
from pathlib import Path

STUDENT_T = '''
import torch
from torch import nn
from torch.distributions import Distribution, Independent, StudentT


class StudentTPrior(nn.Module):
    """p(z) = prod_l StudentT(z_l | df, loc_l, scale_l), loc and scale learned."""

    def __init__(self, latent_dim: int, df: float = 3.0):
        super().__init__()
        self.df = df
        self.loc = nn.Parameter(torch.zeros(latent_dim))
        self.log_scale = nn.Parameter(torch.zeros(latent_dim))

    def forward(self, encoder: nn.Module | None = None) -> Distribution:
        return Independent(StudentT(self.df, self.loc, self.log_scale.exp()), 1)
'''

STUDENT_T_YAML = """
_target_: my_priors.StudentTPrior
latent_dim: ${latent_dim}
df: 3.0
"""


def write_user_prior(folder: Path) -> Path:
    """`folder` with my_priors.py and conf/prior/student_t.yaml: a user's directory."""
    (folder / "conf" / "prior").mkdir(parents=True)
    (folder / "my_priors.py").write_text(textwrap.dedent(STUDENT_T))
    (folder / "conf" / "prior" / "student_t.yaml").write_text(STUDENT_T_YAML)
    return folder
