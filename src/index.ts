// The public API of crypto-trading-model: everything a user imports, re-exported from the modules
// that own it. Names mirror the spec (in camelCase).

export * from './errors.js';
export * from './data-processing/candles.js';
export * from './data-processing/resample.js';
export * from './data-processing/file-formats.js';
export * from './data-processing/store.js';
export * from './data-processing/exchange.js';
export * from './data-processing/data-loader.js';
export * from './data-processing/indicators.js';
export * from './data-processing/data-alignment.js';
export * from './data-processing/feature-engineering.js';
export * from './data-processing/normalizer.js';
export * from './data-processing/lookahead.js';
export * from './utils/config.js';
export * from './utils/random.js';
export * from './utils/logger.js';
export * from './utils/progress.js';
export * from './utils/fs.js';
export * from './utils/runs.js';
export * from './synthetic-data/base-process.js';
export * from './synthetic-data/calibration.js';
export * from './evaluation/policy.js';
export * from './evaluation/broker.js';
export * from './evaluation/metrics.js';
export * from './evaluation/backtest.js';
export * from './evaluation/baselines.js';
export * from './evaluation/walk-forward.js';
export * from './evaluation/evaluate.js';
export * from './models/time-series/kernels.js';
export * from './models/time-series/gru.js';
export * from './models/time-series/model.js';
export * from './models/time-series/trainer.js';
export * from './models/time-series/policy.js';
export * from './models/time-series/training-run.js';
export * from './utils/visualization.js';
