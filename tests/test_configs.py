"""The typed model configs: overrides applied, mistyped keys refused."""
import pytest

from models.ranking.constants import RankingConfig
from models.retrieval.constants import RetrievalConfig


def test_overrides_replace_only_their_fields():
    config = RetrievalConfig.of({"epochs": 2, "layers": [8]})
    assert (config.epochs, config.layers, config.embedding_dim) == (2, [8], 64)
    assert RetrievalConfig.of(None) == RetrievalConfig() and RetrievalConfig.of(config) is config


def test_unknown_key_is_named_with_the_valid_ones():
    with pytest.raises(ValueError, match=r"RetrievalConfig: unknown key\(s\) 'epoch'; the valid keys are "
                                         r"embedding_dim, layers, .*learning_rate$"):
        RetrievalConfig.of({"epoch": 2})


def test_ranking_config_checks_its_nested_retrieval_config():
    config = RankingConfig.of({"num_candidates": 50, "retrieval": {"epochs": 3}})
    assert config.num_candidates == 50 and config.retrieval == RetrievalConfig(epochs=3)
    assert RankingConfig().retrieval == RetrievalConfig()
    with pytest.raises(ValueError, match="RetrievalConfig: unknown key.*'negative'"):
        RankingConfig.of({"retrieval": {"negative": "uniform"}})
    with pytest.raises(ValueError, match="RankingConfig: unknown key.*'learning_rates'"):
        RankingConfig.of({"learning_rates": 0.1})


def test_create_pipeline_refuses_a_mistyped_key_before_any_component_runs(tmp_path):
    from pipeline.pipeline import create_pipeline
    with pytest.raises(ValueError, match="RetrievalConfig: unknown key.*'epoch'"):
        create_pipeline("p", str(tmp_path), str(tmp_path), str(tmp_path), retrieval_config={"epoch": 1})
    with pytest.raises(ValueError, match="RankingConfig: unknown key.*'crosslayers'"):
        create_pipeline("p", str(tmp_path), str(tmp_path), str(tmp_path), ranking_config={"crosslayers": 0})
