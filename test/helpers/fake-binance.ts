// A loopback HTTP server imitating the two Binance spot endpoints ccxt uses to download candles
// (`/api/v3/exchangeInfo` for loadMarkets, `/api/v3/klines`), with a fixed server clock (sent in
// the Date header), deterministic candles, maintenance gaps, the still-forming candle, and injectable
// faults (429 with Retry-After, 500, a connection dropped mid-body, a request that never answers).
// For the live tests it also replays given candles (real ones from ../shared/data) with a clock that
// moves one bar per base-timeframe request, serves the candle in progress as still forming, and
// misbehaves on demand (duplicated, reordered or late candles). It records every request, so a test
// can prove no order was ever sent. A websocket kline stream (`wsUrl`, Binance's SUBSCRIBE protocol)
// pushes the replayed candles as `wsTick` moves the clock. Tests point ccxt at it through
// `data.download.baseUrl` and `live.wsUrl`; nothing here touches the internet.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';

const INTERVAL_MS: Record<string, number> = {
  '1m': 60_000,
  '15m': 900_000,
  '1h': 3_600_000,
  '4h': 14_400_000,
  '1d': 86_400_000,
};

/** A fault served instead of a kline page. */
export type Fault =
  | '429'
  | '500'
  | 'drop'
  | 'hang'
  /** The page's candles twice. */
  | 'duplicate'
  /** The page's candles newest first. */
  | 'reorder'
  /** The newest closed candle is not published yet (neither it nor the one forming is served). */
  | 'late';

/** One kline request as the server saw it. */
export interface KlineRequest {
  symbol: string;
  interval: string;
  startTime: number;
  limit: number;
  /** Arrival time (performance.now(), ms). */
  at: number;
  /** What was served: 'ok' or the fault. */
  served: 'ok' | Fault;
}

/** Options of the fake server. */
export interface FakeBinanceOptions {
  /** Exchange ids of the listed markets, e.g. `{ 'BTC/USDT': 'BTCUSDT' }`. */
  markets: Record<string, string>;
  /** Server clock (UTC ms). Candles up to the one forming at this time are served. */
  nowMs: number;
  /** First open time with data (listing); earlier requests start here. */
  listedMs: number;
  /** Open-time ranges [from, to) without candles (exchange maintenance). */
  gaps?: [number, number][];
  /** Open times served off the grid by `offGridShiftMs` (the Feb 2018 anomaly). */
  offGrid?: number[];
  offGridShiftMs?: number;
  /**
   * Replayed candles per `${symbol} ${interval}` as [openTime, open, high, low, close, volume]
   * rows, ascending; served instead of the deterministic ones (`listedMs` and `gaps` ignored).
   */
  replay?: Map<string, number[][]>;
  /** After each kline request of this interval the clock moves `clockStepMs` forward. */
  clockInterval?: string;
  /** See `clockInterval`. */
  clockStepMs?: number;
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}

/** The fake exchange. Start with `FakeBinance.start`, stop with `close`. */
export class FakeBinance {
  /** Base URL to give ccxt (`http://127.0.0.1:PORT/api/v3`). */
  url = '';
  /** Websocket base URL to give ccxt (`ws://127.0.0.1:PORT/stream`, for `live.wsUrl`). */
  wsUrl = '';
  /** While true the websocket stays connected but says nothing (a stalled socket). */
  wsSilent = false;
  private readonly wss: WebSocketServer;
  /** Open sockets and the kline streams each subscribed, e.g. `btcusdt@kline_15m`. */
  private readonly sockets = new Map<WebSocket, string[]>();
  /** Every kline request, in arrival order. */
  readonly requests: KlineRequest[] = [];
  /** Faults served, in order, to the next kline requests. */
  readonly faults: Fault[] = [];
  /** Called after each successfully served kline page with the count of such pages so far. */
  onPage: ((pagesServed: number) => void) | null = null;
  /** Server clock (UTC ms); may be moved forward between downloads. */
  nowMs: number;
  /** Method and path of every request, in arrival order (orders would show up here). */
  readonly calls: string[] = [];
  /** Called on each kline request before it is served (tests move the clock or alter candles). */
  onKlines: ((req: KlineRequest) => void) | null = null;
  private readonly server: Server;
  private pagesServed = 0;

  private constructor(private readonly options: FakeBinanceOptions) {
    this.nowMs = options.nowMs;
    this.server = createServer((req, res) => this.handle(req, res));
    this.wss = new WebSocketServer({ server: this.server });
    this.wss.on('connection', (socket) => {
      this.calls.push('WS connect');
      this.sockets.set(socket, []);
      socket.on('close', () => this.sockets.delete(socket));
      socket.on('message', (data) => {
        const msg = JSON.parse(String(data)) as { method?: string; params?: string[]; id?: number };
        this.calls.push(`WS ${msg.method ?? '?'}`);
        if (msg.method === 'SUBSCRIBE') {
          this.sockets.get(socket)?.push(...(msg.params ?? []));
          socket.send(JSON.stringify({ result: null, id: msg.id }));
        }
      });
    });
  }

