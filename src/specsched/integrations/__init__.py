"""Hand schedules to the software people sample with (diffusers, k-diffusion)."""
