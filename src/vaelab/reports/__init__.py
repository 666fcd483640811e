"""Reports read back from run directories, free of torch: the comparison of a sweep's priors
(`write_report`, what `vaelab-compare` and the end of a sweep write)."""

from vaelab.reports.comparison import Report, write_report

__all__ = ["Report", "write_report"]