  /**
   * Pushes, on every subscribed kline stream, the candle that closed by the clock (final) and the
   * one forming (as at its open), unless `wsSilent`.
   */
  wsTick(): void {
    if (this.wsSilent) return;
    for (const [socket, streams] of this.sockets)
      for (const stream of streams) {
        const m = /^(\w+)@kline_(\w+)$/.exec(stream);
        if (m === null) continue;
        const unified = Object.entries(this.options.markets).find(
          ([, id]) => id.toLowerCase() === m[1],
        )?.[0];
        const rows =
          unified === undefined ? undefined : this.options.replay?.get(`${unified} ${m[2]}`);
        const step = INTERVAL_MS[m[2]];
        if (rows === undefined || step === undefined) continue;
        const forming = Math.floor(this.nowMs / step) * step;
        for (const t of [forming - step, forming]) {
          const c = rows.find((r) => r[0] === t);
          if (c === undefined) continue;
          const final = t + step <= this.nowMs;
          const v = final ? c : [c[0], c[1], c[1], c[1], c[1], 0];
          socket.send(
            JSON.stringify({
              e: 'kline',
              E: this.nowMs,
              s: m[1].toUpperCase(),
              k: {
                t,
                T: t + step - 1,
                s: m[1].toUpperCase(),
                i: m[2],
                o: String(v[1]),
                h: String(v[2]),
                l: String(v[3]),
                c: String(v[4]),
                v: String(v[5]),
                x: final,
              },
            }),
          );
        }
      }
  }

  /** Drops every websocket connection (a disconnect). */
  wsDrop(): void {
    for (const socket of this.sockets.keys()) socket.terminate();
  }

  /** Starts a server on a free loopback port. */
  static async start(options: FakeBinanceOptions): Promise<FakeBinance> {
    const fake = new FakeBinance(options);
    await new Promise<void>((resolve) => fake.server.listen(0, '127.0.0.1', resolve));
    const { port } = fake.server.address() as AddressInfo;
    fake.url = `http://127.0.0.1:${port}/api/v3`;
    fake.wsUrl = `ws://127.0.0.1:${port}/stream`;
    return fake;
  }

