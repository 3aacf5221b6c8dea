"""The energy predictor: config, feature design, estimators, leaf models, aggregators,
reconciliation, artifacts, evaluation and cross-validation."""
