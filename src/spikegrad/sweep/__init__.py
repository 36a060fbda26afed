"""Sweeps: many ``spikegrad fit`` runs of one config (a grid of variants × seeds, or an Optuna search), each an
ordinary run with its own folder, recorded in an Optuna study; ``spikegrad sweep`` (:mod:`.command`)."""
