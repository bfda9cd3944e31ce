"""SAE loading: the shipped default, sae-lens registry entries, local directories and adapters."""

from saesteer.saes.loading import SaeSource, check_compatible, load_sae, sae_hook_name, sae_source

__all__ = ["SaeSource", "check_compatible", "load_sae", "sae_hook_name", "sae_source"]
