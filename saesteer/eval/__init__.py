"""Evaluation: language-ID accuracy, fluency, accuracy-vs-strength, the ablation matrix, reports."""
