// Synthetic-market benchmark:
// - synth.one_year (ms): one year (365 days) of the calibrated BTC base process at the 5m fine
//   step, turned into candles and aggregated exactly to 15m, 4h and 1d, with those validated
//   (`generateBaseMarket`, best of 7 after a warm-up). Goal < 100 ms.

import { generateBaseMarket } from '../src/synthetic-data/base-process.js';
import { loadCalibration } from '../src/synthetic-data/calibration.js';
import { report, timeBest } from './lib.js';

const params = loadCalibration('btc');
let seed = 1;
const ms = await timeBest(() => generateBaseMarket(params, { seed: seed++, days: 365 }), 7, 2);
report('synth.one_year', ms, 'ms', false, { days: 365, fineTimeframe: '5m', calibration: 'btc' });
