// Technical indicators, written once and used for real and synthetic data alike: batch functions
// over Float64Array columns (optional preallocated `out`, warm-up rows NaN, never zeros) and a
// streaming class per indicator (one candle at a time) whose output is identical bit for bit,
// because each batch function runs its streaming class (the hot ones, RSI, MACD, Bollinger and
// ATR, through a range kernel that keeps the state in locals and follows `update` step for step;
// the tests hold the two equal on random and real data). TA-Lib conventions throughout (EMA seeded
// with the SMA, Wilder smoothing for RSI/ATR/ADX, TA-Lib's MACD seeding and warm-up lengths).
// Nothing here ever reads a candle after the row being computed.
//
// The implementations live in ./indicators/*.ts; this file is the one import path.

export * from './indicators/rolling.js';
export * from './indicators/moving-averages.js';
export * from './indicators/momentum.js';
export * from './indicators/volatility.js';
export * from './indicators/trend.js';
export * from './indicators/volume.js';
export * from './indicators/levels.js';
