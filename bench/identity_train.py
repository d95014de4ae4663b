"""Estimating the identity model with Splink (Fellegi-Sunter, expectation maximisation, DuckDB).

The comparisons are the ones :mod:`consent.identity.scoring` scores, level for level, so the
m and u probabilities Splink estimates are the ones the filter uses. u comes from random
sampling; m from two EM sessions, each blocking on fields it does not estimate (date of
birth, then given and family name: blocking on the postcode would teach EM that a household
is a match); the prior from the NHS numbers records share. No truth labels are
used. Also measured: what one record costs when Splink itself finds its matches.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import pandas as pd
import splink.comparison_level_library as cll
from identity_population import population, records
from splink import DuckDBAPI, Linker, SettingsCreator, block_on
from splink.comparison_library import CustomComparison

from consent.identity.demographics import demographics_of
from consent.identity.scoring import COMPARISONS, MatchModel


def _rows(children: int, seed: int) -> pd.DataFrame:
    rows: list[dict[str, Any]] = []
    for number, (_, record) in enumerate(records(population(children, seed), seed)):
        demo = demographics_of(record)
        if demo is None or demo.date_of_birth is None:
            continue
        born = demo.date_of_birth
        rows.append(
            {
                "unique_id": number,
                "nhs": record.get("nhs_number"),
                "given": demo.given_name,
                "given_canon": demo.given_canonical,
                "family": demo.family_name,
                "dob": born.isoformat(),
                "dob_swapped": f"{born.year:04d}-{born.day:02d}-{born.month:02d}" if born.day <= 12 else None,
                "dob_y": born.year,
                "dob_m": born.month,
                "dob_d": born.day,
                "postcode": demo.postcode,
                "outward": demo.outward_code,
                "school": demo.school_urn,
            }
        )
    return pd.DataFrame(rows)


def _names(column: str, canonical: str | None) -> CustomComparison:
    exact = cll.ExactMatchLevel(column)
    first = cll.Or(exact, cll.ExactMatchLevel(canonical)) if canonical else exact
    levels = [cll.NullLevel(column), first, cll.JaroWinklerLevel(column, 0.9), cll.ElseLevel()]
    return CustomComparison(levels, output_column_name=column)


def _settings() -> SettingsCreator:
    one_part = (
        '(("dob_y_l" = "dob_y_r")::INT + ("dob_m_l" = "dob_m_r")::INT + ("dob_d_l" = "dob_d_r")::INT) = 2'
    )
    comparisons = [
        _names("given", "given_canon"),
        _names("family", None),
        CustomComparison(
            [
                cll.NullLevel("dob"),
                cll.ExactMatchLevel("dob"),
                cll.CustomLevel('"dob_swapped_l" = "dob_r"', "dob"),
                cll.CustomLevel(one_part, "dob"),
                cll.ElseLevel(),
            ],
            output_column_name="dob",
        ),
        CustomComparison(
            [
                cll.NullLevel("postcode"),
                cll.ExactMatchLevel("postcode"),
                cll.ExactMatchLevel("outward"),
                cll.ElseLevel(),
            ],
            output_column_name="postcode",
        ),
        CustomComparison(
            [cll.NullLevel("school"), cll.ExactMatchLevel("school"), cll.ElseLevel()],
            output_column_name="school",
        ),
    ]
    return SettingsCreator(
        link_type="dedupe_only",
        comparisons=comparisons,
        blocking_rules_to_generate_predictions=[block_on("dob"), block_on("family", "dob_y")],
        retain_matching_columns=True,
    )


def train(children: int, seed: int) -> tuple[MatchModel, float]:
    """Estimate the model on a synthetic population of ``children``; returns it and the seconds taken."""
    logging.getLogger("splink").setLevel(logging.WARNING)
    frame = _rows(children, seed)
    began = time.perf_counter()
    linker = Linker(frame, _settings(), DuckDBAPI())
    linker.training.estimate_probability_two_random_records_match([block_on("nhs")], recall=0.7)
    linker.training.estimate_u_using_random_sampling(max_pairs=2e6, seed=seed)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("dob"))
    # Not on postcode: a household shares it, and EM would learn "same household" as the match.
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("given_canon", "family"))
    seconds = time.perf_counter() - began
    saved = linker.misc.save_model_to_json()
    m: dict[str, list[float]] = {}
    u: dict[str, list[float]] = {}
    for name, comparison in zip(COMPARISONS, saved["comparisons"], strict=True):
        levels = [level for level in comparison["comparison_levels"] if not level.get("is_null_level")]
        m[name] = [float(level.get("m_probability", 1e-6)) for level in levels]
        u[name] = [float(level.get("u_probability", 1e-6)) for level in levels]
    model = MatchModel(float(saved["probability_two_random_records_match"]), m, u)
    lookup = _splink_lookup_cost(linker, frame)
    print(f"Splink per-record lookup (find_matches_to_new_records, DuckDB): {lookup * 1000:.0f} ms")
    return model, seconds


def _splink_lookup_cost(linker: Linker, frame: pd.DataFrame, samples: int = 10) -> float:
    """Mean seconds for Splink itself to score one new record against the population."""
    costs = []
    for _, row in frame.head(samples).iterrows():
        record = row.to_dict()
        record["unique_id"] = -1
        start = time.perf_counter()
        linker.inference.find_matches_to_new_records(
            [record], blocking_rules=[block_on("dob")]
        ).as_pandas_dataframe()
        costs.append(time.perf_counter() - start)
    return sum(costs[1:]) / max(len(costs) - 1, 1)
