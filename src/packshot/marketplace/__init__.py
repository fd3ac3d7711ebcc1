"""Marketplace checks: one rules table with sources (:mod:`.rules`), measurements of any image
file (:mod:`.measure`), rule verdicts (:mod:`.check`) and honest fixes (:mod:`.fix`)."""
from __future__ import annotations

from .check import CheckReport, RuleResult, check_image, evaluate
from .rules import MARKETPLACES, markdown_table, rules_for

__all__ = ["MARKETPLACES", "CheckReport", "RuleResult", "check_image", "evaluate", "markdown_table",
           "rules_for"]