  /** Stops the server and drops open connections. */
  async close(): Promise<void> {
    for (const socket of this.sockets.keys()) socket.terminate();
    this.wss.close();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** True when a candle exists at this (on-grid) open time. */
  private exists(t: number): boolean {
    if (t < this.options.listedMs) return false;
    for (const [a, b] of this.options.gaps ?? []) if (t >= a && t < b) return false;
    return true;
  }

  /** The deterministic candle [open, high, low, close, volume] of a symbol at an open time. */
  static values(symbol: string, t: number): [number, number, number, number, number] {
    const base = symbol.startsWith('BTC') ? 30_000 : 2_000;
    const k = t / 900_000;
    const open = round2(base * (1 + 0.05 * Math.sin(k / 40)));
    const close = round2(base * (1 + 0.05 * Math.sin((k + 1) / 40)) + 3 * Math.cos(k));
    const high = round2(Math.max(open, close) + 1 + (k % 7));
    const low = round2(Math.min(open, close) - 1 - (k % 5));
    const volume = round2(10 + (k % 17) * 1.5);
    return [open, high, low, close, volume];
  }

  /**
   * The candles a complete download must end with: every closed candle of `interval` in
   * [fromMs, untilMs), as [openTime, open, high, low, close, volume] rows (open times as served).
   */
  closedCandles(symbol: string, interval: string, fromMs: number, untilMs = Infinity): number[][] {
    const step = INTERVAL_MS[interval];
    const out: number[][] = [];
    const first = Math.max(fromMs, this.options.listedMs);
    for (let t = Math.ceil(first / step) * step; t + step <= this.nowMs && t < untilMs; t += step) {
      if (!this.exists(t)) continue;
      out.push([this.servedTime(t), ...FakeBinance.values(symbol, t)]);
    }
    return out;
  }

  private servedTime(t: number): number {
    return (this.options.offGrid ?? []).includes(t) ? t + (this.options.offGridShiftMs ?? 0) : t;
  }

  private json(res: ServerResponse, status: number, body: unknown): void {
    res.statusCode = status;
    res.setHeader('Content-Type', 'application/json');
    res.setHeader('Date', new Date(this.nowMs).toUTCString());
    res.end(JSON.stringify(body));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    this.calls.push(`${req.method ?? 'GET'} ${url.pathname}`);
    if (url.pathname === '/api/v3/exchangeInfo') {
      this.json(res, 200, {
        timezone: 'UTC',
        serverTime: this.nowMs,
        rateLimits: [],
        exchangeFilters: [],
        symbols: Object.entries(this.options.markets).map(([unified, id]) => ({
          symbol: id,
          status: 'TRADING',
          baseAsset: unified.split('/')[0],
          baseAssetPrecision: 8,
          quoteAsset: unified.split('/')[1],
          quotePrecision: 8,
          quoteAssetPrecision: 8,
          orderTypes: ['LIMIT', 'MARKET'],
          icebergAllowed: true,
          ocoAllowed: true,
          isSpotTradingAllowed: true,
          isMarginTradingAllowed: false,
          filters: [],
          permissions: ['SPOT'],
          permissionSets: [['SPOT']],
        })),
      });
      return;
    }
    if (url.pathname !== '/api/v3/klines') {
      this.json(res, 404, { code: -1, msg: `not imitated: ${url.pathname}` });
      return;
    }
    const id = url.searchParams.get('symbol') ?? '';
    const interval = url.searchParams.get('interval') ?? '';
    const startTime = Number(url.searchParams.get('startTime') ?? this.options.listedMs);
    const limit = Math.min(1000, Number(url.searchParams.get('limit') ?? 500));
    const fault = this.faults.shift();
    this.requests.push({
      symbol: id,
      interval,
      startTime,
      limit,
      at: performance.now(),
      served: fault ?? 'ok',
    });
    const unified = Object.entries(this.options.markets).find(([, v]) => v === id)?.[0];
    const step = INTERVAL_MS[interval];
    if (unified === undefined || step === undefined) {
      this.json(res, 400, { code: -1121, msg: 'Invalid symbol.' });
      return;
    }
    const replayed = this.options.replay?.get(`${unified} ${interval}`);
    if (replayed !== undefined) {
      const req = this.requests[this.requests.length - 1];
      this.onKlines?.(req);
      this.serveReplay(res, replayed, step, startTime, limit, fault);
      if (interval === this.options.clockInterval) this.nowMs += this.options.clockStepMs ?? 0;
      return;
    }
    const rows: unknown[][] = [];
    for (
      let t = Math.ceil(Math.max(startTime, this.options.listedMs) / step) * step;
      t <= this.nowMs && rows.length < limit;
      t += step
    ) {
      if (!this.exists(t)) continue;
      const [o, h, l, c, v] = FakeBinance.values(unified, t);
      const served = this.servedTime(t);
      if (served < startTime) continue;
      rows.push([
        served,
        o.toFixed(8),
        h.toFixed(8),
        l.toFixed(8),
        c.toFixed(8),
        v.toFixed(8),
        served + step - 1,
        (v * c).toFixed(8),
        100,
        (v / 2).toFixed(8),
        ((v * c) / 2).toFixed(8),
        '0',
      ]);
    }
    if (this.serveErrorFault(res, fault)) return;
    if (fault === 'hang') return; // never answers; the client times out
    const body = JSON.stringify(rows);
    if (fault === 'drop') {
      res.setHeader('Content-Type', 'application/json');
      res.setHeader('Content-Length', String(Buffer.byteLength(body)));
      res.write(body.slice(0, Math.floor(body.length / 2)));
      setTimeout(() => req.socket.destroy(), 10);
      return;
    }
    this.json(res, 200, rows);
    this.pagesServed++;
    this.onPage?.(this.pagesServed);
  }

  /** Answers a 429 (with Retry-After) or a 500 fault; false for any other (or no) fault. */
  private serveErrorFault(res: ServerResponse, fault: Fault | undefined): boolean {
    if (fault === '429') {
      res.setHeader('Retry-After', '1');
      this.json(res, 429, { code: -1003, msg: 'Too many requests; current limit is 6000 weight.' });
      return true;
    }
    if (fault === '500') {
      res.statusCode = 500;
      res.setHeader('Date', new Date(this.nowMs).toUTCString());
      res.end('Internal Server Error');
      return true;
    }
    return false;
  }

  /** Serves replayed candles from `startTime` up to the one in progress at the server clock. */
  private serveReplay(
    res: ServerResponse,
    candles: number[][],
    step: number,
    startTime: number,
    limit: number,
    fault: Fault | undefined,
  ): void {
    if (this.serveErrorFault(res, fault)) return;
    if (fault === 'hang' || fault === 'drop') {
      if (fault === 'drop') res.socket?.destroy();
      return;
    }
    let lo = 0;
    let hi = candles.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (candles[mid][0] < startTime) lo = mid + 1;
      else hi = mid;
    }
    const out: number[][] = [];
    for (let k = lo; k < candles.length && out.length < limit && candles[k][0] <= this.nowMs; k++) {
      const c = candles[k];
      // The candle in progress is served as it looks at its open.
      const forming = c[0] + step > this.nowMs;
      out.push(forming ? [c[0], c[1], c[1], c[1], c[1], 0] : c);
    }
    if (fault === 'late') {
      // The newest closed candle is not published yet: neither it nor anything after it is served.
      let k = out.length - 1;
      while (k >= 0 && out[k][0] + step > this.nowMs) k--;
      if (k >= 0) out.length = k;
    }
    let rows = out;
    if (fault === 'duplicate') rows = [...out, ...out];
    if (fault === 'reorder') rows = [...out].reverse();
    this.json(
      res,
      200,
      rows.map((c) => [
        c[0],
        String(c[1]),
        String(c[2]),
        String(c[3]),
        String(c[4]),
        String(c[5]),
        c[0] + step - 1,
        '0',
        1,
        '0',
        '0',
        '0',
      ]),
    );
  }
}
