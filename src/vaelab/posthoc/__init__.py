"""Post-hoc priors: a new prior fitted to a trained VAE whose encoder and decoder stay frozen.

`fit` (`vaelab-fit-prior`) refits one run; `jobs.refit_job` does it after training for
`posthoc=[mog, flow]`, in a single run or in every job of a sweep.
"""
